package metrics_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/metrics"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
)

// TestRouterMetrics proxies real requests through the builtin router to a
// real backend and reads the router series from the metrics handler.
func TestRouterMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(500)
		}
	}))
	defer backend.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	r, err := builtin.New([]traffic.TargetGroupConfig{{Name: "web", Listen: "127.0.0.1:0", Port: 80}},
		builtin.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	be := strings.TrimPrefix(backend.URL, "http://")
	if err := r.Apply(context.Background(), "web", []traffic.Backend{{ID: "a", Addr: be, Weight: traffic.MaxWeight}}); err != nil {
		t.Fatal(err)
	}
	addr, _ := r.Addr("web")
	for _, p := range []string{"/", "/", "/boom"} {
		resp, err := http.Get("http://" + addr.String() + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A backend that refuses connections: the attempt is an error.
	if err := r.Apply(context.Background(), "web", []traffic.Backend{{ID: "b", Addr: closed, Weight: traffic.MaxWeight}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if resp, err := http.Get("http://" + addr.String() + "/"); err == nil {
		resp.Body.Close()
	}
	srvErr := func(s scrape) float64 {
		return s.value("cutover_router_errors_total", "target_group", "web", "backend", closed)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	s := get(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cutover_router_requests_total", []string{"target_group", "web", "backend", be, "code", "2xx"}, 2},
		{"cutover_router_requests_total", []string{"target_group", "web", "backend", be, "code", "5xx"}, 1},
		{"cutover_router_request_duration_seconds", []string{"target_group", "web", "backend", be}, 3},
	} {
		if v := s.value(c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v; series %s", c.name, c.labels, v, c.want, s.series(c.name))
		}
	}
	// One failed attempt at least (the router retries a refused dial).
	if v := srvErr(s); v < 1 {
		t.Errorf("router errors for the refusing backend = %v; series %s", v, s.series("cutover_router_errors_total"))
	}
}
