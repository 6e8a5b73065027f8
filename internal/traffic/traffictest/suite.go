package traffictest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// NewRouter starts the driver under test for one target group and returns
// it with the address clients send traffic to. cfg.Listen is "127.0.0.1:0";
// a driver that cannot bind port 0 picks a free port itself.
type NewRouter func(t *testing.T, cfg traffic.TargetGroupConfig) (r traffic.Router, addr string)

// TargetGroup is the name the suite configures.
const TargetGroup = "web"

// Config is the target group configuration the suite runs with: fast
// health checks so each case takes well under a second.
func Config() traffic.TargetGroupConfig {
	return traffic.TargetGroupConfig{
		Name:   TargetGroup,
		Listen: "127.0.0.1:0",
		Mode:   traffic.ModeHTTP,
		HealthCheck: traffic.HealthCheck{
			Path:     HealthPath,
			Interval: 50 * time.Millisecond,
			// Generous: the hammer loads both cores, and a timed-out
			// check would take a healthy backend out of rotation.
			Timeout:            time.Second,
			HealthyThreshold:   2,
			UnhealthyThreshold: 2,
		},
		DeregistrationDelay: 2 * time.Second,
	}
}

// Run runs the conformance suite.
func Run(t *testing.T, newRouter NewRouter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Switch", testSwitch},
		{"NoFailedRequestsDuringSwitches", testHammer},
		{"UnhealthyNeverServed", testUnhealthy},
		{"DrainingLetsInFlightFinish", testDraining},
		{"Weights", testWeights},
		{"WeightedShift", testWeightedShift},
		{"IdempotentApply", testIdempotent},
		{"UnknownTargetGroup", testUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, addr := newRouter(t, Config())
			t.Cleanup(func() { r.Close() })
			tt.fn(t, newEnv(t, r, addr))
		})
	}
}

type env struct {
	r      traffic.Router
	url    string
	client *http.Client
}

func newEnv(t *testing.T, r traffic.Router, addr string) *env {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{r: r, url: "http://" + addr, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func (e *env) apply(t *testing.T, bs ...traffic.Backend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.r.Apply(ctx, TargetGroup, bs); err != nil {
		t.Fatalf("Apply(%v): %v", bs, err)
	}
}

// get sends one request and returns the answering backend's name.
func (e *env) get(path string) (string, error) {
	resp, err := e.client.Get(e.url + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %q", resp.Status, body)
	}
	return resp.Header.Get(ColorHeader), nil
}

// count sends n requests and counts them by answering backend.
func (e *env) count(t *testing.T, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		c, err := e.get("/")
		if err != nil {
			t.Fatal(err)
		}
		counts[c]++
	}
	return counts
}

// expectAll sends n requests and fails unless each reaches want.
func (e *env) expectAll(t *testing.T, n int, want string) {
	t.Helper()
	for i := range n {
		got, err := e.get("/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got != want {
			t.Fatalf("request %d reached %q, want %q", i, got, want)
		}
	}
}

func be(b *Backend, weight int) traffic.Backend {
	return traffic.Backend{ID: b.Name, Addr: b.Addr, Weight: weight}
}

func testSwitch(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	e.apply(t, be(blue, 1))
	e.expectAll(t, 20, "blue")
	e.apply(t, be(green, 1))
	e.expectAll(t, 20, "green")

	ms, err := e.r.Members(t.Context(), TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		switch {
		case m.ID == "green" && m.State != traffic.StateServing:
			t.Errorf("green is %q, want %q", m.State, traffic.StateServing)
		case m.ID == "blue" && m.State != traffic.StateDraining:
			t.Errorf("blue is %q, want %q or gone", m.State, traffic.StateDraining)
		}
	}
}

// testHammer switches blue/green under 16 concurrent keep-alive clients and
// checks that no request fails and none that started after an Apply returned
// reaches a backend that Apply removed.
func testHammer(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	e.apply(t, be(blue, 1))

	// A request in flight while an Apply runs may reach either color; one
	// that starts after Apply returned, and ends before the next Apply is
	// called, must reach the new color only. (Under CPU starvation a request
	// may be routed well after it started, so its end bounds the window.)
	type switchDone struct {
		called, at time.Time
		color      string
	}
	now := time.Now()
	switches := []switchDone{{now, now, "blue"}}

	type sample struct {
		start, end time.Time
		color      string
	}
	const workers = 16
	samples := make([][]sample, workers)
	var failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				color, err := e.get("/")
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				samples[w] = append(samples[w], sample{start, time.Now(), color})
			}
		})
	}

	for _, next := range []*Backend{green, blue, green, blue} {
		time.Sleep(150 * time.Millisecond)
		called := time.Now()
		e.apply(t, be(next, 1))
		switches = append(switches, switchDone{called, time.Now(), next.Name})
	}
	// Let green drain completely, then keep hammering: nothing may reach it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.r.WaitDrained(ctx, TargetGroup); err != nil {
		t.Fatal(err)
	}
	drained := time.Now()
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed during switches; first: %v", n, firstErr.Load())
	}
	total, wrong := 0, 0
	for _, ss := range samples {
		for _, s := range ss {
			total++
			// The latest switch that had returned before the request started.
			want := ""
			during := map[string]bool{}
			var since time.Duration
			for _, sw := range switches {
				if sw.at.Before(s.start) {
					want, since = sw.color, s.start.Sub(sw.at)
				} else if sw.called.Before(s.end) {
					during[sw.color] = true
				}
			}
			if want != "" && s.color != want && !during[s.color] {
				wrong++
				if wrong <= 3 {
					t.Errorf("request started %v (%v after Apply returned) reached %q; want %q",
						s.start.Format("05.000000"), since, s.color, want)
				}
			}
		}
	}
	if wrong > 0 {
		for _, sw := range switches {
			t.Logf("switch to %s: Apply from %v to %v", sw.color, sw.called.Format("05.000000"), sw.at.Format("05.000000"))
		}
		t.Errorf("%d of %d requests reached a removed backend", wrong, total)
	}
	if last := green.LastRequest(); last.After(drained) {
		t.Errorf("green received a request at %v, after it was removed and drained at %v", last, drained)
	}
	if total < 100 {
		t.Errorf("only %d requests completed; the hammer did not hammer", total)
	}
	t.Logf("%d requests, %d failed, across %d switches", total, failed.Load(), len(switches)-1)
}

