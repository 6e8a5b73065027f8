package sqlkv

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, end string
		ok          bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"a/", "a0", true},
		{"x\x7f", "x\u0080", true}, // a byte increment would give invalid "x\x80"
		{"\u00e9", "\u00ea", true},
		{"\ud7ff", "\ue000", true}, // skips the surrogates
		{"\uffff", "\U00010000", true},
		{"\U0010ffff", "", false},
		{"\U0010ffff\U0010ffff", "", false},
		{"a\U0010ffff", "b", true},
		{"ab\U0010ffff\U0010ffff", "ac", true},
	}
	for _, tt := range tests {
		end, ok := PrefixEnd(tt.prefix)
		if end != tt.end || ok != tt.ok {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q, %v", tt.prefix, end, ok, tt.end, tt.ok)
		}
		if ok {
			if !utf8.ValidString(end) {
				t.Errorf("PrefixEnd(%q) = %q: invalid UTF-8", tt.prefix, end)
			}
			if end <= tt.prefix || strings.HasPrefix(end, tt.prefix) {
				t.Errorf("PrefixEnd(%q) = %q does not bound the prefix", tt.prefix, end)
			}
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{"acct/us-east-1/app", true},
		{"\u65e5\u672c\U0010ffff", true},
		{"a\x00b", false},
		{"a\xffb", false},
		{"\xed\xa0\x80", false}, // an encoded surrogate
	}
	for _, tt := range tests {
		if got := ValidName(tt.s); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
