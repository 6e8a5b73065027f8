package awsjson

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEcho(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", MaxEcho), strings.Repeat("a", MaxEcho)},
		{strings.Repeat("a", MaxEcho+1), strings.Repeat("a", MaxEcho) + "...(1 more characters)"},
		// Characters, not bytes: a multi-byte rune is never split.
		{strings.Repeat("é", MaxEcho+2), strings.Repeat("é", MaxEcho) + "...(2 more characters)"},
	}
	for _, tt := range tests {
		if got := Echo(tt.in); got != tt.want {
			t.Errorf("Echo(%d bytes) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
}

func TestWriteErrorCapsMessage(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, Errorf("ValidationException", "value %s", strings.Repeat("é", 10000)))
	if n := w.Body.Len(); n > maxMessage+100 {
		t.Fatalf("answer of %d bytes", n)
	}
	if !strings.Contains(w.Body.String(), `é..."`) {
		t.Fatalf("message not cut on a character boundary: %.80q", w.Body.String()[w.Body.Len()-80:])
	}
}
