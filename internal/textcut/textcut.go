// Package textcut cuts strings to a byte budget for text columns: the
// result is valid UTF-8 (a character cut in two goes whole, bytes that are
// not UTF-8 become U+FFFD), which PostgreSQL requires of text and SQLite
// leaves to the writer.
package textcut

import (
	"strings"
	"unicode/utf8"
)

// Head returns at most the first n bytes of s, as valid UTF-8.
func Head(s string, n int) string {
	if len(s) > n {
		s = s[:n]
		for i := 0; i < utf8.UTFMax-1 && s != ""; i++ {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Tail returns at most the last n bytes of s, as valid UTF-8.
func Tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
		for i := 0; i < utf8.UTFMax-1 && s != ""; i++ {
			if r, size := utf8.DecodeRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[1:]
		}
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
