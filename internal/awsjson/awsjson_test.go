package awsjson

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

// acceptHeaders passes every request's headers and accepts any body: the
// tests below are about what happens around authentication.
type acceptHeaders struct{}

func (acceptHeaders) Authenticate(context.Context, *http.Request) (BodyCheck, error) {
	return func([]byte) (Caller, error) { return Caller{Service: "svc"}, nil }, nil
}

// TestBodyBudgetAndTimeout: a client trickling a body holds its share of
// the unverified-body budget until the body timeout, when it is answered
// 408 and disconnected; a request that finds no room waits for it rather
// than growing memory, and is served once the room is back.
func TestBodyBudgetAndTimeout(t *testing.T) {
	h := &Handler{
		Auth:            acceptHeaders{},
		Routes:          []Route{{Prefix: "P", SigningNames: []string{"svc"}, Service: ServiceFunc(func(context.Context, string, []byte) (any, error) { return map[string]int{"ok": 1}, nil })}},
		MaxBody:         64 << 10,
		BodyTimeout:     time.Second,
		UnverifiedBytes: 64<<10 + 1, // one full-size body at a time
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The trickler declares the full size: its first reservation, 64 KiB,
	// leaves no room for another request's.
	trickler, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer trickler.Close()
	fmt.Fprintf(trickler, "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: P.Op\r\nContent-Length: %d\r\n\r\nab", 64<<10)
	trickled := time.Now()
	// Half the body timeout: the trickler's deadline comes well before the
	// waiter's, even on a loaded machine.
	time.Sleep(500 * time.Millisecond)

	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "P.Op")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(strings.Repeat("x", 1000)); code != http.StatusOK {
		t.Fatalf("a request waiting for room got %d %s", code, body)
	}
	if waited := time.Since(trickled); waited < 900*time.Millisecond {
		t.Fatalf("served %s after the trickler started: the budget did not hold", waited)
	}

	resp, err := http.ReadResponse(bufio.NewReader(trickler), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "RequestTimeoutException") || !resp.Close {
		t.Fatalf("trickler got %d close=%v %s", resp.StatusCode, resp.Close, b)
	}
	start := time.Now()
	if code, body := post(strings.Repeat("x", 1000)); code != http.StatusOK || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("after the trickler: %d %s in %s", code, body, time.Since(start))
	}
	if code, body := post(strings.Repeat("x", 64<<10+1)); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "SerializationException") {
		t.Fatalf("an oversized body got %d %s", code, body)
	}
}
