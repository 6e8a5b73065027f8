package deploy_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// TestBlueGreenBuiltinCutoverAndRollback is the main blue/green flow behind
// the builtin router, under load from 16 keep-alive clients that must see
// no failed request at any point.
func TestBlueGreenBuiltinCutoverAndRollback(t *testing.T) {
	bgMainFlow(t, traffic.DriverBuiltin)
}

func bgMainFlow(t *testing.T, driver string) {
	f := newBG(t, bgOptions{driver: driver, termWait: 10})
	ham := bgStartHammer(t, f.LB, 16)
	ham.onlyTo(t, f.Blue, 300*time.Millisecond)

	// 1. A deployment to the green hosts waits in Ready.
	id := f.Deploy(t, "green")
	info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped)
	if info.Status != types.DeploymentStatusReady {
		t.Fatalf("deployment %s: %s (%s), want Ready", id, info.Status, bgErr(info))
	}
	if ov := info.DeploymentOverview; ov == nil || ov.Ready != 2 || ov.Pending != 2 {
		t.Errorf("overview while Ready: %+v, want Ready 2 (green) and Pending 2 (blue)", ov)
	}
	targets := f.Targets(t, id)
	for _, h := range f.Green {
		if tg := targets[h.Name]; tg == nil || tg.InstanceLabel != types.TargetLabelGreen || tg.Status != types.TargetStatusReady {
			t.Errorf("target %s: %+v, want label Green status Ready", h.Name, tg)
		}
	}
	for _, h := range f.Blue {
		if tg := targets[h.Name]; tg == nil || tg.InstanceLabel != types.TargetLabelBlue {
			t.Errorf("target %s: %+v, want label Blue", h.Name, tg)
		}
	}
	// Installed but not rerouted: traffic is still all blue.
	ham.onlyTo(t, f.Blue, 300*time.Millisecond)

	// 2. ContinueDeployment(READY_WAIT) reroutes traffic to green.
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	info = f.WaitTerminationWait(t, id)
	if info.Status != types.DeploymentStatusInProgress || !info.InstanceTerminationWaitTimeStarted {
		t.Errorf("during the termination wait: status %s started %v, want InProgress true", info.Status, info.InstanceTerminationWaitTimeStarted)
	}
	if got := f.Serving(t); !slices.Equal(got, bgNames(f.Green)) {
		t.Errorf("serving after reroute %v, want %v", got, bgNames(f.Green))
	}
	ham.onlyTo(t, f.Green, 300*time.Millisecond)
	for _, h := range f.Blue {
		if got, want := h.Hooks(t, id), []string{"BeforeBlockTraffic", "AfterBlockTraffic"}; !slices.Equal(got, want) {
			t.Errorf("%s ran %v during the termination wait, want %v", h.Name, got, want)
		}
		if h.stopped() {
			t.Errorf("%s's application was stopped before the termination wait ended", h.Name)
		}
	}

	// 3. ContinueDeployment(TERMINATION_WAIT) ends the wait: the originals
	// stop their application and the deployment succeeds.
	f.Continue(t, id, types.DeploymentWaitTypeTerminationWait)
	info = f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	if info.DeploymentOverview.Succeeded != 4 {
		t.Errorf("overview after success %+v, want Succeeded 4", info.DeploymentOverview)
	}
	for _, h := range f.Blue {
		if got, want := h.Hooks(t, id), []string{"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"}; !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want %v", h.Name, got, want)
		}
		if !h.stopped() {
			t.Errorf("%s's application still runs after termination", h.Name)
		}
	}
	for _, h := range f.Green {
		want := []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"}
		if got := h.Hooks(t, id); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want %v", h.Name, got, want)
		}
	}
	targets = f.Targets(t, id)
	for _, h := range f.Blue {
		tg := targets[h.Name]
		var evs []string
		for _, e := range tg.LifecycleEvents {
			evs = append(evs, aws.ToString(e.LifecycleEventName)+"="+string(e.Status))
		}
		want := []string{"BeforeBlockTraffic=Succeeded", "BlockTraffic=Succeeded", "AfterBlockTraffic=Succeeded", "ApplicationStop=Succeeded"}
		if !slices.Equal(evs, want) {
			t.Errorf("blue target %s events %v, want %v", h.Name, evs, want)
		}
	}
	ham.onlyTo(t, f.Green, 200*time.Millisecond)

	// 4. A second deployment (back onto the former blue hosts) is stopped
	// with autoRollbackEnabled during its termination wait: a rollback
	// deployment routes traffic back to its originals (the green hosts).
	id2 := f.Deploy(t, "blue")
	if info := f.Env.WaitStatus(t, id2, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("second deployment: %s (%s)", info.Status, bgErr(info))
	}
	f.Continue(t, id2, types.DeploymentWaitTypeReadyWait)
	f.WaitTerminationWait(t, id2)
	ham.onlyTo(t, f.Blue, 300*time.Millisecond)
	out := f.Stop(t, id2, aws.Bool(true))
	if out.Status != types.StopStatusSucceeded {
		t.Errorf("StopDeployment with nothing in flight: %s, want Succeeded", out.Status)
	}
	info = f.WaitDone(t, id2, types.DeploymentStatusStopped)
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeManualStop {
		t.Errorf("stopped deployment error %s, want MANUAL_STOP", bgErr(info))
	}
	if info.RollbackInfo == nil || aws.ToString(info.RollbackInfo.RollbackDeploymentId) == "" {
		t.Fatalf("no rollback deployment: %+v", info.RollbackInfo)
	}
	rb := aws.ToString(info.RollbackInfo.RollbackDeploymentId)
	rinfo := f.WaitDone(t, rb, types.DeploymentStatusSucceeded)
	if rinfo.Creator != types.DeploymentCreatorCodeDeployRollback || aws.ToString(rinfo.RollbackInfo.RollbackTriggeringDeploymentId) != id2 {
		t.Errorf("rollback deployment creator %s triggering %v", rinfo.Creator, rinfo.RollbackInfo)
	}
	f.WaitServing(t, f.Green, 10*time.Second)
	ham.onlyTo(t, f.Green, 300*time.Millisecond)
	for _, h := range f.Green {
		if got, want := h.Hooks(t, rb), []string{"BeforeAllowTraffic", "AfterAllowTraffic"}; !slices.Equal(got, want) {
			t.Errorf("original %s ran %v in the rollback, want %v", h.Name, got, want)
		}
	}
	for _, h := range f.Blue {
		if got, want := h.Hooks(t, rb), []string{"BeforeBlockTraffic", "AfterBlockTraffic"}; !slices.Equal(got, want) {
			t.Errorf("replacement %s ran %v in the rollback, want %v", h.Name, got, want)
		}
	}
	ham.Stop()
	ham.CheckNoFailures(t)
	t.Logf("%d requests served through %s, %d failed", ham.ok.Load(), driver, ham.nfail.Load())
}