func testUnhealthy(t *testing.T, e *env) {
	blue, sick := StartBackend(t, "blue"), StartBackend(t, "sick")
	sick.SetSick(true)
	e.apply(t, be(blue, 1))

	for _, set := range [][]traffic.Backend{{be(blue, 1), be(sick, 1)}, {be(sick, 1)}} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := e.r.Apply(ctx, TargetGroup, set)
		cancel()
		if !errors.Is(err, traffic.ErrNotHealthy) {
			t.Fatalf("Apply(%v) = %v, want an error wrapping ErrNotHealthy", set, err)
		}
		t.Logf("Apply with an unhealthy backend: %v", err)
		e.expectAll(t, 30, "blue")
	}
	if n := sick.Requests(); n != 0 {
		t.Errorf("unhealthy backend got %d requests", n)
	}
	ms, err := e.r.Members(t.Context(), TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == "sick" && (m.Healthy || m.State != traffic.StateUnhealthy) {
			t.Errorf("sick member reported healthy=%v state=%q", m.Healthy, m.State)
		}
	}
}

func testDraining(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	e.apply(t, be(blue, 1))

	type result struct {
		color string
		err   error
	}
	slow := make(chan result, 1)
	go func() {
		c, err := e.get(SlowPath)
		slow <- result{c, err}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for blue.InFlight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow request never reached blue")
		}
		time.Sleep(time.Millisecond)
	}
	e.apply(t, be(green, 1))
	e.expectAll(t, 10, "green")

	res := <-slow
	if res.err != nil || res.color != "blue" {
		t.Fatalf("in-flight request during drain = %q, %v; want blue to finish it", res.color, res.err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.r.WaitDrained(ctx, TargetGroup); err != nil {
		t.Fatal(err)
	}
}

func testWeights(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	e.apply(t, be(blue, 3), be(green, 1))
	const n = 400
	counts := e.count(t, n)
	frac := float64(counts["blue"]) / n
	if frac < 0.65 || frac > 0.85 {
		t.Errorf("weights 3:1 split %v; blue share %.2f, want about 0.75", counts, frac)
	}
}

func testIdempotent(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	set := []traffic.Backend{be(blue, 2), be(green, 1)}
	e.apply(t, set...)
	before, err := e.r.Members(t.Context(), TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, set...)
	after, err := e.r.Members(t.Context(), TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || len(after) != 2 {
		t.Fatalf("members before %v after %v, want 2 each", before, after)
	}
	for i := range before {
		b, a := before[i], after[i]
		if b.Backend != a.Backend || b.State != a.State || a.State != traffic.StateServing {
			t.Errorf("member %d changed by re-applying the same set: %+v -> %+v", i, b, a)
		}
	}
	for range 20 {
		if _, err := e.get("/"); err != nil {
			t.Fatal(err)
		}
	}
}

func testUnknown(t *testing.T, e *env) {
	err := e.r.Apply(t.Context(), "no-such-group", nil)
	if !errors.Is(err, traffic.ErrUnknownTargetGroup) {
		t.Fatalf("Apply to an unknown target group = %v, want ErrUnknownTargetGroup", err)
	}
}
