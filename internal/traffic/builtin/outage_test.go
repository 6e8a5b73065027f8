package builtin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/traffictest"
)

func TestOutageReports(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	type step struct {
		served bool
		at     time.Duration
		want   *outageReport // nil: nothing to log
	}
	steps := []step{
		{served: true, at: 0},
		{at: time.Second, want: &outageReport{start: true, refused: 1}},
		{at: 2 * time.Second},
		{at: 30 * time.Second},
		{at: time.Second + outageLogEvery, want: &outageReport{refused: 3, duration: outageLogEvery}},
		{at: time.Second + outageLogEvery + time.Second},
		{served: true, at: 2 * outageLogEvery, want: &outageReport{end: true, refused: 5, duration: 2*outageLogEvery - time.Second}},
		{served: true, at: 2*outageLogEvery + time.Second},
		{at: 3 * outageLogEvery, want: &outageReport{start: true, refused: 1}},
	}
	var o outage
	for i, s := range steps {
		var r outageReport
		var ok bool
		if s.served {
			r, ok = o.served(t0.Add(s.at))
		} else {
			r, ok = o.refuse(t0.Add(s.at))
		}
		switch {
		case s.want == nil && ok:
			t.Errorf("step %d: logged %+v, want nothing", i, r)
		case s.want != nil && (!ok || r != *s.want):
			t.Errorf("step %d: got %+v %v, want %+v", i, r, ok, *s.want)
		}
	}
}

// records keeps the log records of a router.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }

func (h *records) count(level slog.Level, prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// TestNoBackend: while no member is healthy every request gets a 503 with a
// short text body, and the log gets one warning, not one per request.
func TestNoBackend(t *testing.T) {
	log := &records{}
	cfg := traffictest.Config()
	r, err := New([]traffic.TargetGroupConfig{cfg}, Options{Logger: slog.New(log)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	addr, _ := r.Addr(cfg.Name)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, string, string) {
		t.Helper()
		resp, err := client.Get("http://" + addr.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	outage := func(n int) {
		t.Helper()
		for range n {
			code, ctype, body := get()
			if code != http.StatusServiceUnavailable || body != noBackendBody || !strings.HasPrefix(ctype, "text/plain") {
				t.Fatalf("no backend: %d %q %q", code, ctype, body)
			}
		}
	}
	outage(50)
	if n := log.count(slog.LevelWarn, "builtin:"); n != 1 {
		t.Errorf("%d warnings for 50 refused requests, want 1", n)
	}

	// A sick member is no better than none.
	b := traffictest.StartBackend(t, "blue")
	b.SetSick(true)
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// Apply waits for health in vain; the member stays registered.
	_ = r.Apply(short, cfg.Name, []traffic.Backend{{ID: "blue", Addr: b.Addr, Weight: 1}})
	outage(20)
	if n := log.count(slog.LevelWarn, "builtin: no healthy backend"); n != 1 {
		t.Errorf("%d outage-start warnings, want 1", n)
	}

	b.SetSick(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, _ := get()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend never served: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := log.count(slog.LevelInfo, "builtin: serving again"); n != 1 {
		t.Errorf("%d serving-again lines, want 1", n)
	}

	// A second outage is reported again.
	ctx, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	if err := r.Apply(ctx, cfg.Name, nil); err != nil {
		t.Fatal(err)
	}
	outage(5)
	if n := log.count(slog.LevelWarn, "builtin: no healthy backend"); n != 2 {
		t.Errorf("%d outage-start warnings after a second outage, want 2", n)
	}
}
