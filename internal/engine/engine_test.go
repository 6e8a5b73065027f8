package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

var testCfg = Config{Minute: time.Second, PickupTimeout: 5 * time.Minute, EventTimeout: time.Hour}

func hosts(n int) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = Instance{Name: fmt.Sprintf("h%d", i), HostID: fmt.Sprintf("arn:h%d", i)}
	}
	return out
}

// world completes commands in FIFO order, one at a time, and records what
// happened so tests can check invariants at every step.
type world struct {
	t           *testing.T
	d           *Deployment
	now         time.Time
	queue       []Action
	log         []string // "host:event"
	maxInFlight int
	fail        func(host, event string) bool
	finished    []Status
	terminated  []string
	hold        func(host, event string) bool // leave this command in flight
	held        []Action
	shifts      []int // ShiftTraffic percents, in order
	allowPct    []int // Percent of every replacement's AllowTraffic
}

func newWorld(t *testing.T, d *Deployment) *world {
	return &world{t: t, d: d, now: t0, fail: func(string, string) bool { return false }, hold: func(string, string) bool { return false }}
}

func (w *world) step(ev Event) error {
	w.t.Helper()
	w.now = w.now.Add(time.Millisecond)
	before := make([]string, len(w.d.Instances))
	for i, in := range w.d.Instances {
		b, _ := json.Marshal(in)
		before[i] = string(b)
	}
	acts, err := Step(w.d, testCfg, ev, w.now)
	if err != nil {
		return err
	}
	// The runner persists only instances stamped with the step's time.
	for i, in := range w.d.Instances {
		b, _ := json.Marshal(in)
		if i < len(before) && string(b) != before[i] && !in.LastUpdated.Equal(w.now) {
			w.t.Fatalf("%T changed instance %s without stamping LastUpdated", ev, in.Name)
		}
	}
	for _, a := range acts {
		switch a := a.(type) {
		case Dispatch:
			w.queue = append(w.queue, a)
		case Traffic:
			if a.Allow && a.Percent > 0 {
				w.allowPct = append(w.allowPct, a.Percent)
			}
			w.queue = append(w.queue, a)
		case ShiftTraffic:
			w.shifts = append(w.shifts, a.Percent)
		case Finished:
			w.finished = append(w.finished, a.Status)
		case Terminate:
			w.terminated = append(w.terminated, a.Instances...)
		}
	}
	n := 0
	for _, in := range w.d.Instances {
		if in.Cmd != nil {
			n++
		}
	}
	w.maxInFlight = max(w.maxInFlight, n)
	return nil
}

