package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/trailmap/trailmap/storage"
)

func TestValidKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"segment", "1/sessions/2026/11/29/abc_DEF-123/0-12.zst", true},
		{"single element", "a", true},
		{"dot names", ".hidden/..x/x..", true},
		{"unicode and space", "ü €/a b", true},
		{"longest", strings.Repeat("k/", storage.MaxKeyLen/2-1) + "kk", true},
		{"longest element", strings.Repeat("e", storage.MaxElementLen), true},
		{"empty", "", false},
		{"absolute", "/a", false},
		{"trailing slash", "a/", false},
		{"double slash", "a//b", false},
		{"dot", "a/./b", false},
		{"dot dot", "a/../b", false},
		{"only dot dot", "..", false},
		{"backslash", `a\b`, false},
		{"NUL", "a\x00", false},
		{"not UTF-8", "\xff", false},
		{"too long", strings.Repeat("k/", storage.MaxKeyLen/2) + "k", false},
		{"element too long", strings.Repeat("e", storage.MaxElementLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.ValidKey(tt.key)
			if tt.ok && err != nil {
				t.Fatalf("ValidKey(%q) = %v, want nil", tt.key, err)
			}
			if !tt.ok && !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("ValidKey(%q) = %v, want ErrInvalidKey", tt.key, err)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		ok     bool
	}{
		{"empty", "", true},
		{"partial element", "a", true},
		{"directory", "1/sessions/", true},
		{"mid-name", "1/sessions/2026/11/29/ab", true},
		{"partial dot", "a/.", true},
		{"partial dot dot", "a/..", true},
		{"absolute", "/", false},
		{"dot dot directory", "../", false},
		{"inner dot dot", "a/../b", false},
		{"double slash", "a//", false},
		{"backslash", `a\`, false},
		{"NUL", "\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.ValidPrefix(tt.prefix)
			if tt.ok && err != nil {
				t.Fatalf("ValidPrefix(%q) = %v, want nil", tt.prefix, err)
			}
			if !tt.ok && !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("ValidPrefix(%q) = %v, want ErrInvalidKey", tt.prefix, err)
			}
		})
	}
}
