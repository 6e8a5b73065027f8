package engine

import "testing"

func TestAlarmStop(t *testing.T) {
	for _, tc := range []struct {
		name         string
		start        bool
		manualFirst  bool
		rollback     bool
		wantCode     string
		wantRollback bool
	}{
		{"in flight, roll back", true, false, true, CodeAlarmActive, true},
		{"in flight, no rollback", true, false, false, CodeAlarmActive, false},
		{"before start: nothing ran, nothing to roll back", false, false, true, CodeAlarmActive, false},
		{"a manual stop already pending keeps its cause", true, true, true, CodeManualStop, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-X", MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(2), t0)
			w := newWorld(t, d)
			w.hold = func(h, e string) bool { return e == BeforeInstall }
			if tc.start {
				_ = w.step(Start{})
				w.drain()
			}
			if tc.manualFirst {
				_ = w.step(Stop{})
			}
			if err := w.step(AlarmStop{Message: "alarm a1 fired", Rollback: tc.rollback}); err != nil {
				t.Fatal(err)
			}
			w.queue = append(w.queue, w.held...)
			w.held, w.hold = nil, func(string, string) bool { return false }
			w.drain()
			if d.Status != StatusStopped || d.ErrorCode != tc.wantCode || d.RollbackWanted != tc.wantRollback {
				t.Fatalf("status %s/%s rollback %v", d.Status, d.ErrorCode, d.RollbackWanted)
			}
			if tc.wantCode == CodeAlarmActive && d.ErrorMessage != "alarm a1 fired" {
				t.Fatalf("message %q", d.ErrorMessage)
			}
			if ov := d.Overview(); ov[Succeeded] != 0 || ov[Pending] != 0 {
				t.Fatalf("overview %v: the second instance must not have run", ov)
			}
		})
	}
}

func TestAlarmStopDuringReadyWait(t *testing.T) {
	blue := []Instance{{Name: "b0", HostID: "arn:b0"}}
	green := []Instance{{Name: "g0", HostID: "arn:g0"}}
	d := NewDeployment(bgDeployment("STOP_DEPLOYMENT", 60, "KEEP_ALIVE", 0), blue, green, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Phase != PhaseReadyWait {
		t.Fatalf("phase %s, want the Ready wait", d.Phase)
	}
	_ = w.step(AlarmStop{Message: "alarm fired", Rollback: true})
	w.drain()
	if d.Status != StatusStopped || d.ErrorCode != CodeAlarmActive || !d.RollbackWanted {
		t.Fatalf("status %s/%s rollback %v", d.Status, d.ErrorCode, d.RollbackWanted)
	}
}

// TestJudgmentFailedStopsLikeAnAlarm: a failing canary judgment during the
// reroute stops the blue/green deployment with ALARM_ACTIVE, its reason in
// the message, and rolls back as DEPLOYMENT_STOP_ON_ALARM says.
func TestJudgmentFailedStopsLikeAnAlarm(t *testing.T) {
	for _, rollback := range []bool{true, false} {
		d := NewDeployment(bgDeployment("CONTINUE_DEPLOYMENT", 0, "KEEP_ALIVE", 0), hosts(2), []Instance{{Name: "g0"}, {Name: "g1"}}, t0)
		w := newWorld(t, d)
		_ = w.step(Start{})
		w.hold = func(h, e string) bool { return e == AllowTraffic }
		w.drain()
		if d.Phase != PhaseAllow {
			t.Fatalf("phase %s", d.Phase)
		}
		if err := w.step(JudgmentFailed{Reason: "5xx rate 20.0% on green vs 0.0% on blue", Rollback: rollback}); err != nil {
			t.Fatal(err)
		}
		w.queue = append(w.queue, w.held...)
		w.held, w.hold = nil, func(string, string) bool { return false }
		w.drain()
		if d.Status != StatusStopped || d.ErrorCode != CodeAlarmActive || d.RollbackWanted != rollback {
			t.Fatalf("rollback %v: status %s/%s rollbackWanted %v", rollback, d.Status, d.ErrorCode, d.RollbackWanted)
		}
		if want := "The deployment was stopped because the automatic canary judgment failed: 5xx rate 20.0% on green vs 0.0% on blue"; d.ErrorMessage != want {
			t.Fatalf("message %q", d.ErrorMessage)
		}
		if got := w.events("h0"); len(got) != 0 {
			t.Fatalf("originals left traffic after the judgment failed: %v", got)
		}
	}
}
