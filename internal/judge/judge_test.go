package judge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// side draws a sample of n requests: each is bad with probability errRate
// and takes a log-normal latency around median (σ 0.3), scaled by slow.
func side(r *rand.Rand, n int, errRate float64, median time.Duration, slow float64) Sample {
	s := Sample{Requests: int64(n)}
	for range n {
		if r.Float64() < errRate {
			s.Errors5xx++
		}
		d := float64(median) * math.Exp(0.3*r.NormFloat64()) * slow
		s.Latencies = append(s.Latencies, time.Duration(d))
	}
	return s
}

func TestJudge(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name     string
		canary   func(*rand.Rand) Sample
		baseline func(*rand.Rand) Sample
		want     Outcome
		reason   string // substring of Reason
	}{
		{
			name:     "20% 5xx canary fails",
			canary:   func(r *rand.Rand) Sample { return side(r, 200, 0.20, 20*time.Millisecond, 1) },
			baseline: func(r *rand.Rand) Sample { return side(r, 1800, 0.001, 20*time.Millisecond, 1) },
			want:     Fail, reason: "error rate",
		},
		{
			name:     "20% 5xx canary fails at the minimum sample",
			canary:   func(r *rand.Rand) Sample { return side(r, 50, 0.20, 20*time.Millisecond, 1) },
			baseline: func(r *rand.Rand) Sample { return side(r, 450, 0, 20*time.Millisecond, 1) },
			want:     Fail, reason: "error rate",
		},
		{
			name: "failed attempts count as errors",
			canary: func(r *rand.Rand) Sample {
				return Sample{Requests: 300, Failed: 30}
			},
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 2700} },
			want:     Fail, reason: "error rate",
		},
		{
			name:     "latency shifted 2x fails",
			canary:   func(r *rand.Rand) Sample { return side(r, 200, 0, 20*time.Millisecond, 2) },
			baseline: func(r *rand.Rand) Sample { return side(r, 1800, 0, 20*time.Millisecond, 1) },
			want:     Fail, reason: "latency",
		},
		{
			name:     "2x on sub-millisecond latencies is within the absolute margin",
			canary:   func(r *rand.Rand) Sample { return side(r, 2000, 0, 200*time.Microsecond, 2) },
			baseline: func(r *rand.Rand) Sample { return side(r, 18000, 0, 200*time.Microsecond, 1) },
			want:     Pass,
		},
		{
			name:     "10% slower on a huge sample passes (effect too small)",
			canary:   func(r *rand.Rand) Sample { return side(r, 20000, 0, 50*time.Millisecond, 1.1) },
			baseline: func(r *rand.Rand) Sample { return side(r, 20000, 0, 50*time.Millisecond, 1) },
			want:     Pass,
		},
		{
			name:     "1 point more errors on a huge sample passes (within margin)",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 100000, Errors5xx: 2000} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900000, Errors5xx: 9000} },
			want:     Pass,
		},
		{
			name:     "too few canary requests is inconclusive",
			canary:   func(r *rand.Rand) Sample { return side(r, 49, 1, 20*time.Millisecond, 5) },
			baseline: func(r *rand.Rand) Sample { return side(r, 1000, 0, 20*time.Millisecond, 1) },
			want:     Inconclusive, reason: "not enough requests",
		},
		{
			name:     "empty baseline is inconclusive",
			canary:   func(r *rand.Rand) Sample { return side(r, 500, 0.5, 20*time.Millisecond, 1) },
			baseline: func(r *rand.Rand) Sample { return Sample{} },
			want:     Inconclusive, reason: "not enough requests",
		},
		{
			name:     "both empty is inconclusive",
			canary:   func(r *rand.Rand) Sample { return Sample{} },
			baseline: func(r *rand.Rand) Sample { return Sample{} },
			want:     Inconclusive,
		},
		{
			name:     "no latencies: error rate alone decides",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 100} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900} },
			want:     Pass, reason: "latency not judged",
		},
		{
			name:     "mean latency only (HAProxy): 3x slower fails",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 100, MeanLatency: 60 * time.Millisecond} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900, MeanLatency: 20 * time.Millisecond} },
			want:     Fail, reason: "mean latency",
		},
		{
			name:     "mean latency only (HAProxy): similar passes",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 100, MeanLatency: 22 * time.Millisecond} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900, MeanLatency: 20 * time.Millisecond} },
			want:     Pass,
		},
		{
			name:     "all latencies equal: no division by zero",
			canary:   func(r *rand.Rand) Sample { return constLatency(100, time.Millisecond) },
			baseline: func(r *rand.Rand) Sample { return constLatency(900, time.Millisecond) },
			want:     Pass,
		},
		{
			name:     "every request bad on both sides: no difference",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 100, Errors5xx: 100} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900, Errors5xx: 900} },
			want:     Pass,
		},
		{
			name:     "counters above the request count are clamped",
			canary:   func(r *rand.Rand) Sample { return Sample{Requests: 10, Errors5xx: 60, Failed: 5} },
			baseline: func(r *rand.Rand) Sample { return Sample{Requests: 900} },
			want:     Fail, reason: "error rate",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			c, b := tt.canary(r), tt.baseline(r)
			v := Judge(c, b, cfg)
			if v.Outcome != tt.want || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("Judge = %v (%q), want %v with %q; verdict %+v", v.Outcome, v.Reason, tt.want, tt.reason, v)
			}
			for _, f := range []float64{v.ErrorRate, v.BaselineErrorRate, v.PValue, v.LatencyPValue} {
				if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1 {
					t.Errorf("verdict has an invalid rate or p-value %v: %+v", f, v)
				}
			}
		})
	}
}

