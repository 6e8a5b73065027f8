package metrics

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Rate sampling of the router counters for the dashboard. The rates are
// computed from cutover_router_requests_total itself (no second count):
// each read takes the counters' current values, and the rate is the
// difference to the oldest sample kept within RateWindow.
const (
	// RateWindow is the span a rate is averaged over (at most).
	RateWindow = 10 * time.Second
	// sampleEvery spaces the samples kept, which bounds them to about
	// RateWindow/sampleEvery however often rates are read.
	sampleEvery = time.Second
	// minRateSpan: a rate over a shorter span than this is not reported.
	minRateSpan = 500 * time.Millisecond
)

// RouterRate is one backend's builtin-router traffic: totals since the
// server started and rates over the last Window seconds.
type RouterRate struct {
	TargetGroup string `json:"targetGroup"`
	Backend     string `json:"backend"` // the backend's address
	// Requests counts attempts on the backend; Errors those answered 5xx
	// or not answered at all (the router's "error" code).
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	// RequestRate and ErrorRate are per second over Window; Window is 0
	// while no earlier sample exists to compare with.
	RequestRate float64 `json:"requestRate"`
	ErrorRate   float64 `json:"errorRate"`
	Window      float64 `json:"window"`
}

type routerKey struct{ tg, backend string }

type routerTotals struct{ requests, errors float64 }

type routerSample struct {
	at     time.Time
	totals map[routerKey]routerTotals
}

// routerTotals reads cutover_router_requests_total by target group and
// backend.
func (m *Metrics) routerTotals() map[routerKey]routerTotals {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		defer close(ch)
		m.routerReqs.Collect(ch)
	}()
	out := map[routerKey]routerTotals{}
	for mt := range ch { // drained to the end: the collecting goroutine always finishes
		var pb dto.Metric
		if mt.Write(&pb) != nil || pb.Counter == nil {
			continue
		}
		var k routerKey
		var code string
		for _, l := range pb.Label {
			switch l.GetName() {
			case "target_group":
				k.tg = l.GetValue()
			case "backend":
				k.backend = l.GetValue()
			case "code":
				code = l.GetValue()
			}
		}
		t := out[k]
		v := pb.Counter.GetValue()
		t.requests += v
		if code == "5xx" || code == "error" {
			t.errors += v
		}
		out[k] = t
	}
	return out
}

// RouterRates returns the router traffic of the named target groups (all
// when none is named), ordered by target group and backend.
func (m *Metrics) RouterRates(targetGroups ...string) []RouterRate {
	now := m.now()
	cur := m.routerTotals()
	m.rateMu.Lock()
	// Drop samples older than the window, keeping the newest one as the
	// base while nothing younger exists.
	for len(m.samples) > 1 && now.Sub(m.samples[0].at) > RateWindow {
		m.samples = m.samples[1:]
	}
	var base *routerSample
	if len(m.samples) > 0 && now.Sub(m.samples[0].at) >= minRateSpan {
		b := m.samples[0]
		base = &b
	}
	if n := len(m.samples); n == 0 || now.Sub(m.samples[n-1].at) >= sampleEvery {
		m.samples = append(m.samples, routerSample{at: now, totals: cur})
	}
	m.rateMu.Unlock()

	want := map[string]bool{}
	for _, tg := range targetGroups {
		want[tg] = true
	}
	var out []RouterRate
	for k, t := range cur {
		if len(want) > 0 && !want[k.tg] {
			continue
		}
		r := RouterRate{TargetGroup: k.tg, Backend: k.backend, Requests: t.requests, Errors: t.errors}
		if base != nil {
			span := now.Sub(base.at).Seconds()
			old := base.totals[k] // zero for a backend first seen since
			r.Window = span
			r.RequestRate = max(t.requests-old.requests, 0) / span
			r.ErrorRate = max(t.errors-old.errors, 0) / span
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RouterRate) int {
		if c := strings.Compare(a.TargetGroup, b.TargetGroup); c != 0 {
			return c
		}
		return strings.Compare(a.Backend, b.Backend)
	})
	return out
}
