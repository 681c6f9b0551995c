package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrInvalidTraits means user.traits is over one of the traits limits.
var ErrInvalidTraits = errors.New("invalid user traits")

// Limits on user.traits, which the index keeps in one row per visitor and
// sends again with every batch.
const (
	MaxTraitsBytes    = 16 << 10 // compact JSON
	MaxTraitsKeys     = 100      // object keys at all depths
	MaxTraitsDepth    = 3        // the traits object itself is depth 1
	MaxTraitKeyLen    = 128      // characters
	MaxTraitStringLen = 2048     // characters of one string value
)

// checkTraits reports (wrapping ErrInvalidTraits) traits over the limits;
// traits is a compact JSON object.
func checkTraits(traits []byte) error {
	if len(traits) > MaxTraitsBytes {
		return fmt.Errorf("%w: user.traits is %d bytes, over the limit of %d", ErrInvalidTraits, len(traits), MaxTraitsBytes)
	}
	d := json.NewDecoder(bytes.NewReader(traits))
	d.UseNumber()
	type frame struct{ obj, wantKey bool }
	var stack []frame // open containers
	keys := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: user.traits: %w", ErrMalformed, err)
		}
		if dl, ok := tok.(json.Delim); ok && (dl == '}' || dl == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		isKey := false
		if n := len(stack); n > 0 && stack[n-1].obj {
			isKey = stack[n-1].wantKey
			stack[n-1].wantKey = !isKey
		}
		switch v := tok.(type) {
		case json.Delim: // { or [
			if len(stack) >= MaxTraitsDepth {
				return fmt.Errorf("%w: user.traits nests deeper than %d levels", ErrInvalidTraits, MaxTraitsDepth)
			}
			stack = append(stack, frame{obj: v == '{', wantKey: v == '{'})
		case string:
			n := utf8.RuneCountInString(v)
			switch {
			case isKey:
				keys++
				if keys > MaxTraitsKeys {
					return fmt.Errorf("%w: user.traits holds more than %d keys", ErrInvalidTraits, MaxTraitsKeys)
				}
				if n > MaxTraitKeyLen {
					return fmt.Errorf("%w: user.traits key %q is over %d characters", ErrInvalidTraits, clipForError(v), MaxTraitKeyLen)
				}
			case n > MaxTraitStringLen:
				return fmt.Errorf("%w: a user.traits value is %d characters, over the limit of %d", ErrInvalidTraits, n, MaxTraitStringLen)
			}
		}
	}
}