// TestBlueGreenReadyWaitRunsOut: nobody calls ContinueDeployment, the Ready
// wait ends at its deadline, the deployment is Stopped and traffic never
// left the original instances.
func TestBlueGreenReadyWaitRunsOut(t *testing.T) {
	const minute = 250 * time.Millisecond
	f := newBG(t, bgOptions{minute: minute, readyWait: 6}) // 1.5 s
	ham := bgStartHammer(t, f.LB, 4)
	id := f.Deploy(t, "green")
	info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped)
	if info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s), want Ready", info.Status, bgErr(info))
	}
	readyAt := time.Now()
	info = f.WaitDone(t, id, types.DeploymentStatusStopped)
	waited := time.Since(readyAt)
	if waited < 6*minute-300*time.Millisecond || waited > 6*minute+3*time.Second {
		t.Errorf("the Ready wait of 6 API minutes (%s) ended after %s", 6*minute, waited)
	}
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeTimeout {
		t.Errorf("error %s, want TIMEOUT", bgErr(info))
	}
	if info.RollbackInfo != nil && aws.ToString(info.RollbackInfo.RollbackDeploymentId) != "" {
		t.Errorf("a Ready wait that ran out started rollback %s", aws.ToString(info.RollbackInfo.RollbackDeploymentId))
	}
	for name, tg := range f.Targets(t, id) {
		if tg.Status == types.TargetStatusReady || tg.Status == types.TargetStatusInProgress || tg.Status == types.TargetStatusPending {
			t.Errorf("target %s left %s in a stopped deployment", name, tg.Status)
		}
	}
	ham.onlyTo(t, f.Blue, 200*time.Millisecond)
	f.WaitServing(t, f.Blue, 5*time.Second)
	_, err := f.Env.Client.ContinueDeployment(t.Context(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait})
	servertest.WantError(t, err, "DeploymentAlreadyCompletedException")
	ham.Stop()
	ham.CheckNoFailures(t)
}

