// Package judge decides whether a canary is healthy by comparing what the
// load balancer saw of it (the green side) with what it saw of the current
// fleet (the blue side) over the same window.
//
// Judge is a pure function: the caller collects two samples over one window
// (for example by diffing two snapshots of a router's cumulative counters),
// calls Judge, and acts on the Outcome. Inconclusive means "not enough
// evidence yet": the caller waits and judges a longer window.
//
// # Error rate
//
// A request is bad when the backend answered 5xx or the attempt failed
// (connection refused or reset, timeout). The canary fails when its bad rate
// exceeds the baseline's by more than MaxErrorRateIncrease (absolute, in
// rate units) and a one-sided Fisher exact test rejects "the canary is no
// worse" at level Alpha. The margin keeps a real but harmless difference on a
// huge sample from failing; the test keeps noise on a small sample from
// failing.
//
// # Latency
//
// When both samples carry at least MinLatencySamples latencies, a one-sided
// Mann–Whitney U test (the test Netflix's Kayenta uses) asks whether canary
// latencies are stochastically larger than the baseline's. The canary fails
// when the test rejects at level Alpha and the effect is large enough to
// matter: the canary's median exceeds MaxLatencyRatio × the baseline's median
// and the baseline's median + MinLatencyIncrease. When neither sample has
// latency samples (HAProxy reports only averages) but both carry MeanLatency,
// the same two effect thresholds are applied to the means, with no
// significance test.
//
// # Defaults (DefaultConfig)
//
//	MinRequests           50     requests on each side before any verdict but Inconclusive
//	MaxErrorRateIncrease  0.02   canary bad rate may exceed the baseline's by 2 points
//	Alpha                 0.001  significance level of both tests (the caller judges many windows per deployment)
//	MinLatencySamples     20     latencies on each side before the latency test runs
//	MaxLatencyRatio       1.5    canary median may be up to 1.5× the baseline median
//	MinLatencyIncrease    5ms    … and always up to 5 ms slower
//
// A canary with fewer than MinRequests requests, or a baseline with fewer,
// is Inconclusive: there is nothing to compare with, so no division by a
// zero count ever happens.
package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Sample is what the load balancer saw of one side over a window.
type Sample struct {
	// Requests counts every request sent to the side, including those
	// answered 5xx and failed attempts.
	Requests  int64
	Errors5xx int64 // answered with a 5xx status
	Failed    int64 // attempts that got no answer: connection errors, timeouts
	// Latencies are response times of requests in the window, possibly a
	// bounded subset (a reservoir). Order does not matter.
	Latencies []time.Duration
	// MeanLatency is the average response time, for sources that report no
	// distribution (HAProxy). Used only when neither side has Latencies.
	MeanLatency time.Duration
}

// Bad is the number of requests that were 5xx or failed, never more than
// the request count.
func (s Sample) Bad() int64 {
	return min(max(s.Errors5xx, 0)+max(s.Failed, 0), s.total())
}

// ErrorRate is Bad/Requests, or 0 for an empty sample.
func (s Sample) ErrorRate() float64 {
	n := s.total()
	if n == 0 {
		return 0
	}
	return float64(s.Bad()) / float64(n)
}

// total is the request count, never less than the bad count a source with
// separate counters might report above it.
func (s Sample) total() int64 {
	return max(s.Requests, max(s.Errors5xx, 0)+max(s.Failed, 0), 0)
}

// Add merges two samples of the same window, e.g. the backends of one side.
// Mean latencies are weighted by request count.
func (s Sample) Add(o Sample) Sample {
	out := Sample{
		Requests:  s.Requests + o.Requests,
		Errors5xx: s.Errors5xx + o.Errors5xx,
		Failed:    s.Failed + o.Failed,
		Latencies: append(slices.Clip(s.Latencies), o.Latencies...),
	}
	if n := s.Requests + o.Requests; n > 0 {
		out.MeanLatency = time.Duration((float64(s.MeanLatency)*float64(s.Requests) + float64(o.MeanLatency)*float64(o.Requests)) / float64(n))
	}
	return out
}

// Config holds the judgment thresholds. The zero value is not useful; start
// from DefaultConfig.
type Config struct {
	MinRequests          int64         // per side; fewer is Inconclusive
	MaxErrorRateIncrease float64       // absolute margin on the bad rate (0.02 = 2 points)
	Alpha                float64       // significance level of the one-sided tests
	MinLatencySamples    int           // per side; fewer skips the latency test
	MaxLatencyRatio      float64       // canary/baseline median ratio allowed
	MinLatencyIncrease   time.Duration // canary median may always be this much slower
}

// DefaultConfig returns the documented default thresholds.
func DefaultConfig() Config {
	return Config{
		MinRequests:          50,
		MaxErrorRateIncrease: 0.02,
		Alpha:                0.001,
		MinLatencySamples:    20,
		MaxLatencyRatio:      1.5,
		MinLatencyIncrease:   5 * time.Millisecond,
	}
}

