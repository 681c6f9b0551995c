package heatmap

import (
	"encoding/binary"
	"errors"
	"slices"
)

// cells are sparse counts by index (cx in a grid row; the ratio cell of an
// element). In the index they are a blob of (uvarint index delta, uvarint
// count) pairs with indexes ascending; counts are positive.
type cells map[int]int64

var errCells = errors.New("corrupt cells blob")

// encodeCells writes the positive counts of c.
func encodeCells(c cells) []byte {
	idx := make([]int, 0, len(c))
	for i, n := range c {
		if n > 0 && i >= 0 {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	out := make([]byte, 0, len(idx)*3)
	prev := 0
	for _, i := range idx {
		out = binary.AppendUvarint(out, uint64(i-prev))
		out = binary.AppendUvarint(out, uint64(c[i]))
		prev = i
	}
	return out
}

// eachCell calls fn for each (index, count) of a blob.
func eachCell(b []byte, fn func(i int, n int64)) error {
	i := 0
	for len(b) > 0 {
		d, k := binary.Uvarint(b)
		if k <= 0 || d > 1<<20 {
			return errCells
		}
		b = b[k:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > 1<<62 {
			return errCells
		}
		b = b[k:]
		i += int(d)
		fn(i, int64(n))
	}
	return nil
}

// addCells adds a blob's counts into c.
func addCells(c cells, b []byte) error {
	return eachCell(b, func(i int, n int64) { c[i] += n })
}
