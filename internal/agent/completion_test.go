package agent

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/agent/layout"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
)

const unavailable = `{"__type":"ServiceUnavailableException","message":"the server is restarting"}`

// completesOf summarises the PutHostCommandComplete calls for one command.
func completesOf(t *testing.T, f *fakeServer, id string) []string {
	t.Helper()
	var calls []call
	for _, c := range f.allCalls() {
		if c.Op == "PutHostCommandComplete" && c.Body["HostCommandIdentifier"] == id {
			calls = append(calls, c)
		}
	}
	return summary(t, calls)
}

func pendingFiles(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, layout.CompletionsDirName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCompleteRetriedUntilAccepted: the server fails ten Complete calls in a
// row (the old agent gave up after four); the agent keeps the result and
// retries until it lands.
func TestCompleteRetriedUntilAccepted(t *testing.T) {
	cmds := []fakeCommand{{ID: "c-block", Host: testHost, ExecID: "x/y/z/d1", Name: "BlockTraffic"}}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
	f.completeAnswer = func(n int) (int, string) {
		if n <= 10 {
			return http.StatusServiceUnavailable, unavailable
		}
		return 0, ""
	}
	cfg := testConfig(t, srv.URL)
	runUntil(t, cfg, f)
	got := completesOf(t, f, "c-block")
	if len(got) != 11 {
		t.Fatalf("%d Complete calls, want 11:\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, c := range got {
		if c != "PutHostCommandComplete[Failed 5 Unsupported command type: BlockTraffic.]" {
			t.Errorf("Complete %s", c)
		}
	}
	if p := pendingFiles(t, cfg.RootDir); len(p) != 0 {
		t.Errorf("saved results left after delivery: %v", p)
	}
}

// TestCompleteKeptAcrossRestart: the agent stops while the server cannot
// take a result; the next start re-sends that result (not a "failed after
// restart") before it polls.
func TestCompleteKeptAcrossRestart(t *testing.T) {
	cmds := []fakeCommand{{ID: "c-block", Host: testHost, ExecID: "x/y/z/d1", Name: "BlockTraffic"}}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
	var down atomic.Bool
	down.Store(true)
	f.completeAnswer = func(int) (int, string) {
		if down.Load() {
			return http.StatusServiceUnavailable, unavailable
		}
		return 0, ""
	}
	cfg := testConfig(t, srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(completesOf(t, f, "c-block")) < 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if p := pendingFiles(t, cfg.RootDir); len(p) != 1 {
		t.Fatalf("saved results after the stop: %v, want one", p)
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg.RootDir, "ongoing-deployment")); len(entries) != 0 {
		t.Errorf("tracking files left beside the saved result: %v", entries)
	}

	down.Store(false)
	before := len(f.allCalls())
	runUntil(t, cfg, f)
	after := f.allCalls()[before:]
	if len(after) == 0 || after[0].Op != "PutHostCommandComplete" {
		t.Fatalf("after the restart the first call is not the saved Complete: %v", summary(t, after))
	}
	if got := summary(t, after[:1]); got[0] != "PutHostCommandComplete[Failed 5 Unsupported command type: BlockTraffic.]" {
		t.Errorf("re-sent %s, want the original result", got[0])
	}
	if p := pendingFiles(t, cfg.RootDir); len(p) != 0 {
		t.Errorf("saved results left after delivery: %v", p)
	}
}

// TestCompleteRefusedIsDropped: a client error is the server's final answer;
// the result is not retried forever.
func TestCompleteRefusedIsDropped(t *testing.T) {
	cmds := []fakeCommand{{ID: "c-block", Host: testHost, ExecID: "x/y/z/d1", Name: "BlockTraffic"}}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
	f.completeAnswer = func(int) (int, string) {
		return http.StatusBadRequest, `{"__type":"ClientException","message":"command c-block does not belong to this host"}`
	}
	cfg := testConfig(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got := completesOf(t, f, "c-block"); len(got) != 1 {
		t.Errorf("%d Complete calls, want 1", len(got))
	}
	if p := pendingFiles(t, cfg.RootDir); len(p) != 0 {
		t.Errorf("saved results left: %v", p)
	}
}

func TestCompleteBackoff(t *testing.T) {
	tests := []struct {
		n   int
		max time.Duration
	}{
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{4, 4 * time.Second},
		{7, 30 * time.Second},
		{8, 30 * time.Second},
		{100, 30 * time.Second},
	}
	for _, tt := range tests {
		for range 50 {
			if d := completeBackoff(tt.n); d < tt.max/2 || d > tt.max {
				t.Fatalf("completeBackoff(%d) = %s, want within [%s, %s]", tt.n, d, tt.max/2, tt.max)
			}
		}
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&protocol.APIError{StatusCode: 400, Type: "ClientException"}, true},
		{&protocol.APIError{StatusCode: 400, Type: "ValidationException"}, true},
		{&protocol.APIError{StatusCode: 400, Type: "UnrecognizedClientException"}, false},
		{&protocol.APIError{StatusCode: 400, Type: "AccessDeniedException"}, false},
		{&protocol.APIError{StatusCode: 403, Type: "InvalidSignatureException"}, false},
		{&protocol.APIError{StatusCode: 403, Type: "Forbidden"}, false},
		{&protocol.APIError{StatusCode: 400, Type: "ThrottlingException"}, false},
		{&protocol.APIError{StatusCode: 503, Type: "ServiceUnavailableException"}, false},
		{context.DeadlineExceeded, false},
		{errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := rejected(tt.err); got != tt.want {
			t.Errorf("rejected(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
