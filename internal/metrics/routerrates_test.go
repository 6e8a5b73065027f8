package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/metrics"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
)

// clock is a test clock the rates are computed with.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRouterRates proxies real requests through the builtin router and
// checks that the dashboard's rates are the /metrics counters' increase
// over the window.
func TestRouterRates(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := metrics.New(metrics.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(500)
		}
	}))
	defer backend.Close()
	r, err := builtin.New([]traffic.TargetGroupConfig{{Name: "web", Listen: "127.0.0.1:0", Port: 80}, {Name: "api", Listen: "127.0.0.1:0", Port: 80}},
		builtin.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	be := strings.TrimPrefix(backend.URL, "http://")
	for _, tg := range []string{"web", "api"} {
		if err := r.Apply(context.Background(), tg, []traffic.Backend{{ID: "a", Addr: be, Weight: traffic.MaxWeight}}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(tg string, paths ...string) {
		t.Helper()
		addr, _ := r.Addr(tg)
		for _, p := range paths {
			resp, err := http.Get("http://" + addr.String() + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	send("web", "/")
	if got := m.RouterRates("web"); len(got) != 1 || got[0].Window != 0 || got[0].Requests != 1 {
		t.Fatalf("first read %+v: want the total and no rate yet (nothing to compare with)", got)
	}
	send("web", "/", "/", "/boom", "/", "/boom")
	send("api", "/")
	clk.Add(2 * time.Second)
	got := m.RouterRates("web")
	want := metrics.RouterRate{TargetGroup: "web", Backend: be, Requests: 6, Errors: 2, RequestRate: 2.5, ErrorRate: 1, Window: 2}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("rates of web %+v, want [%+v] (the api group is not asked for)", got, want)
	}
	// The totals are the counters /metrics exports.
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s := get(t, srv.URL)
	total := s.value("cutover_router_requests_total", "target_group", "web", "backend", be, "code", "2xx") +
		s.value("cutover_router_requests_total", "target_group", "web", "backend", be, "code", "5xx")
	if total != got[0].Requests {
		t.Errorf("/metrics says %v requests, the rates %v", total, got[0].Requests)
	}
	if all := m.RouterRates(); len(all) != 2 || all[0].TargetGroup != "api" || all[1].TargetGroup != "web" {
		t.Errorf("all rates %+v, want api then web", all)
	}
	// Quiet for longer than the window: the rate falls to zero.
	clk.Add(metrics.RateWindow + time.Second)
	if got := m.RouterRates("web"); len(got) != 1 || got[0].RequestRate != 0 || got[0].Requests != 6 || got[0].Window < metrics.RateWindow.Seconds() {
		t.Errorf("after a quiet window %+v, want rate 0 and the totals kept", got)
	}
	// Traffic again: the rate covers the recent samples only.
	clk.Add(time.Second)
	m.RouterRates("web")
	send("web", "/", "/", "/", "/")
	clk.Add(2 * time.Second)
	if got := m.RouterRates("web"); len(got) != 1 || got[0].Window > metrics.RateWindow.Seconds() || got[0].RequestRate <= 0 {
		t.Errorf("after new traffic %+v, want a positive rate over at most the window", got)
	}
}