// drain completes queued commands until none are left.
func (w *world) drain() {
	w.t.Helper()
	for len(w.queue) > 0 {
		a := w.queue[0]
		w.queue = w.queue[1:]
		var host, event, id string
		switch a := a.(type) {
		case Dispatch:
			host, event, id = a.Instance, a.Command.Event, a.Command.ID
		case Traffic:
			host, event, id = a.Instance, a.Command.Event, a.Command.ID
		}
		if w.hold(host, event) {
			w.held = append(w.held, a)
			continue
		}
		w.log = append(w.log, host+":"+event)
		ok := !w.fail(host, event)
		diag := Diagnostics{}
		if !ok {
			diag = Diagnostics{ErrorCode: "ScriptFailed", Message: "failed with exit code 1"}
		}
		if err := w.step(Acked{CommandID: id}); err != nil {
			w.t.Fatal(err)
		}
		if err := w.step(Completed{CommandID: id, Succeeded: ok, Diagnostics: diag}); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) events(host string) []string {
	var out []string
	for _, l := range w.log {
		if h, e, _ := strings.Cut(l, ":"); h == host {
			out = append(out, e)
		}
	}
	return out
}

func TestInPlaceBatching(t *testing.T) {
	cases := []struct {
		name        string
		n           int
		mh          MinHealthy
		failHosts   []string
		wantStatus  Status
		wantCode    string
		maxInFlight int
	}{
		{"one instance OneAtATime", 1, MinHealthy{Type: MostConcurrency, Value: 1}, nil, StatusSucceeded, "", 1},
		{"OneAtATime three", 3, MinHealthy{Type: MostConcurrency, Value: 1}, nil, StatusSucceeded, "", 1},
		{"OneAtATime first fails", 3, MinHealthy{Type: MostConcurrency, Value: 1}, []string{"h0"}, StatusFailed, CodeHealthConstraints, 1},
		{"OneAtATime last fails still succeeds", 3, MinHealthy{Type: MostConcurrency, Value: 1}, []string{"h2"}, StatusSucceeded, "", 1},
		{"HalfAtATime nine", 9, MinHealthy{Type: FleetPercent, Value: 50}, nil, StatusSucceeded, "", 4},
		{"HOST_COUNT 6 of 9", 9, MinHealthy{Type: HostCount, Value: 6}, nil, StatusSucceeded, "", 3},
		{"FLEET_PERCENT 40 of 9", 9, MinHealthy{Type: FleetPercent, Value: 40}, nil, StatusSucceeded, "", 5},
		{"AllAtOnce", 5, MinHealthy{Type: FleetPercent, Value: 0}, nil, StatusSucceeded, "", 5},
		{"AllAtOnce one survivor succeeds", 3, MinHealthy{Type: FleetPercent, Value: 0}, []string{"h0", "h1"}, StatusSucceeded, "", 3},
		{"AllAtOnce all fail", 2, MinHealthy{Type: FleetPercent, Value: 0}, []string{"h0", "h1"}, StatusFailed, CodeHealthConstraints, 2},
		{"M >= N cannot start", 2, MinHealthy{Type: HostCount, Value: 2}, nil, StatusFailed, CodeHealthConstraintsInvalid, 0},
		{"no instances", 0, MinHealthy{Type: MostConcurrency, Value: 1}, nil, StatusFailed, CodeNoInstances, 0},
		{"HOST_COUNT 8 of 10 second failure fails", 10, MinHealthy{Type: HostCount, Value: 8}, []string{"h0", "h1"}, StatusFailed, CodeHealthConstraints, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-TEST00001", MinHealthy: tc.mh}, nil, hosts(tc.n), t0)
			w := newWorld(t, d)
			w.fail = func(h, e string) bool { return e == AfterInstall && slices.Contains(tc.failHosts, h) }
			if err := w.step(Start{}); err != nil {
				t.Fatal(err)
			}
			w.drain()
			if d.Status != tc.wantStatus || d.ErrorCode != tc.wantCode {
				t.Fatalf("status %s/%s, want %s/%s (%s)", d.Status, d.ErrorCode, tc.wantStatus, tc.wantCode, d.ErrorMessage)
			}
			if w.maxInFlight != tc.maxInFlight {
				t.Errorf("max in flight %d, want %d", w.maxInFlight, tc.maxInFlight)
			}
			if len(w.finished) != 1 {
				t.Errorf("finished %v, want exactly one", w.finished)
			}
			for _, in := range d.Instances {
				if in.Cmd != nil || in.Status == InProgress || in.Status == Pending {
					t.Errorf("instance %s left %s", in.Name, in.Status)
				}
			}
		})
	}
}

func TestEventOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		traffic bool
		want    []string
	}{
		{"without load balancer", false, installEvents},
		{"with load balancer", true, []string{BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic, ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService, BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-TEST00001", TrafficControl: tc.traffic, MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
			w := newWorld(t, d)
			_ = w.step(Start{})
			w.drain()
			if got := w.events("h0"); !slices.Equal(got, tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			if d.Status != StatusSucceeded {
				t.Fatalf("status %s", d.Status)
			}
			for _, e := range d.Instances[0].Events {
				if e.Status != Succeeded || e.Diagnostics == nil || e.Diagnostics.ErrorCode != "Success" {
					t.Errorf("event %s: %s %+v", e.Name, e.Status, e.Diagnostics)
				}
			}
		})
	}
}