// Validate reports thresholds that make no sense.
func (c Config) Validate() error {
	var errs []error
	if c.MinRequests < 1 {
		errs = append(errs, fmt.Errorf("MinRequests %d must be at least 1", c.MinRequests))
	}
	if !(c.MaxErrorRateIncrease >= 0 && c.MaxErrorRateIncrease < 1) {
		errs = append(errs, fmt.Errorf("MaxErrorRateIncrease %v must be in [0, 1)", c.MaxErrorRateIncrease))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha %v must be in (0, 1)", c.Alpha))
	}
	if c.MinLatencySamples < 2 {
		errs = append(errs, fmt.Errorf("MinLatencySamples %d must be at least 2", c.MinLatencySamples))
	}
	if !(c.MaxLatencyRatio >= 1) || math.IsInf(c.MaxLatencyRatio, 0) {
		errs = append(errs, fmt.Errorf("MaxLatencyRatio %v must be a finite number of at least 1", c.MaxLatencyRatio))
	}
	if c.MinLatencyIncrease < 0 {
		errs = append(errs, fmt.Errorf("MinLatencyIncrease %v must not be negative", c.MinLatencyIncrease))
	}
	return errors.Join(errs...)
}

// Outcome is the result of one judgment.
type Outcome int

// Outcomes. Inconclusive is the zero value: a verdict never computed is
// not a pass.
const (
	Inconclusive Outcome = iota
	Pass
	Fail
)

