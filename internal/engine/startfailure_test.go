package engine

import (
	"testing"
	"time"
)

// TestStartFailureDelay: a deployment that cannot start shows InProgress
// for Config.StartFailureDelay, dispatches nothing, then fails with the
// error decided at start; a stop in between wins.
func TestStartFailureDelay(t *testing.T) {
	const delay = 2 * time.Second
	cfg := testCfg
	cfg.StartFailureDelay = delay
	cases := []struct {
		name     string
		n        int
		mh       MinHealthy
		stop     bool
		want     Status
		wantCode string
	}{
		{"no instances", 0, MinHealthy{Type: MostConcurrency, Value: 1}, false, StatusFailed, CodeNoInstances},
		{"impossible health constraints", 2, MinHealthy{Type: HostCount, Value: 2}, false, StatusFailed, CodeHealthConstraintsInvalid},
		{"stopped while failing", 0, MinHealthy{Type: MostConcurrency, Value: 1}, true, StatusStopped, CodeManualStop},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-TEST00002", MinHealthy: tc.mh}, nil, hosts(tc.n), t0)
			acts, err := Step(d, cfg, Start{}, t0)
			if err != nil {
				t.Fatal(err)
			}
			if len(acts) != 0 || d.Status != StatusInProgress || d.ErrorCode != "" {
				t.Fatalf("after Start: status %s code %q actions %v", d.Status, d.ErrorCode, acts)
			}
			if w := d.NextWake(cfg); !w.Equal(t0.Add(delay)) {
				t.Errorf("NextWake %v, want %v", w, t0.Add(delay))
			}
			if acts, _ := Step(d, cfg, Tick{}, t0.Add(delay-time.Millisecond)); len(acts) != 0 || d.Status != StatusInProgress {
				t.Fatalf("early tick: status %s actions %v", d.Status, acts)
			}
			if tc.stop {
				if _, err := Step(d, cfg, Stop{}, t0.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			}
			acts, _ = Step(d, cfg, Tick{}, t0.Add(delay))
			if d.Status != tc.want || d.ErrorCode != tc.wantCode {
				t.Fatalf("status %s/%s, want %s/%s", d.Status, d.ErrorCode, tc.want, tc.wantCode)
			}
			for _, a := range acts {
				if _, ok := a.(Dispatch); ok {
					t.Errorf("dispatched %v", a)
				}
			}
			for _, in := range d.Instances {
				if in.Status != Skipped {
					t.Errorf("instance %s %s, want Skipped", in.Name, in.Status)
				}
			}
			if !d.NextWake(cfg).IsZero() {
				t.Errorf("terminal deployment wakes at %v", d.NextWake(cfg))
			}
		})
	}
}