func TestFailureSkipsRestAndIgnoreStopFailures(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprint("ignore=", ignore), func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-TEST00001", IgnoreApplicationStopFailures: ignore, MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
			w := newWorld(t, d)
			w.fail = func(h, e string) bool { return e == ApplicationStop }
			_ = w.step(Start{})
			w.drain()
			in := d.Instances[0]
			if ignore {
				if d.Status != StatusSucceeded || in.Events[0].Status != Failed || in.Events[1].Status != Succeeded {
					t.Fatalf("status %s events %+v", d.Status, in.Events)
				}
				return
			}
			if d.Status != StatusFailed || in.Status != Failed {
				t.Fatalf("status %s instance %s", d.Status, in.Status)
			}
			for _, e := range in.Events[1:] {
				if e.Status != Skipped {
					t.Errorf("%s is %s, want Skipped", e.Name, e.Status)
				}
			}
		})
	}
}

func TestPickupTimeout(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-TEST00001", MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	wake := d.NextWake(testCfg)
	if want := d.Instances[0].Cmd.Dispatched.Add(testCfg.PickupTimeout); !wake.Equal(want) {
		t.Fatalf("next wake %v, want %v", wake, want)
	}
	if _, err := Step(d, testCfg, Tick{}, wake.Add(-time.Second)); err != nil || d.Status != StatusInProgress {
		t.Fatalf("early tick changed status to %s (%v)", d.Status, err)
	}
	if _, err := Step(d, testCfg, Tick{}, wake); err != nil {
		t.Fatal(err)
	}
	ev := d.Instances[0].Events[0]
	if d.Status != StatusFailed || ev.Status != Failed || ev.Diagnostics.Message != MsgAgentNotReceived || d.ErrorCode != CodeHealthConstraints {
		t.Fatalf("status %s/%s event %+v", d.Status, d.ErrorCode, ev)
	}
}

func TestStopWithWorkInFlight(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-TEST00001", MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(3), t0)
	w := newWorld(t, d)
	w.hold = func(h, e string) bool { return e == BeforeInstall }
	_ = w.step(Start{})
	w.drain() // h0 is now held in BeforeInstall
	if !d.InFlight() {
		t.Fatal("expected a command in flight")
	}
	if err := w.step(Stop{}); err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusInProgress {
		t.Fatalf("status %s while the event runs, want InProgress (stop pending)", d.Status)
	}
	held := w.held[0].(Dispatch)
	_ = w.step(Completed{CommandID: held.Command.ID, Succeeded: true})
	if d.Status != StatusStopped || d.ErrorCode != CodeManualStop {
		t.Fatalf("status %s/%s", d.Status, d.ErrorCode)
	}
	ov := d.Overview()
	if ov[Failed] != 1 || ov[Skipped] != 2 {
		t.Fatalf("overview %v, want the interrupted instance Failed and two Skipped", ov)
	}
	if len(w.queue) != 0 {
		t.Fatalf("commands scheduled after stop: %v", w.queue)
	}
	// A late duplicate complete changes nothing.
	if _, err := Step(d, testCfg, Completed{CommandID: held.Command.ID}, t0.Add(time.Hour)); err != nil || d.Status != StatusStopped {
		t.Fatal("terminal deployment changed")
	}
	if _, err := Step(d, testCfg, Continue{WaitType: "READY_WAIT"}, t0); err == nil {
		t.Fatal("continue on a stopped deployment must fail")
	}
}

func TestStopRollbackChoice(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name     string
		onStop   bool
		rollback *bool
		want     bool
	}{
		{"follow config on", true, nil, true},
		{"follow config off", false, nil, false},
		{"explicit yes", false, &yes, true},
		{"explicit no overrides config", true, &no, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeployment(Deployment{ID: "d-X", RollbackOnStop: tc.onStop, MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
			_, _ = Step(d, testCfg, Start{}, t0)
			_, _ = Step(d, testCfg, Stop{Rollback: tc.rollback}, t0)
			_, _ = Step(d, testCfg, Completed{CommandID: "d-X-1", Succeeded: true}, t0)
			if d.Status != StatusStopped || d.RollbackWanted != tc.want {
				t.Fatalf("status %s rollbackWanted %v", d.Status, d.RollbackWanted)
			}
		})
	}
}