var outcomeNames = [...]string{Inconclusive: "Inconclusive", Pass: "Pass", Fail: "Fail"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// MarshalText stores an Outcome by name, so records stay readable and
// survive reordering of the constants.
func (o Outcome) MarshalText() ([]byte, error) {
	if o < 0 || int(o) >= len(outcomeNames) {
		return nil, fmt.Errorf("judge: invalid outcome %d", int(o))
	}
	return []byte(outcomeNames[o]), nil
}

// UnmarshalText parses a name written by MarshalText.
func (o *Outcome) UnmarshalText(b []byte) error {
	for i, n := range outcomeNames {
		if n == string(b) {
			*o = Outcome(i)
			return nil
		}
	}
	return fmt.Errorf("judge: unknown outcome %q", b)
}

// Verdict is a judgment with the figures it was based on.
type Verdict struct {
	Outcome Outcome
	Reason  string // one sentence a person can act on

	Requests, BaselineRequests   int64
	ErrorRate, BaselineErrorRate float64
	// PValue is the error-rate test's p-value (1 when it did not run).
	PValue float64
	// P50 and BaselineP50 are the medians of the latency samples, or the
	// mean latencies when only those were given; 0 when unknown.
	P50, BaselineP50 time.Duration
	// LatencyPValue is the Mann–Whitney p-value (1 when it did not run).
	LatencyPValue float64
}

// Judge compares canary with baseline under cfg. An invalid cfg yields
// Inconclusive with the configuration error as the reason, never a Fail.
func Judge(canary, baseline Sample, cfg Config) Verdict {
	v := Verdict{
		Requests:          canary.total(),
		BaselineRequests:  baseline.total(),
		ErrorRate:         canary.ErrorRate(),
		BaselineErrorRate: baseline.ErrorRate(),
		PValue:            1,
		LatencyPValue:     1,
	}
	if err := cfg.Validate(); err != nil {
		v.Reason = "invalid judgment configuration: " + err.Error()
		return v
	}
	if v.Requests < cfg.MinRequests || v.BaselineRequests < cfg.MinRequests {
		v.Reason = fmt.Sprintf("not enough requests yet: canary %d, baseline %d, need %d each",
			v.Requests, v.BaselineRequests, cfg.MinRequests)
		return v
	}

	v.PValue = fisherGreater(canary.Bad(), v.Requests, baseline.Bad(), v.BaselineRequests)
	if v.ErrorRate-v.BaselineErrorRate > cfg.MaxErrorRateIncrease && v.PValue < cfg.Alpha {
		v.Outcome = Fail
		v.Reason = fmt.Sprintf("canary error rate %.2f%% (%d of %d) exceeds baseline %.2f%% (%d of %d) by more than %.2f points (p=%.2g)",
			100*v.ErrorRate, canary.Bad(), v.Requests, 100*v.BaselineErrorRate, baseline.Bad(), v.BaselineRequests,
			100*cfg.MaxErrorRateIncrease, v.PValue)
		return v
	}

	slow, note := judgeLatency(canary, baseline, cfg, &v)
	if slow {
		v.Outcome = Fail
		v.Reason = note
		return v
	}
	v.Outcome = Pass
	v.Reason = fmt.Sprintf("canary error rate %.2f%% vs baseline %.2f%%; %s", 100*v.ErrorRate, 100*v.BaselineErrorRate, note)
	return v
}

// judgeLatency fills v's latency figures and reports whether the canary is
// too slow, with a sentence saying why or what was checked.
func judgeLatency(canary, baseline Sample, cfg Config, v *Verdict) (bool, string) {
	tooSlow := func(c, b time.Duration) bool {
		return float64(c) > cfg.MaxLatencyRatio*float64(b) && c > b+cfg.MinLatencyIncrease
	}
	nc, nb := len(canary.Latencies), len(baseline.Latencies)
	switch {
	case nc >= cfg.MinLatencySamples && nb >= cfg.MinLatencySamples:
		c := slices.Clone(canary.Latencies)
		b := slices.Clone(baseline.Latencies)
		slices.Sort(c)
		slices.Sort(b)
		v.P50, v.BaselineP50 = median(c), median(b)
		v.LatencyPValue = mannWhitneyGreater(c, b)
		if v.LatencyPValue < cfg.Alpha && tooSlow(v.P50, v.BaselineP50) {
			return true, fmt.Sprintf("canary median latency %v is more than %.2g× baseline %v and %v slower (Mann–Whitney p=%.2g, %d vs %d samples)",
				v.P50, cfg.MaxLatencyRatio, v.BaselineP50, cfg.MinLatencyIncrease, v.LatencyPValue, nc, nb)
		}
		return false, fmt.Sprintf("median latency %v vs %v", v.P50, v.BaselineP50)
	case nc == 0 && nb == 0 && canary.MeanLatency > 0 && baseline.MeanLatency > 0:
		v.P50, v.BaselineP50 = canary.MeanLatency, baseline.MeanLatency
		if tooSlow(v.P50, v.BaselineP50) {
			return true, fmt.Sprintf("canary mean latency %v is more than %.2g× baseline %v and %v slower",
				v.P50, cfg.MaxLatencyRatio, v.BaselineP50, cfg.MinLatencyIncrease)
		}
		return false, fmt.Sprintf("mean latency %v vs %v", v.P50, v.BaselineP50)
	}
	return false, fmt.Sprintf("latency not judged (%d vs %d samples, need %d each)", nc, nb, cfg.MinLatencySamples)
}

// median of a sorted, non-empty slice.
func median(s []time.Duration) time.Duration {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return s[n/2-1] + (s[n/2]-s[n/2-1])/2
}

// fisherGreater is the one-sided Fisher exact p-value that the first group's
// proportion (a of n1) is greater than the second's (c of n2): the
// probability, with the margins fixed, of a or more successes in the first
// group under a hypergeometric law.
func fisherGreater(a, n1, c, n2 int64) float64 {
	k, n := a+c, n1+n2
	if k == 0 || k == n {
		return 1 // no variation at all: nothing suggests a difference
	}
	mean := float64(k) * float64(n1) / float64(n)
	if float64(a) <= mean {
		// The upper tail holds the mode: sum the small lower tail instead,
		// so a pmf that underflows cannot turn "likely" into p=0.
		return 1 - hyperTail(a-1, n1, k, n, -1)
	}
	return hyperTail(a, n1, k, n, +1)
}

// hyperTail sums P(X = x) for x from x0 away from the mode in direction dir
// (+1 upward, −1 downward), X being the successes among n1 items drawn from
// n of which k are successes.
func hyperTail(x0, n1, k, n int64, dir int64) float64 {
	lo, hi := max(0, n1+k-n), min(k, n1)
	if x0 < lo || x0 > hi {
		return 0
	}
	// log P(X = x0) = log C(k,x0) + log C(n-k, n1-x0) − log C(n, n1)
	term := math.Exp(lchoose(k, x0) + lchoose(n-k, n1-x0) - lchoose(n, n1))
	sum := term
	for x := x0; ; x += dir {
		if dir > 0 {
			if x >= hi {
				break
			}
			term *= float64(k-x) * float64(n1-x) / (float64(x+1) * float64(n-k-n1+x+1))
		} else {
			if x <= lo {
				break
			}
			term *= float64(x) * float64(n-k-n1+x) / (float64(k-x+1) * float64(n1-x+1))
		}
		sum += term
		// Past the mode the terms shrink geometrically; stop once they no
		// longer change the sum.
		if term < sum*1e-17 {
			break
		}
	}
	return min(sum, 1)
}

func lchoose(n, k int64) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

// mannWhitneyGreater is the one-sided Mann–Whitney U p-value that values in
// x (sorted) tend to be larger than values in y (sorted), by the normal
// approximation with tie and continuity corrections.
func mannWhitneyGreater(x, y []time.Duration) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	n := n1 + n2
	// Merge the two sorted slices, giving tied runs their average rank.
	var rankSumX, tieTerm float64
	i, j := 0, 0
	rank := 1.0
	for i < len(x) || j < len(y) {
		var v time.Duration
		if j >= len(y) || (i < len(x) && x[i] <= y[j]) {
			v = x[i]
		} else {
			v = y[j]
		}
		cx, cy := 0, 0
		for i < len(x) && x[i] == v {
			i++
			cx++
		}
		for j < len(y) && y[j] == v {
			j++
			cy++
		}
		t := float64(cx + cy)
		avg := rank + (t-1)/2
		rankSumX += avg * float64(cx)
		tieTerm += t*t*t - t
		rank += t
	}
	u := rankSumX - n1*(n1+1)/2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	if variance <= 0 {
		return 1 // every value tied
	}
	z := (u - mean - 0.5) / math.Sqrt(variance)
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
