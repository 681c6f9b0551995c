package textcut

import "testing"

func TestHeadTail(t *testing.T) {
	for _, tc := range []struct {
		in, head, tail string
	}{
		{"abc", "abc", "abc"},
		{"a\xffb", "a\uFFFDb", "a\uFFFDb"},
		{"abé", "ab", "bé"},
		{"éab", "éa", "ab"},
		{"abcdé", "abc", "dé"},
		{"日本語", "日", "語"},
		{"", "", ""},
	} {
		if got := Head(tc.in, 3); got != tc.head {
			t.Errorf("Head(%q, 3) = %q, want %q", tc.in, got, tc.head)
		}
		if got := Tail(tc.in, 3); got != tc.tail {
			t.Errorf("Tail(%q, 3) = %q, want %q", tc.in, got, tc.tail)
		}
	}
}