func constLatency(n int, d time.Duration) Sample {
	s := Sample{Requests: int64(n)}
	for range n {
		s.Latencies = append(s.Latencies, d)
	}
	return s
}

// A healthy canary drawn from the baseline's distribution must not fail: a
// false alarm rolls back a good release. 100 seeded runs at a realistic
// 1% background error rate.
func TestJudgeHealthyCanaryNoFalseAlarm(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 7))
		for _, n := range []int{50, 200, 2000} {
			c := side(r, n, 0.01, 20*time.Millisecond, 1)
			b := side(r, 9*n, 0.01, 20*time.Millisecond, 1)
			if v := Judge(c, b, cfg); v.Outcome != Pass {
				t.Errorf("seed %d, %d canary requests: %v: %s", seed, n, v.Outcome, v.Reason)
			}
		}
	}
}

// The same healthy canary must fail once its error rate clearly rises, in
// every seeded run: the test above passing says nothing unless the judge
// can also see a real difference at those sizes.
func TestJudgeBadCanaryAlwaysFails(t *testing.T) {
	cfg := DefaultConfig()
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 7))
		c := side(r, 100, 0.20, 20*time.Millisecond, 1)
		b := side(r, 900, 0.01, 20*time.Millisecond, 1)
		if v := Judge(c, b, cfg); v.Outcome != Fail {
			t.Errorf("seed %d: %v: %s", seed, v.Outcome, v.Reason)
		}
	}
}

func TestFisherGreater(t *testing.T) {
	tests := []struct {
		a, n1, c, n2 int64
		want         float64
	}{
		// Hand-checkable: 3 of 3 vs 0 of 3 → C(3,3)C(3,0)/C(6,3) = 1/20.
		{3, 3, 0, 3, 0.05},
		// Reversed: the canary is better, so the p-value is large.
		{0, 3, 3, 3, 1},
		// 1 of 2 vs 0 of 2: P(X≥1) with k=1 → 1/2.
		{1, 2, 0, 2, 0.5},
		// No bad requests at all.
		{0, 100, 0, 900, 1},
		// Large counts must not underflow into a spurious 0 when the canary is better.
		{0, 100000, 5000, 900000, 1},
	}
	for _, tt := range tests {
		got := fisherGreater(tt.a, tt.n1, tt.c, tt.n2)
		if math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("fisherGreater(%d,%d,%d,%d) = %v, want %v", tt.a, tt.n1, tt.c, tt.n2, got, tt.want)
		}
	}
}

func TestMannWhitneyGreater(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	// Fully separated samples of 10: U = 100, mean 50, sd √175 → z ≈ 3.74.
	if p := mannWhitneyGreater(ms(11, 12, 13, 14, 15, 16, 17, 18, 19, 20), ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)); p > 0.001 {
		t.Errorf("separated, larger: p = %v, want < 0.001", p)
	}
	if p := mannWhitneyGreater(ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), ms(11, 12, 13, 14, 15, 16, 17, 18, 19, 20)); p < 0.999 {
		t.Errorf("separated, smaller: p = %v, want > 0.999", p)
	}
	if p := mannWhitneyGreater(ms(1, 3, 5, 7, 9), ms(2, 4, 6, 8, 10)); p < 0.3 || p > 0.8 {
		t.Errorf("interleaved: p = %v, want near 0.5", p)
	}
	if p := mannWhitneyGreater(ms(5, 5, 5), ms(5, 5, 5, 5)); p != 1 {
		t.Errorf("all tied: p = %v, want 1", p)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.MinRequests = 0 },
		func(c *Config) { c.Alpha = 0 },
		func(c *Config) { c.Alpha = 1 },
		func(c *Config) { c.MaxErrorRateIncrease = -0.1 },
		func(c *Config) { c.MaxErrorRateIncrease = math.NaN() },
		func(c *Config) { c.MaxLatencyRatio = 0.5 },
		func(c *Config) { c.MaxLatencyRatio = math.Inf(1) },
		func(c *Config) { c.MinLatencySamples = 1 },
		func(c *Config) { c.MinLatencyIncrease = -time.Second },
	}
	for i, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v validated", i, c)
		}
		// A bad configuration never fails a canary.
		if v := Judge(Sample{Requests: 1000, Errors5xx: 1000}, Sample{Requests: 1000}, c); v.Outcome != Inconclusive {
			t.Errorf("case %d: Judge with invalid config = %v", i, v.Outcome)
		}
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{Inconclusive, Pass, Fail} {
		b, err := o.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Errorf("%v round-trips to %v, %v", o, back, err)
		}
	}
	var o Outcome
	if err := o.UnmarshalText([]byte("Maybe")); err == nil {
		t.Error("unknown outcome accepted")
	}
	if _, err := Outcome(7).MarshalText(); err == nil {
		t.Error("invalid outcome marshalled")
	}
}

func TestSampleAdd(t *testing.T) {
	a := Sample{Requests: 10, Errors5xx: 1, Latencies: []time.Duration{1}, MeanLatency: 10 * time.Millisecond}
	b := Sample{Requests: 30, Failed: 2, Latencies: []time.Duration{2, 3}, MeanLatency: 30 * time.Millisecond}
	s := a.Add(b)
	if s.Requests != 40 || s.Errors5xx != 1 || s.Failed != 2 || len(s.Latencies) != 3 || s.MeanLatency != 25*time.Millisecond {
		t.Fatalf("Add = %+v", s)
	}
	if len(a.Latencies) != 1 {
		t.Fatalf("Add modified its receiver: %+v", a)
	}
	if (Sample{}).Add(Sample{}).MeanLatency != 0 {
		t.Fatal("empty Add has a mean latency")
	}
}
