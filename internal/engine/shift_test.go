package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func shiftDeployment(ready string, sh Shift) *Deployment {
	d := bgDeployment(ready, 10, "KEEP_ALIVE", 0)
	d.Shift = &sh
	blue := []Instance{{Name: "b0", HostID: "arn:b0"}, {Name: "b1", HostID: "arn:b1"}}
	green := []Instance{{Name: "g0", HostID: "arn:g0"}, {Name: "g1", HostID: "arn:g1"}}
	return NewDeployment(d, blue, green, t0)
}

// runShift ends every step by a Tick at its due time and returns the
// weights seen, starting with the reroute's.
func runShift(t *testing.T, w *world) []int {
	t.Helper()
	d := w.d
	weights := []int{d.Shift.Weight}
	for guard := 0; d.Phase == PhaseShift && guard < 200; guard++ {
		if !d.NextWake(testCfg).Equal(d.Shift.Due) {
			t.Fatalf("next wake %v, want the step's end %v", d.NextWake(testCfg), d.Shift.Due)
		}
		w.now = d.Shift.Due.Add(-2 * testCfg.Minute / 1000)
		if err := w.step(Tick{}); err != nil {
			t.Fatal(err)
		}
		if d.Shift.Weight != weights[len(weights)-1] {
			t.Fatalf("weight moved to %d before its step ended", d.Shift.Weight)
		}
		w.now = d.Shift.Due
		if err := w.step(Tick{}); err != nil {
			t.Fatal(err)
		}
		weights = append(weights, d.Shift.Weight)
		w.drain()
	}
	return weights
}

func TestShiftSteps(t *testing.T) {
	cases := []struct {
		name string
		sh   Shift
		want []int
	}{
		{"linear 25", Shift{Type: ShiftLinear, Percentage: 25, IntervalMinutes: 1}, []int{25, 50, 75, 100}},
		{"linear 40", Shift{Type: ShiftLinear, Percentage: 40, IntervalMinutes: 3}, []int{40, 80, 100}},
		{"canary 10", Shift{Type: ShiftCanary, Percentage: 10, IntervalMinutes: 5}, []int{10, 100}},
		{"linear 99", Shift{Type: ShiftLinear, Percentage: 99, IntervalMinutes: 1}, []int{99, 100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := shiftDeployment("CONTINUE_DEPLOYMENT", tc.sh)
			w := newWorld(t, d)
			_ = w.step(Start{})
			w.drain()
			if d.Phase != PhaseShift {
				t.Fatalf("phase %s after the reroute, want %s", d.Phase, PhaseShift)
			}
			if m := d.StatusMessages; m[len(m)-1] != ShiftMessage(tc.want[0]) {
				t.Fatalf("messages %q do not show the first step", m)
			}
			if !slices.Equal(w.allowPct, []int{tc.want[0], tc.want[0]}) {
				t.Fatalf("AllowTraffic percents %v, want the first step on each replacement", w.allowPct)
			}
			if got := w.events("b0"); len(got) != 0 {
				t.Fatalf("original ran %v during the shift", got)
			}
			got := runShift(t, w)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("weights %v, want %v", got, tc.want)
			}
			if !slices.Equal(w.shifts, tc.want[1:]) {
				t.Fatalf("ShiftTraffic actions %v, want %v", w.shifts, tc.want[1:])
			}
			if d.Status != StatusSucceeded || !slices.Equal(w.events("b0"), blockEvents) {
				t.Fatalf("status %s, original events %v", d.Status, w.events("b0"))
			}
			n := 0
			for _, m := range d.StatusMessages {
				if strings.HasPrefix(m, shiftPrefix) {
					n++
				}
			}
			if n != 1 || !slices.Contains(d.StatusMessages, ShiftMessage(100)) {
				t.Fatalf("messages %q: want one shift message, at 100%%", d.StatusMessages)
			}
		})
	}
}