func bgDeployment(ready string, wait int, term string, termWait int) Deployment {
	return Deployment{ID: "d-BG0000001", Kind: KindBlueGreen, TrafficControl: true, MinHealthy: MinHealthy{Type: FleetPercent, Value: 0},
		ReadyAction: ready, ReadyWaitMinutes: wait, TerminateAction: term, TerminationWaitMinutes: termWait}
}

func TestBlueGreenFullCycle(t *testing.T) {
	blue := []Instance{{Name: "b0", HostID: "arn:b0"}, {Name: "b1", HostID: "arn:b1"}}
	green := []Instance{{Name: "g0", HostID: "arn:g0"}, {Name: "g1", HostID: "arn:g1"}}
	d := NewDeployment(bgDeployment("STOP_DEPLOYMENT", 10, "TERMINATE", 5), blue, green, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Status != StatusReady || d.Overview()[Ready] != 2 {
		t.Fatalf("status %s overview %v, want Ready with 2 ready", d.Status, d.Overview())
	}
	if got := w.events("b0"); len(got) != 0 {
		t.Fatalf("blue ran %v before the reroute", got)
	}
	if !d.NextWake(testCfg).Equal(d.ReadyDeadline) {
		t.Fatal("ready deadline is not the next wake")
	}
	if err := w.step(Continue{WaitType: "TERMINATION_WAIT"}); err == nil {
		t.Fatal("TERMINATION_WAIT accepted during the ready wait")
	}
	if err := w.step(Continue{WaitType: "READY_WAIT"}); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if d.Phase != PhaseTermination || d.Status != StatusInProgress || !d.TerminationWaitOn {
		t.Fatalf("phase %s status %s", d.Phase, d.Status)
	}
	if got := w.events("g0"); !slices.Equal(got, append(append([]string{}, installEvents...), allowEvents...)) {
		t.Fatalf("green events %v", got)
	}
	if got := w.events("b1"); !slices.Equal(got, blockEvents) {
		t.Fatalf("blue events %v", got)
	}
	// Blue leaves traffic only after every green instance took it.
	lastAllow, firstBlock := -1, len(w.log)
	for i, l := range w.log {
		if strings.HasSuffix(l, ":"+AllowTraffic) {
			lastAllow = i
		}
		if strings.HasSuffix(l, ":"+BlockTraffic) && i < firstBlock {
			firstBlock = i
		}
	}
	if lastAllow > firstBlock {
		t.Fatalf("blocked blue before green had traffic: %v", w.log)
	}
	if err := w.step(Continue{WaitType: "READY_WAIT"}); err == nil {
		t.Fatal("READY_WAIT accepted during the termination wait")
	}
	if err := w.step(Continue{WaitType: "TERMINATION_WAIT"}); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if d.Status != StatusSucceeded {
		t.Fatalf("status %s", d.Status)
	}
	if got := w.events("b0"); got[len(got)-1] != ApplicationStop {
		t.Fatalf("blue not stopped at termination: %v", got)
	}
	if !slices.Equal(w.terminated, []string{"b0", "b1"}) {
		t.Fatalf("terminated %v", w.terminated)
	}
}

func TestBlueGreenReadyTimeoutStops(t *testing.T) {
	d := NewDeployment(bgDeployment("STOP_DEPLOYMENT", 3, "KEEP_ALIVE", 0), hosts(1), []Instance{{Name: "g0"}}, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	deadline := d.ReadyDeadline
	if want := w.now.Add(3 * testCfg.Minute); deadline.Sub(want).Abs() > 5*time.Millisecond {
		t.Fatalf("deadline %v, want about %v", deadline, want)
	}
	_, _ = Step(d, testCfg, Tick{}, deadline)
	if d.Status != StatusStopped || d.ErrorCode != CodeTimeout {
		t.Fatalf("status %s/%s", d.Status, d.ErrorCode)
	}
}

func TestBlueGreenContinueAndKeepAlive(t *testing.T) {
	d := NewDeployment(bgDeployment("CONTINUE_DEPLOYMENT", 0, "KEEP_ALIVE", 0), hosts(2), []Instance{{Name: "g0"}}, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Status != StatusSucceeded || d.TerminationWaitOn {
		t.Fatalf("status %s termination wait %v", d.Status, d.TerminationWaitOn)
	}
	if !slices.Equal(w.terminated, []string{"h0", "h1"}) {
		t.Fatalf("keep-alive originals should leave the fleet: %v", w.terminated)
	}
	if got := w.events("h0"); !slices.Equal(got, blockEvents) {
		t.Fatalf("blue ran %v", got)
	}
}

func TestBlueGreenRollbackSwapsRoles(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-RB0000001", Kind: KindReroute, TrafficControl: true, MinHealthy: MinHealthy{Type: FleetPercent}}, hosts(1), []Instance{{Name: "g0"}}, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Status != StatusSucceeded {
		t.Fatalf("status %s %s", d.Status, d.ErrorMessage)
	}
	if got := w.events("h0"); !slices.Equal(got, allowEvents) {
		t.Fatalf("originals ran %v", got)
	}
	if got := w.events("g0"); !slices.Equal(got, blockEvents) {
		t.Fatalf("replacements ran %v", got)
	}
}

func TestStopDuringEachBlueGreenPhase(t *testing.T) {
	for _, phase := range []Phase{PhaseInstall, PhaseReadyWait, PhaseAllow, PhaseTermination} {
		t.Run(string(phase), func(t *testing.T) {
			d := NewDeployment(bgDeployment("STOP_DEPLOYMENT", 10, "TERMINATE", 10), hosts(1), []Instance{{Name: "g0"}}, t0)
			w := newWorld(t, d)
			w.hold = func(h, e string) bool {
				return (phase == PhaseInstall && e == Install) || (phase == PhaseAllow && e == AllowTraffic)
			}
			_ = w.step(Start{})
			w.drain()
			if phase == PhaseAllow || phase == PhaseTermination {
				_ = w.step(Continue{WaitType: "READY_WAIT"})
				w.drain()
			}
			if d.Phase != phase {
				t.Fatalf("reached phase %s, want %s", d.Phase, phase)
			}
			_ = w.step(Stop{})
			for _, a := range w.held {
				var id string
				switch a := a.(type) {
				case Dispatch:
					id = a.Command.ID
				case Traffic:
					id = a.Command.ID
				}
				_ = w.step(Completed{CommandID: id, Succeeded: true})
			}
			w.hold = func(string, string) bool { return false }
			w.drain()
			if d.Status != StatusStopped {
				t.Fatalf("status %s", d.Status)
			}
		})
	}
}

// Replacement instances that failed to install are out of the reroute: the
// ones that installed are rerouted in the configuration's batches.
func TestBlueGreenRerouteIgnoresInstallFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mh     MinHealthy
		greens int
		failed []string
	}{
		{"OneAtATime last install fails", MinHealthy{Type: MostConcurrency, Value: 1}, 2, []string{"g1"}},
		{"HalfAtATime half fail", MinHealthy{Type: FleetPercent, Value: 50}, 4, []string{"g2", "g3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var green []Instance
			for i := range tc.greens {
				green = append(green, Instance{Name: fmt.Sprintf("g%d", i)})
			}
			dep := bgDeployment("CONTINUE_DEPLOYMENT", 0, "KEEP_ALIVE", 0)
			dep.MinHealthy = tc.mh
			d := NewDeployment(dep, []Instance{{Name: "b0"}}, green, t0)
			w := newWorld(t, d)
			w.fail = func(h, e string) bool { return e == Install && slices.Contains(tc.failed, h) }
			_ = w.step(Start{})
			w.drain()
			if d.Status != StatusSucceeded {
				t.Fatalf("status %s %s", d.Status, d.ErrorMessage)
			}
			for _, in := range d.Instances {
				if in.Label == Green && !slices.Contains(tc.failed, in.Name) && in.Status != Succeeded {
					t.Errorf("%s is %s, want Succeeded (rerouted)", in.Name, in.Status)
				}
			}
		})
	}
}

