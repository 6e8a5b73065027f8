package builtin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
	"github.com/cutoverhq/cutover/internal/traffic/traffictest"
)

// BenchmarkUndo measures the builtin router's undo latency: from the call
// that sends all traffic back to blue until the last request reaches green,
// under a steady closed-loop load. Reported against the baseline of the
// same run, one request's round trip through the router.
//
//	go test -run '^$' -bench Undo -benchtime 50x ./internal/traffic/builtin/
func BenchmarkUndo(b *testing.B) {
	cfg := traffictest.Config()
	r, err := builtin.New([]traffic.TargetGroupConfig{cfg}, builtin.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	la, err := r.Addr(cfg.Name)
	if err != nil {
		b.Fatal(err)
	}
	addr := la.String()
	blue, green := traffictest.StartBackend(b, "blue"), traffictest.StartBackend(b, "green")
	ctx := context.Background()
	apply := func(bw, gw int) {
		if err := r.Apply(ctx, cfg.Name, []traffic.Backend{
			{ID: "blue", Addr: blue.Addr, Weight: bw}, {ID: "green", Addr: green.Addr, Weight: gw}}); err != nil {
			b.Fatal(err)
		}
	}
	apply(traffic.MaxWeight, 0)

	const workers = 4
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var stop atomic.Bool
	var reqs, reqNanos atomic.Int64
	started := make([]atomic.Int64, workers) // start of each worker's last completed request
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for !stop.Load() {
				t0 := time.Now()
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				reqNanos.Add(int64(time.Since(t0)))
				reqs.Add(1)
				started[i].Store(t0.UnixNano())
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()

	var undo time.Duration
	b.ResetTimer()
	for range b.N {
		apply(traffic.MaxWeight/2, traffic.MaxWeight/2)
		for n := green.Requests(); green.Requests() == n; {
			time.Sleep(100 * time.Microsecond) // green is in rotation again
		}
		t0 := time.Now()
		apply(traffic.MaxWeight, 0)
		done := time.Now()
		// Every request picked before the undo has finished once each
		// worker completed one that started after it.
		for i := range started {
			for started[i].Load() < done.UnixNano() {
				time.Sleep(100 * time.Microsecond)
			}
		}
		if last := green.LastRequest(); last.After(t0) {
			undo += last.Sub(t0)
		}
	}
	b.StopTimer()
	perReq := time.Duration(reqNanos.Load() / max(reqs.Load(), 1))
	perUndo := undo / time.Duration(b.N)
	b.ReportMetric(float64(perUndo.Microseconds()), "undo-µs")
	b.ReportMetric(float64(perReq.Microseconds()), "request-µs")
	b.ReportMetric(float64(perUndo)/float64(perReq), "undo/request")
}