// TestBlueGreenStopInEachPhase stops a deployment while it installs the
// replacement instances, waits in Ready, reroutes, and waits to terminate
// the originals, with and without autoRollbackEnabled; clients never see a
// failed request and traffic ends where the outcome says it must.
func TestBlueGreenStopInEachPhase(t *testing.T) {
	for _, phase := range []string{"installing", "ready", "rerouting", "termination-wait"} {
		for _, rollback := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rollback=%v", phase, rollback), func(t *testing.T) {
				f := newBG(t, bgOptions{})
				ham := bgStartHammer(t, f.LB, 4)
				var held []*bgHost
				hold := func(event string, hs ...*bgHost) {
					for _, h := range hs {
						h.Hold(t, event)
					}
					held = hs
				}
				var event string
				switch phase {
				case "installing":
					event = "BeforeInstall"
					hold(event, f.Green[0])
				case "rerouting":
					// Both replacements are registered and run AfterAllowTraffic;
					// the originals still take traffic too.
					event = "AfterAllowTraffic"
					hold(event, f.Green...)
				}
				id := f.Deploy(t, "green")
				wantStop := types.StopStatusSucceeded
				switch phase {
				case "installing", "rerouting":
					if phase == "rerouting" {
						if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
							t.Fatalf("%s (%s)", info.Status, bgErr(info))
						}
						f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
					}
					for _, h := range held {
						h.WaitAt(t, event, 30*time.Second)
					}
					wantStop = types.StopStatusPending
				case "ready":
					if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
						t.Fatalf("%s (%s)", info.Status, bgErr(info))
					}
				case "termination-wait":
					if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
						t.Fatalf("%s (%s)", info.Status, bgErr(info))
					}
					f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
					f.WaitTerminationWait(t, id)
				}
				out := f.Stop(t, id, aws.Bool(rollback))
				if out.Status != wantStop {
					t.Errorf("StopDeployment answered %s, want %s", out.Status, wantStop)
				}
				for _, h := range held {
					h.Release(event)
				}
				info := f.WaitDone(t, id, types.DeploymentStatusStopped)
				if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeManualStop {
					t.Errorf("error %s, want MANUAL_STOP", bgErr(info))
				}
				for _, h := range f.Blue {
					if hooks := h.Hooks(t, id); len(hooks) > 0 && phase != "termination-wait" {
						t.Errorf("original %s ran %v though the deployment stopped before the reroute", h.Name, hooks)
					}
				}
				rb := ""
				if info.RollbackInfo != nil {
					rb = aws.ToString(info.RollbackInfo.RollbackDeploymentId)
				}
				if rollback != (rb != "") {
					t.Fatalf("autoRollbackEnabled=%v but rollback deployment %q (%+v)", rollback, rb, info.RollbackInfo)
				}
				want := f.Blue
				switch {
				case rollback:
					rinfo := f.WaitDone(t, rb, types.DeploymentStatusSucceeded)
					if rinfo.Creator != types.DeploymentCreatorCodeDeployRollback {
						t.Errorf("rollback creator %s", rinfo.Creator)
					}
				case phase == "rerouting":
					want = append(append([]*bgHost{}, f.Blue...), f.Green...)
				case phase == "termination-wait":
					want = f.Green
				}
				f.WaitServing(t, want, 10*time.Second)
				ham.onlyTo(t, want, 200*time.Millisecond)
				ham.Stop()
				ham.CheckNoFailures(t)
				// The group is free again.
				id2 := f.Deploy(t, "green")
				f.Stop(t, id2, aws.Bool(false))
				f.WaitDone(t, id2, types.DeploymentStatusStopped)
			})
		}
	}
}