// Stopping after the reroute without a rollback leaves traffic on the
// replacements, and they become the fleet.
func TestBlueGreenStopAfterRerouteHandsOverFleet(t *testing.T) {
	d := NewDeployment(bgDeployment("CONTINUE_DEPLOYMENT", 0, "TERMINATE", 60), hosts(1), []Instance{{Name: "g0"}}, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.drain()
	if d.Phase != PhaseTermination {
		t.Fatalf("phase %s", d.Phase)
	}
	no := false
	_ = w.step(Stop{Rollback: &no})
	if d.Status != StatusStopped || !slices.Equal(w.terminated, []string{"h0"}) {
		t.Fatalf("status %s, retired %v", d.Status, w.terminated)
	}
}

// A stop that arrives before the deployment started ends it at once.
func TestStopBeforeStart(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-X", RollbackOnFailure: true, MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(2), t0)
	w := newWorld(t, d)
	_ = w.step(Stop{})
	if d.Status != StatusStopped || d.ErrorCode != CodeManualStop || d.RollbackWanted {
		t.Fatalf("status %s/%s rollback %v", d.Status, d.ErrorCode, d.RollbackWanted)
	}
	if err := w.step(Start{}); err == nil || d.Status != StatusStopped {
		t.Fatalf("start after stop: %v, status %s", err, d.Status)
	}
}

// After a restart, commands handed out again get a fresh pickup clock.
func TestResumedRestartsPickupClock(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-X", MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
	_, _ = Step(d, testCfg, Start{}, t0)
	later := t0.Add(2 * testCfg.PickupTimeout)
	_, _ = Step(d, testCfg, Resumed{}, later)
	_, _ = Step(d, testCfg, Tick{}, later.Add(time.Second))
	if d.Status != StatusInProgress {
		t.Fatalf("the server's downtime failed the event: %s", d.Status)
	}
}

// TestNextWakeCoversTrafficCommands: a traffic command whose result never
// comes is failed by tick at its timeout, and NextWake says when, so the
// runner wakes for it instead of on a fallback timer.
func TestNextWakeCoversTrafficCommands(t *testing.T) {
	d := NewDeployment(Deployment{ID: "d-TC0000001", TrafficControl: true, MinHealthy: MinHealthy{Type: MostConcurrency}}, nil, hosts(1), t0)
	now := t0
	if _, err := Step(d, testCfg, Start{}, now); err != nil {
		t.Fatal(err)
	}
	for c := d.Instances[0].Cmd; c != nil && !IsTrafficEvent(c.Event); c = d.Instances[0].Cmd {
		now = now.Add(time.Second)
		if _, err := Step(d, testCfg, Completed{CommandID: c.ID, Succeeded: true}, now); err != nil {
			t.Fatal(err)
		}
	}
	c := d.Instances[0].Cmd
	if c == nil || c.Event != BlockTraffic {
		t.Fatalf("command %+v, want BlockTraffic in flight", c)
	}
	want := c.Dispatched.Add(testCfg.EventTimeout)
	if got := d.NextWake(testCfg); !got.Equal(want) {
		t.Fatalf("next wake %v, want the traffic timeout %v", got, want)
	}
	if _, err := Step(d, testCfg, Tick{}, want); err != nil {
		t.Fatal(err)
	}
	if d.Instances[0].Cmd != nil || d.Status != StatusFailed {
		t.Fatalf("after the traffic timeout: status %s, command %+v", d.Status, d.Instances[0].Cmd)
	}
}
