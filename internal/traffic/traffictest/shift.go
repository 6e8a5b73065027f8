package traffictest

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// shiftSteps are the green weights of a linear 25 % shift, out of MaxWeight.
var shiftSteps = []int{0, traffic.MaxWeight / 4, traffic.MaxWeight / 2, 3 * traffic.MaxWeight / 4, traffic.MaxWeight}

// testWeightedShift checks that at every step of a shift the share green
// serves follows its weight within ±10 points.
func testWeightedShift(t *testing.T, e *env) {
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	const n = 400
	for _, w := range shiftSteps[1:4] {
		e.apply(t, be(blue, traffic.MaxWeight-w), be(green, w))
		counts := e.count(t, n)
		want := float64(w) / traffic.MaxWeight
		if got := float64(counts["green"]) / n; got < want-0.10 || got > want+0.10 {
			t.Errorf("green weight %d/%d: served %v, green share %.2f, want %.2f±0.10", w, traffic.MaxWeight, counts, got, want)
		}
	}
}

// RunSticky checks cookie stickiness during a shift for drivers that
// support it: the router must be built with cfg.StickyCookie honoured.
// zeroReleases says the driver stops honouring a cookie whose backend has
// weight 0 (the builtin router does; HAProxy keeps sending persistent
// clients to a weight-0 or draining server until it is removed).
func RunSticky(t *testing.T, newRouter NewRouter, zeroReleases bool) {
	cfg := Config()
	cfg.StickyCookie = "CUTOVER_STICKY"
	r, addr := newRouter(t, cfg)
	t.Cleanup(func() { r.Close() })
	e := newEnv(t, r, addr)
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")

	// One client pins itself to blue before the shift starts, another to
	// green at the first step; each has its own cookie jar.
	sticky := func() *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: e.client.Transport, Jar: jar, Timeout: 5 * time.Second}
	}
	onBlue, onGreen := sticky(), sticky()
	get := func(c *http.Client) string {
		t.Helper()
		resp, err := c.Get(e.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s", resp.Status)
		}
		for _, sc := range resp.Header.Values("Set-Cookie") {
			if strings.Contains(sc, blue.Addr) || strings.Contains(sc, green.Addr) {
				t.Fatalf("sticky cookie reveals a backend address: %s", sc)
			}
		}
		return resp.Header.Get(ColorHeader)
	}

	e.apply(t, be(blue, traffic.MaxWeight), be(green, 0))
	if got := get(onBlue); got != "blue" {
		t.Fatalf("first request at 0%% green reached %q", got)
	}
	pinnedGreen := false
	for _, w := range shiftSteps[1:4] {
		e.apply(t, be(blue, traffic.MaxWeight-w), be(green, w))
		for !pinnedGreen {
			// Fresh clients land by weight; keep the first one green gives.
			c := sticky()
			if get(c) == "green" {
				onGreen, pinnedGreen = c, true
			}
		}
		for i := range 50 {
			if got := get(onBlue); got != "blue" {
				t.Fatalf("green weight %d: request %d of the blue client reached %q", w, i, got)
			}
			if got := get(onGreen); got != "green" {
				t.Fatalf("green weight %d: request %d of the green client reached %q", w, i, got)
			}
		}
	}
	if !zeroReleases {
		return
	}
	// Once its backend has no weight the client follows the weights.
	e.apply(t, be(blue, 0), be(green, traffic.MaxWeight))
	for i := range 20 {
		if got := get(onBlue); got != "green" {
			t.Fatalf("blue at weight 0: request %d of the blue client reached %q", i, got)
		}
	}
}

// RunStats checks a traffic.StatsReader: counters per backend ID that a
// caller diffs between two snapshots.
func RunStats(t *testing.T, newRouter NewRouter, withLatencies bool) {
	r, addr := newRouter(t, Config())
	t.Cleanup(func() { r.Close() })
	sr, ok := r.(traffic.StatsReader)
	if !ok {
		t.Fatalf("%T is not a traffic.StatsReader", r)
	}
	e := newEnv(t, r, addr)
	blue, green := StartBackend(t, "blue"), StartBackend(t, "green")
	e.apply(t, be(blue, traffic.MaxWeight), be(green, 0))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for range 10 {
		if _, err := e.get("/"); err != nil {
			t.Fatal(err)
		}
	}
	before, err := sr.Stats(ctx, TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	e.apply(t, be(blue, traffic.MaxWeight/2), be(green, traffic.MaxWeight/2))
	const n = 200
	errs := 0
	for range n {
		resp, err := e.client.Get(e.url + "/status/503")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			errs++
		}
	}
	after, err := sr.Stats(ctx, TargetGroup)
	if err != nil {
		t.Fatal(err)
	}
	b, g := after["blue"].Since(before["blue"]), after["green"].Since(before["green"])
	if b.Requests+g.Requests != n || b.Errors5xx+g.Errors5xx != int64(errs) || errs != n {
		t.Fatalf("window: blue %+v, green %+v; want %d requests, all 5xx (clients saw %d)", b, g, n, errs)
	}
	if g.Requests < n/4 || b.Requests < n/4 {
		t.Errorf("50/50 split counted blue %d, green %d of %d", b.Requests, g.Requests, n)
	}
	if withLatencies {
		if len(b.Latencies) != int(b.Requests) || len(g.Latencies) != int(g.Requests) {
			t.Errorf("latencies: blue %d for %d requests, green %d for %d", len(b.Latencies), b.Requests, len(g.Latencies), g.Requests)
		}
	}
	if _, err := sr.Stats(ctx, "nope"); err == nil {
		t.Error("Stats of an unknown target group succeeded")
	}
}