func TestShiftAfterReadyWait(t *testing.T) {
	d := shiftDeployment("STOP_DEPLOYMENT", Shift{Type: ShiftLinear, Percentage: 50, IntervalMinutes: 1})
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Status != StatusReady || len(w.allowPct) != 0 {
		t.Fatalf("status %s, allows %v: want the ready wait first", d.Status, w.allowPct)
	}
	if err := w.step(Continue{WaitType: "READY_WAIT"}); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if got := runShift(t, w); !slices.Equal(got, []int{50, 100}) {
		t.Fatalf("weights %v", got)
	}
}

func TestShiftStopAndContinue(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name       string
		ev         Event
		wantStatus Status
		wantShifts []int
		wantWeight int
		rollback   bool
	}{
		{"stop with rollback", Stop{Rollback: &yes}, StatusStopped, []int{50, 0}, 0, true},
		{"stop without rollback", Stop{Rollback: &no}, StatusStopped, []int{50}, 50, false},
		{"judgment fails, rollback", JudgmentFailed{Reason: "5xx", Rollback: true}, StatusStopped, []int{50, 0}, 0, true},
		{"alarm without rollback", AlarmStop{Message: "alarm", Rollback: false}, StatusStopped, []int{50}, 50, false},
		{"continue promotes now", Continue{WaitType: "READY_WAIT"}, StatusSucceeded, []int{50, 100}, 100, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := shiftDeployment("CONTINUE_DEPLOYMENT", Shift{Type: ShiftLinear, Percentage: 25, IntervalMinutes: 1})
			w := newWorld(t, d)
			_ = w.step(Start{})
			w.drain()
			w.now = d.Shift.Due
			_ = w.step(Tick{}) // 25 -> 50
			if err := w.step(Continue{WaitType: "TERMINATION_WAIT"}); err == nil {
				t.Fatal("TERMINATION_WAIT accepted during the shift")
			}
			if err := w.step(tc.ev); err != nil {
				t.Fatal(err)
			}
			w.drain()
			if d.Status != tc.wantStatus || !slices.Equal(w.shifts, tc.wantShifts) || d.Shift.Weight != tc.wantWeight {
				t.Fatalf("status %s shifts %v weight %d; want %s %v %d", d.Status, w.shifts, d.Shift.Weight, tc.wantStatus, tc.wantShifts, tc.wantWeight)
			}
			if d.RollbackWanted != tc.rollback {
				t.Fatalf("rollback wanted %v", d.RollbackWanted)
			}
			if tc.wantStatus == StatusStopped {
				for _, in := range d.Instances {
					if in.Label == Blue && in.Retired {
						t.Fatalf("original %s left the fleet on a stop mid-shift", in.Name)
					}
				}
				if !d.NextWake(testCfg).IsZero() {
					t.Fatal("a stopped shift still wakes")
				}
			}
		})
	}
}

// A replica that loads the stored state mid-shift resumes at the same
// weight and step end: it re-applies the weight and never jumps.
func TestShiftResumesAtStoredWeight(t *testing.T) {
	d := shiftDeployment("CONTINUE_DEPLOYMENT", Shift{Type: ShiftLinear, Percentage: 25, IntervalMinutes: 1})
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	w.now = d.Shift.Due
	_ = w.step(Tick{}) // 50
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Deployment
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	due := back.Shift.Due
	w2 := newWorld(t, &back)
	w2.now = w.now
	if err := w2.step(Resumed{}); err != nil {
		t.Fatal(err)
	}
	if back.Phase != PhaseShift || back.Shift.Weight != 50 || !back.Shift.Due.Equal(due) || !slices.Equal(w2.shifts, []int{50}) {
		t.Fatalf("resumed phase %s weight %d due %v shifts %v", back.Phase, back.Shift.Weight, back.Shift.Due, w2.shifts)
	}
	if got := runShift(t, w2); !slices.Equal(got, []int{50, 75, 100}) {
		t.Fatalf("weights after resume %v", got)
	}
}
