package builtin_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/judge"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
)

// BenchmarkBadCanaryExposure sends a steady load through the builtin router
// with a 10 % canary whose backend answers 503 on 20 % of requests, judges
// the canary against blue every judgeEvery requests (the window since the
// step began, from two router stats snapshots), and reports how many
// requests reached green before the judge said Fail, as a share of a
// canary step of stepRequests requests.
//
//	go test -run '^$' -bench BadCanary -benchtime 20x ./internal/traffic/builtin/
func BenchmarkBadCanaryExposure(b *testing.B) {
	const (
		judgeEvery   = 100    // requests between judgments
		stepRequests = 10_000 // requests one canary step would carry
	)
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	bad := func(w http.ResponseWriter, r *http.Request) {
		if rand.Float64() < 0.20 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte("green"))
	}
	blue, green := httptest.NewServer(http.HandlerFunc(ok)), httptest.NewServer(http.HandlerFunc(bad))
	defer blue.Close()
	defer green.Close()
	cfg := traffic.TargetGroupConfig{Name: "web", Listen: "127.0.0.1:0", DeregistrationDelay: time.Second}
	r, err := builtin.New([]traffic.TargetGroupConfig{cfg}, builtin.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	la, err := r.Addr(cfg.Name)
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + la.String() + "/"
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	jcfg := judge.DefaultConfig()

	var greenSeen, badSeen, total int64
	var judgeTime time.Duration
	b.ResetTimer()
	for range b.N {
		if err := r.Apply(ctx, cfg.Name, []traffic.Backend{
			{ID: "blue", Addr: blue.Listener.Addr().String(), Weight: traffic.MaxWeight * 9 / 10},
			{ID: "green", Addr: green.Listener.Addr().String(), Weight: traffic.MaxWeight / 10}}); err != nil {
			b.Fatal(err)
		}
		start, err := r.Stats(ctx, cfg.Name)
		if err != nil {
			b.Fatal(err)
		}
		var v judge.Verdict
		n := 0
		for v.Outcome != judge.Fail {
			if n >= stepRequests {
				b.Fatalf("the judge did not fail the bad canary within a step (%d requests): %s", n, v.Reason)
			}
			for range judgeEvery {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			n += judgeEvery
			now, err := r.Stats(ctx, cfg.Name)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			v = judge.Judge(now["green"].Since(start["green"]), now["blue"].Since(start["blue"]), jcfg)
			judgeTime += time.Since(t0)
			if v.Outcome == judge.Fail {
				g := now["green"].Since(start["green"])
				greenSeen += g.Requests
				badSeen += g.Bad()
			}
		}
		total += int64(n)
		// Undo before the next run, so each starts from blue only.
		if err := r.Apply(ctx, cfg.Name, []traffic.Backend{{ID: "blue", Addr: blue.Listener.Addr().String(), Weight: traffic.MaxWeight}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runs := float64(b.N)
	b.ReportMetric(float64(greenSeen)/runs, "green-req/run")
	b.ReportMetric(float64(badSeen)/runs, "bad-answers/run")
	b.ReportMetric(float64(total)/runs, "req-to-fail/run")
	b.ReportMetric(100*float64(greenSeen)/(runs*stepRequests), "%-of-step")
	b.ReportMetric(float64(judgeTime.Microseconds())/runs, "judge-µs/run")
}
