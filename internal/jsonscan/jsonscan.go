// Package jsonscan reads fields out of JSON that is already known to be
// valid (rrweb events that passed the recorder's ParseBatch) without
// decoding it: it visits the keys a caller asks about and skips the rest,
// strings with bytes.IndexByte, which is several times cheaper than
// encoding/json on mutation-heavy events. On anything it cannot read it
// stops quietly instead of failing.
package jsonscan

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// EachField calls fn with each top-level key (unescaped) and raw value of
// the object obj, until fn returns false.
func EachField(obj []byte, fn func(key, val []byte) bool) {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = SkipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		end := SkipString(obj, i)
		if end < 0 {
			return
		}
		key := obj[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			key = []byte(Str(obj[i:end]))
		}
		i = SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = SkipSpace(obj, i+1)
		end = SkipValue(obj, i)
		if end < 0 || !fn(key, obj[i:end]) {
			return
		}
		i = SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// EachElem calls fn with each raw element of the array arr until fn
// returns false.
func EachElem(arr []byte, fn func(val []byte) bool) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return
	}
	for {
		i = SkipSpace(arr, i)
		end := SkipValue(arr, i)
		if end < 0 || !fn(arr[i:end]) {
			return
		}
		i = SkipSpace(arr, end)
		if i >= len(arr) || arr[i] != ',' {
			return
		}
		i++
	}
}

// Elems reads the array at b[i] element by element with read, which reads
// the element at b[j] and returns the index after it (-1 when it cannot):
// for readers that walk into the elements (a node tree) rather than skip
// them. It returns the index after the array, -1 when it cannot read it.
func Elems(b []byte, i int, read func(j int) int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	j := SkipSpace(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1
	}
	for j < len(b) {
		e := read(SkipSpace(b, j))
		if e < 0 {
			return -1
		}
		j = SkipSpace(b, e)
		if j >= len(b) {
			return -1
		}
		if b[j] == ']' {
			return j + 1
		}
		if b[j] != ',' {
			return -1
		}
		j++
	}
	return -1
}

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// SkipString returns the index after the string that starts at b[i], or -1.
func SkipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// SkipValue returns the index after the value that starts at b[i], or -1.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := SkipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return j
		}
		j++
	}
	return j
}

// Num reads a JSON number; ok is false for anything else (null, strings).
func Num(val []byte) (float64, bool) {
	if v, ok := smallInt(val); ok {
		return float64(v), true
	}
	if len(val) == 0 || (val[0] != '-' && (val[0] < '0' || val[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(val), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Int reads a JSON number as an int64, dropping any fraction.
func Int(val []byte) (int64, bool) {
	if v, ok := smallInt(val); ok {
		return v, true
	}
	f, ok := Num(val)
	if !ok || f <= math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// smallInt parses an optionally negative run of at most 18 digits, the
// common case, without strconv.
func smallInt(val []byte) (int64, bool) {
	digits := val
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if val[0] == '-' {
		v = -v
	}
	return v, true
}

// Str decodes a JSON string value; anything else gives "". The result never
// aliases val, so it may outlive the buffer. An escaped NUL ("\u0000")
// becomes U+FFFD: what Str reads goes to the index, whose text holds none.
func Str(val []byte) string {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return ""
	}
	in := val[1 : len(val)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in)
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' || i+1 >= len(in) {
			out = append(out, c)
			continue
		}
		i++
		switch in[i] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			if i+4 >= len(in) {
				return string(out)
			}
			r, err := strconv.ParseUint(string(in[i+1:i+5]), 16, 32)
			if err != nil {
				return string(out)
			}
			i += 4
			ru := rune(r)
			if ru == 0 {
				ru = utf8.RuneError // text columns (PostgreSQL's) hold no NUL
			}
			if ru >= 0xD800 && ru < 0xDC00 && i+6 < len(in) && in[i+1] == '\\' && in[i+2] == 'u' {
				if lo, err := strconv.ParseUint(string(in[i+3:i+7]), 16, 32); err == nil && lo >= 0xDC00 && lo < 0xE000 {
					ru = (ru-0xD800)<<10 + (rune(lo) - 0xDC00) + 0x10000
					i += 6
				}
			}
			out = utf8.AppendRune(out, ru)
		default:
			out = append(out, in[i])
		}
	}
	return string(out)
}

// IsNull reports whether val is the JSON null.
func IsNull(val []byte) bool { return string(val) == "null" }
