package deploy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// bgShiftConfig creates a Server deployment configuration that shifts
// traffic linearly by percent every interval API minutes.
func bgShiftConfig(t *testing.T, f *bgFixture, name string, percent, interval int32) {
	t.Helper()
	_, err := f.Env.Client.CreateDeploymentConfig(context.Background(), &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String(name),
		MinimumHealthyHosts:  &types.MinimumHealthyHosts{Type: types.MinimumHealthyHostsTypeHostCount, Value: 0},
		TrafficRoutingConfig: &types.TrafficRoutingConfig{Type: types.TrafficRoutingTypeTimeBasedLinear,
			TimeBasedLinear: &types.TimeBasedLinear{LinearPercentage: percent, LinearInterval: interval}},
	})
	if err != nil {
		t.Fatalf("CreateDeploymentConfig: %v", err)
	}
}

func withConfig(name string) func(*codedeploy.CreateDeploymentInput) {
	return func(in *codedeploy.CreateDeploymentInput) { in.DeploymentConfigName = aws.String(name) }
}

// greenShare samples, over window, the share (percent) of the hammer's
// answers that came from the green hosts.
func greenShare(ham *bgHammer, green []*bgHost, window time.Duration) (float64, int64) {
	ham.Reset()
	time.Sleep(window)
	names := bgNames(green)
	var g, total int64
	for name, n := range ham.Counts() {
		total += n
		if slices.Contains(names, name) {
			g += n
		}
	}
	if total == 0 {
		return -1, 0
	}
	return 100 * float64(g) / float64(total), total
}

// shiftMessage is the deployment's traffic-shifting status message, or "".
func shiftMessage(info *types.DeploymentInfo) string {
	for _, m := range info.DeploymentStatusMessages {
		if strings.HasPrefix(m, "Traffic shifting: ") {
			return m
		}
	}
	return ""
}

// TestBlueGreenLinearShift: linear 25 % every 2 API minutes (1 s each)
// under steady load. The share green serves, sampled, passes 25, 50 and
// 75 % (within 10 points) in that order before all of it; GetDeployment
// shows the step; no request fails.
func TestBlueGreenLinearShift(t *testing.T) {
	for _, driver := range []string{traffic.DriverBuiltin, traffic.DriverHAProxy} {
		t.Run(driver, func(t *testing.T) {
			if driver == traffic.DriverHAProxy && testing.Short() {
				t.Skip("short")
			}
			f := newBG(t, bgOptions{driver: driver, minute: time.Second})
			bgShiftConfig(t, f, "Linear25", 25, 2)
			ham := bgStartHammer(t, f.LB, 8)
			id := f.Deploy(t, "green", withConfig("Linear25"))
			if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
				t.Fatalf("%s (%s), want Ready", info.Status, bgErr(info))
			}
			ham.onlyTo(t, f.Blue, 200*time.Millisecond)
			f.Continue(t, id, types.DeploymentWaitTypeReadyWait)

			var shares []float64
			msgs := map[string]bool{}
			full := 0
			for deadline := time.Now().Add(60 * time.Second); full < 3; {
				if time.Now().After(deadline) {
					t.Fatalf("green never took all the traffic; shares %v", shares)
				}
				s, n := greenShare(ham, f.Green, 250*time.Millisecond)
				if n < 20 {
					continue // too few answers to say anything
				}
				shares = append(shares, s)
				if s >= 99 {
					full++
				}
				if m := shiftMessage(f.Get(t, id)); m != "" {
					msgs[m] = true
				}
			}
			first := func(lo, hi float64) int {
				return slices.IndexFunc(shares, func(s float64) bool { return s >= lo && s <= hi })
			}
			i100 := first(99, 100)
			prev := -1
			for _, w := range []float64{25, 50, 75} {
				i := first(w-10, w+10)
				if i < 0 || i > i100 || i < prev {
					t.Errorf("green's share did not pass %v%% (±10) in order before 100%%: shares %.0f", w, shares)
				}
				prev = i
			}
			for _, w := range []int{25, 50, 75} {
				if m := fmt.Sprintf("Traffic shifting: %d%% of traffic on the replacement instances", w); !msgs[m] {
					t.Errorf("GetDeployment never showed %q (saw %v)", m, msgs)
				}
			}
			f.WaitTerminationWait(t, id)
			ham.onlyTo(t, f.Green, 300*time.Millisecond)
			ham.Stop()
			ham.CheckNoFailures(t)
			t.Logf("shares %.0f; %d requests", shares, ham.ok.Load())
		})
	}
}