// TestBlueGreenContinueStopRace fires ContinueDeployment (both wait types)
// and StopDeployment (with and without rollback) from many goroutines at a
// deployment waiting in Ready. Every call must answer 200 or a modeled
// exception, and the outcome must be one consistent story.
func TestBlueGreenContinueStopRace(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			f := newBG(t, bgOptions{})
			ham := bgStartHammer(t, f.LB, 4)
			id := f.Deploy(t, "green")
			if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
				t.Fatalf("%s (%s)", info.Status, bgErr(info))
			}
			type call struct {
				op       string
				rollback bool
				code     string // "" = 200
				status   types.StopStatus
			}
			calls := make([]call, 48)
			for i := range calls {
				switch i % 4 {
				case 0:
					calls[i].op = "READY_WAIT"
				case 1:
					calls[i].op = "TERMINATION_WAIT"
				case 2:
					calls[i].op, calls[i].rollback = "stop", i%8 == 2
				case 3:
					calls[i].op = "READY_WAIT"
				}
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range calls {
				c := &calls[i]
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					var err error
					if c.op == "stop" {
						var out *codedeploy.StopDeploymentOutput
						out, err = f.Env.Client.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &id, AutoRollbackEnabled: aws.Bool(c.rollback)})
						if err == nil {
							c.status = out.Status
						}
					} else {
						_, err = f.Env.Client.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitType(c.op)})
					}
					if err != nil {
						c.code = servertest.ErrorCode(err)
						if c.code == "" {
							c.code = "transport: " + err.Error()
						}
					}
				})
			}
			close(start)
			wg.Wait()
			modeled := map[string][]string{
				"READY_WAIT":       {"", "DeploymentIsNotInReadyStateException", "DeploymentAlreadyCompletedException"},
				"TERMINATION_WAIT": {"", "DeploymentIsNotInReadyStateException", "InvalidDeploymentStatusException", "DeploymentAlreadyCompletedException"},
				"stop":             {"", "DeploymentAlreadyCompletedException"},
			}
			continued, stopped, rollbackAsked := 0, 0, false
			for _, c := range calls {
				if !slices.Contains(modeled[c.op], c.code) {
					t.Errorf("%s (rollback %v) answered %q: not a modeled outcome", c.op, c.rollback, c.code)
				}
				if c.code != "" {
					continue
				}
				switch c.op {
				case "READY_WAIT":
					continued++
				case "TERMINATION_WAIT":
					t.Errorf("TERMINATION_WAIT was accepted although no termination wait can have started")
				case "stop":
					stopped++
					rollbackAsked = rollbackAsked || c.rollback
					if c.status != types.StopStatusPending && c.status != types.StopStatusSucceeded {
						t.Errorf("stop status %q", c.status)
					}
				}
			}
			if continued > 1 {
				t.Errorf("%d ContinueDeployment(READY_WAIT) calls succeeded; at most one can", continued)
			}
			if stopped == 0 {
				t.Fatalf("no StopDeployment was accepted (continued %d)", continued)
			}
			info := f.WaitDone(t, id, types.DeploymentStatusStopped)
			rb := ""
			if info.RollbackInfo != nil {
				rb = aws.ToString(info.RollbackInfo.RollbackDeploymentId)
			}
			if rollbackAsked != (rb != "") {
				t.Errorf("an accepted stop asked for rollback: %v, rollback deployment %q", rollbackAsked, rb)
			}
			if rb != "" {
				f.WaitDone(t, rb, types.DeploymentStatusSucceeded)
				f.WaitServing(t, f.Blue, 10*time.Second)
			} else if continued == 0 {
				f.WaitServing(t, f.Blue, 10*time.Second)
			}
			// Later calls all see the same completed deployment.
			time.Sleep(100 * time.Millisecond)
			if again := f.Get(t, id); again.Status != types.DeploymentStatusStopped {
				t.Errorf("status changed to %s after the race settled", again.Status)
			}
			_, err := f.Env.Client.ContinueDeployment(t.Context(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait})
			servertest.WantError(t, err, "DeploymentAlreadyCompletedException")
			ham.Stop()
			ham.CheckNoFailures(t)
			t.Logf("continued %d, stops accepted %d, rollback %q", continued, stopped, rb)
		})
	}
}