// TestBlueGreenShiftStop stops a shift at 50 %: with rollback, traffic is
// all blue at once (before the rollback deployment's hooks) and the
// rollback succeeds; without, the traffic split stays as it was and the
// deployment is Stopped.
func TestBlueGreenShiftStop(t *testing.T) {
	for _, rollback := range []bool{true, false} {
		t.Run(fmt.Sprint("rollback=", rollback), func(t *testing.T) {
			f := newBG(t, bgOptions{minute: time.Second})
			bgShiftConfig(t, f, "Linear50", 50, 600) // one step holds
			ham := bgStartHammer(t, f.LB, 8)
			id := f.Deploy(t, "green", withConfig("Linear50"))
			if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
				t.Fatalf("%s (%s), want Ready", info.Status, bgErr(info))
			}
			f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
			waitFor(t, 30*time.Second, func() bool { return shiftMessage(f.Get(t, id)) != "" })
			f.WaitServing(t, append(append([]*bgHost{}, f.Blue...), f.Green...), 10*time.Second)
			if s, _ := greenShare(ham, f.Green, 500*time.Millisecond); s < 40 || s > 60 {
				t.Fatalf("green's share at the 50%% step is %.0f%%", s)
			}
			_, err := f.Env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeTerminationWait})
			servertest.WantError(t, err, "DeploymentIsNotInReadyStateException")
			f.Stop(t, id, aws.Bool(rollback))
			info := f.WaitDone(t, id, types.DeploymentStatusStopped)
			if rollback {
				if info.RollbackInfo == nil || aws.ToString(info.RollbackInfo.RollbackDeploymentId) == "" {
					t.Fatalf("no rollback deployment: %+v", info.RollbackInfo)
				}
				f.WaitDone(t, aws.ToString(info.RollbackInfo.RollbackDeploymentId), types.DeploymentStatusSucceeded)
				ham.onlyTo(t, f.Blue, 300*time.Millisecond)
			} else {
				if s, _ := greenShare(ham, f.Green, 500*time.Millisecond); s < 40 || s > 60 {
					t.Errorf("after a stop without rollback green serves %.0f%%, want the 50%% it had", s)
				}
			}
			ham.Stop()
			ham.CheckNoFailures(t)
		})
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
	}
}

// TestBlueGreenShiftContinuePromotes: ContinueDeployment(READY_WAIT)
// during a shift step moves all traffic to the replacements at once.
func TestBlueGreenShiftContinuePromotes(t *testing.T) {
	f := newBG(t, bgOptions{minute: time.Second})
	bgShiftConfig(t, f, "Linear10", 10, 600)
	ham := bgStartHammer(t, f.LB, 8)
	id := f.Deploy(t, "green", withConfig("Linear10"))
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s), want Ready", info.Status, bgErr(info))
	}
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	waitFor(t, 30*time.Second, func() bool { return shiftMessage(f.Get(t, id)) != "" })
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	info := f.WaitTerminationWait(t, id)
	if m := shiftMessage(info); m != "Traffic shifting: 100% of traffic on the replacement instances" {
		t.Errorf("status message %q after the promotion", m)
	}
	ham.onlyTo(t, f.Green, 300*time.Millisecond)
	ham.Stop()
	ham.CheckNoFailures(t)
}

// TestBlueGreenShiftServerKilled: the server is killed with SIGKILL at the
// 50 % step of a linear shift and started again; the deployment resumes at
// 50 % (not 100, not 0) and goes on from there.
func TestBlueGreenShiftServerKilled(t *testing.T) {
	f, p := newBGProcess(t, bgOptions{minute: time.Second})
	bgShiftConfig(t, f, "Linear25Slow", 25, 8)
	id := f.Deploy(t, "green", withConfig("Linear25Slow"))
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s), want Ready", info.Status, bgErr(info))
	}
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	const at50 = "Traffic shifting: 50% of traffic on the replacement instances"
	waitFor(t, 60*time.Second, func() bool { return shiftMessage(f.Get(t, id)) == at50 })
	p.kill9(t)
	p.start(t)
	if m := shiftMessage(f.Get(t, id)); m != at50 {
		t.Fatalf("after the restart the deployment shows %q, want %q", m, at50)
	}
	ham := bgStartHammer(t, f.LB, 8)
	f.WaitServing(t, append(append([]*bgHost{}, f.Blue...), f.Green...), 10*time.Second)
	if s, _ := greenShare(ham, f.Green, 500*time.Millisecond); s < 40 || s > 60 {
		t.Errorf("after the restart green serves %.0f%%, want the 50%% step", s)
	}
	f.WaitTerminationWait(t, id)
	ham.onlyTo(t, f.Green, 300*time.Millisecond)
	ham.Stop()
	bgCheckServed(t, ham, append(append([]*bgHost{}, f.Blue...), f.Green...))
}
