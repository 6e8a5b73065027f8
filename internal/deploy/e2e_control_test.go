package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestE2EStopDeployment stops a OneAtATime deployment while its first
// instance is blocked in a hook.
func TestE2EStopDeployment(t *testing.T) {
	e := newE2E(t)
	release := filepath.Join(t.TempDir(), "release")
	var hosts []*host
	for i := 1; i <= 3; i++ {
		hosts = append(hosts, startHost(t, e.env, e.s3.URL, fmt.Sprintf("host-%d", i), "web", release))
	}
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	v0 := e.upload(t, "app/v0.tgz", revSpec{hooks: recordAll()})
	first := e.deploy(t, "app", "web", v0)
	e.waitDone(t, first, types.DeploymentStatusSucceeded)

	hooks := recordAll()
	hooks["BeforeInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	// Which host is first is the server's choice: wait for any to block.
	var blocked *host
	deadline := time.Now().Add(15 * time.Second)
	for blocked == nil && time.Now().Before(deadline) {
		for _, h := range hosts {
			if fileExists(filepath.Join(h.evidence, "blocked")) {
				blocked = h
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if blocked == nil {
		t.Fatal("no host blocked in BeforeInstall")
	}

	ctx := context.Background()
	c := e.env.Client
	for range 2 { // a repeated stop while pending is still Pending
		out, err := c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &id, AutoRollbackEnabled: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != types.StopStatusPending {
			t.Fatalf("StopDeployment while a hook runs: %s %q", out.Status, aws.ToString(out.StatusMessage))
		}
	}
	if st := e.getDeployment(t, id).Status; st != types.DeploymentStatusInProgress {
		t.Fatalf("status while stopping %s", st)
	}
	touch(t, release)
	info := e.waitDone(t, id, types.DeploymentStatusStopped)
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeManualStop {
		t.Errorf("errorInformation %s", errInfo(info))
	}
	wantOverview(t, info, 0, 0, 0, 1, 2)
	for _, h := range hosts {
		tg := e.target(t, id, h.agent.Name)
		if h == blocked {
			want := []string{"ApplicationStop=Succeeded", "DownloadBundle=Succeeded", "BeforeInstall=Succeeded", "Install=Skipped", "AfterInstall=Skipped", "ApplicationStart=Skipped", "ValidateService=Skipped"}
			if tg.Status != types.TargetStatusFailed || !slices.Equal(eventStatuses(tg.LifecycleEvents), want) {
				t.Errorf("interrupted %s: %s %v", h.agent.Name, tg.Status, eventStatuses(tg.LifecycleEvents))
			}
			// The Failed instance says why: the first event it did not run
			// carries the stop.
			for i, ev := range tg.LifecycleEvents {
				d := ev.Diagnostics
				if i == 3 {
					if d == nil || d.ErrorCode != types.LifecycleErrorCodeUnknownError || !strings.Contains(aws.ToString(d.Message), "deployment was stopped") ||
						!strings.Contains(aws.ToString(d.Message), "Install and the lifecycle events after it were skipped") {
						t.Errorf("interrupted %s: Install diagnostics %+v, want the stop explained", h.agent.Name, d)
					}
				} else if i > 3 && d != nil {
					t.Errorf("interrupted %s: %s diagnostics %+v", h.agent.Name, aws.ToString(ev.LifecycleEventName), d)
				}
			}
			continue
		}
		if tg.Status != types.TargetStatusSkipped {
			t.Errorf("not-started %s: %s", h.agent.Name, tg.Status)
		}
		for _, ev := range tg.LifecycleEvents {
			if ev.Status != types.LifecycleEventStatusSkipped {
				t.Errorf("not-started %s: %s %s", h.agent.Name, aws.ToString(ev.LifecycleEventName), ev.Status)
			}
		}
		if got := hookOrder(t, h.evidence, id); len(got) != 0 {
			t.Errorf("not-started %s ran %v", h.agent.Name, got)
		}
	}
	// Stopping a completed deployment, stopped or succeeded, is refused.
	_, err := c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &id})
	servertest.WantError(t, err, "DeploymentAlreadyCompletedException")
	_, err = c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &first})
	servertest.WantError(t, err, "DeploymentAlreadyCompletedException")

	// autoRollbackEnabled=true with a previous revision: v0 is redeployed.
	if info.RollbackInfo == nil || aws.ToString(info.RollbackInfo.RollbackDeploymentId) == "" {
		t.Fatalf("no rollback after a stop with autoRollbackEnabled: %+v", info.RollbackInfo)
	}
	rb := aws.ToString(info.RollbackInfo.RollbackDeploymentId)
	rinfo := e.waitDone(t, rb, types.DeploymentStatusSucceeded)
	if rinfo.Creator != types.DeploymentCreatorCodeDeployRollback || aws.ToString(rinfo.Revision.S3Location.Key) != "app/v0.tgz" {
		t.Errorf("rollback %s of %s", rinfo.Creator, aws.ToString(rinfo.Revision.S3Location.Key))
	}
	wantOverview(t, rinfo, 0, 0, 3, 0, 0)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestE2EStopNoRollbackWhenNotAsked: autoRollbackEnabled=false creates no
// rollback; the blocked hook finishes and nothing after it runs.
func TestE2EStopNoRollbackWhenNotAsked(t *testing.T) {
	e := newE2E(t)
	release := filepath.Join(t.TempDir(), "release")
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", release)
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	e.waitDone(t, e.deploy(t, "app", "web", e.upload(t, "app/v0.tgz", revSpec{hooks: recordAll()})), types.DeploymentStatusSucceeded)
	hooks := recordAll()
	hooks["AfterInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	out, err := e.env.Client.StopDeployment(context.Background(), &codedeploy.StopDeploymentInput{DeploymentId: &id, AutoRollbackEnabled: aws.Bool(false)})
	if err != nil || out.Status != types.StopStatusPending {
		t.Fatalf("StopDeployment: %v %+v", err, out)
	}
	touch(t, release)
	info := e.waitDone(t, id, types.DeploymentStatusStopped)
	if info.RollbackInfo != nil && aws.ToString(info.RollbackInfo.RollbackDeploymentId) != "" {
		t.Errorf("rollback created though autoRollbackEnabled=false: %+v", info.RollbackInfo)
	}
	if got := hookOrder(t, h.evidence, id); !slices.Equal(got, []string{"ApplicationStop", "BeforeInstall", "AfterInstall"}) {
		t.Errorf("hooks after stop: %v", got)
	}
}

// TestE2EAgentShutdownMidHook: an agent stopped while a hook runs kills it
// after its shutdown grace and reports the event failed at once; the
// deployment fails without waiting for any timeout.
func TestE2EAgentShutdownMidHook(t *testing.T) {
	e := newE2E(t) // default pickup (5m) and event (65m) timeouts
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", release, func(c *agent.Config) { c.ShutdownGrace = 200 * time.Millisecond })
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	hooks := recordAll()
	hooks["ApplicationStart"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	start := time.Now()
	h.agent.Stop()
	h.agent.Start()
	info := e.waitDone(t, id, types.DeploymentStatusFailed)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the deployment took %s to fail after the agent stopped", d)
	}
	ev := findEvent(t, e.target(t, id, "host-1").LifecycleEvents, "ApplicationStart")
	if ev.Status != types.LifecycleEventStatusFailed || ev.Diagnostics == nil || !strings.Contains(aws.ToString(ev.Diagnostics.Message), "shut down") {
		t.Fatalf("ApplicationStart %s %+v", ev.Status, ev.Diagnostics)
	}
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeHealthConstraints {
		t.Errorf("errorInformation %s", errInfo(info))
	}
	// The restarted agent takes the next deployment.
	id2 := e.deploy(t, "app", "web", e.upload(t, "app/v2.tgz", revSpec{hooks: recordAll()}))
	e.waitDone(t, id2, types.DeploymentStatusSucceeded)
}

// TestE2EBatchingByMinimumHealthyHosts measures how many instances run
// their lifecycle at once under each deployment configuration.
func TestE2EBatchingByMinimumHealthyHosts(t *testing.T) {
	e := newE2E(t)
	var hosts []*host
	for i := 1; i <= 4; i++ {
		hosts = append(hosts, startHost(t, e.env, e.s3.URL, fmt.Sprintf("host-%d", i), "web", ""))
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		typ  types.MinimumHealthyHostsType
		v    int32
	}{{"HostCount1", types.MinimumHealthyHostsTypeHostCount, 1}, {"Fleet75", types.MinimumHealthyHostsTypeFleetPercent, 75}, {"HostCount4", types.MinimumHealthyHostsTypeHostCount, 4}} {
		if _, err := e.env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
			DeploymentConfigName: aws.String(c.name), MinimumHealthyHosts: &types.MinimumHealthyHosts{Type: c.typ, Value: c.v},
		}); err != nil {
			t.Fatal(err)
		}
	}
	hooks := map[string]string{"BeforeInstall": strings.ReplaceAll(scriptTimed, "start ", "start $DEPLOYMENT_ID "), "ValidateService": strings.ReplaceAll(scriptEnd, "end ", "end $DEPLOYMENT_ID ")}
	rev := e.upload(t, "app/timed.tgz", revSpec{hooks: hooks})
	tests := []struct {
		config string
		want   int // instances at once
	}{
		{"CodeDeployDefault.OneAtATime", 1},
		{"CodeDeployDefault.HalfAtATime", 2},
		{"CodeDeployDefault.AllAtOnce", 4},
		{"HostCount1", 3},
		{"Fleet75", 1},
	}
	for i, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			group := fmt.Sprintf("g%d", i)
			e.env.SetupGroup(t, "app", group, tt.config, "role", "web")
			id := e.deploy(t, "app", group, rev)
			e.waitDone(t, id, types.DeploymentStatusSucceeded)
			if got := maxConcurrent(t, hosts, id); got != tt.want {
				t.Errorf("%s: %d instances ran at once, want %d", tt.config, got, tt.want)
			}
		})
	}
	t.Run("HostCount4 is invalid over 4 instances", func(t *testing.T) {
		e.env.SetupGroup(t, "app", "invalid", "HostCount4", "role", "web")
		id := e.deploy(t, "app", "invalid", rev)
		info := e.waitDone(t, id, types.DeploymentStatusFailed)
		if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeHealthConstraintsInvalid {
			t.Errorf("errorInformation %s", errInfo(info))
		}
		if got := maxConcurrent(t, hosts, id); got != 0 {
			t.Errorf("%d instances ran", got)
		}
	})
}

// maxConcurrent reads each host's (start, end) of deployment id and returns
// the largest number of overlapping intervals.
func maxConcurrent(t testing.TB, hosts []*host, id string) int {
	t.Helper()
	type mark struct {
		at    int64
		delta int
	}
	var marks []mark
	for _, h := range hosts {
		n := 0
		for _, l := range readLines(t, filepath.Join(h.evidence, "times")) {
			f := strings.Fields(l)
			if len(f) != 3 || f[1] != id {
				continue
			}
			at, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			d := 1
			if f[0] == "end" {
				d = -1
			}
			n += d
			marks = append(marks, mark{at, d})
		}
		if n != 0 {
			t.Fatalf("%s: unbalanced start/end marks for %s", h.agent.Name, id)
		}
	}
	sort.Slice(marks, func(i, j int) bool {
		if marks[i].at != marks[j].at {
			return marks[i].at < marks[j].at
		}
		return marks[i].delta < marks[j].delta
	})
	cur, best := 0, 0
	for _, m := range marks {
		cur += m.delta
		best = max(best, cur)
	}
	return best
}

// TestE2EAgentNeverPicksUp: an instance without a running agent fails its
// first event after the pickup timeout with AWS's message.
func TestE2EAgentNeverPicksUp(t *testing.T) {
	const pickup = 2 * time.Second
	e := newE2E(t, func(c *server.Config) { c.PickupTimeout = pickup })
	_, err := agent.Register(context.Background(), agent.RegisterRequest{
		Endpoint: e.env.URL, Region: e.env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(e.env.AccessKey, e.env.SecretKey, ""),
		InstanceName:     "silent-1", Tags: map[string]string{"role": "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	start := time.Now()
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: recordAll()}))
	info := e.waitDone(t, id, types.DeploymentStatusFailed)
	if d := time.Since(start); d < pickup || d > pickup+5*time.Second {
		t.Errorf("failed after %s, want about %s", d, pickup)
	}
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeHealthConstraints {
		t.Errorf("errorInformation %s", errInfo(info))
	}
	tg := e.target(t, id, "silent-1")
	want := []string{"ApplicationStop=Failed", "DownloadBundle=Skipped", "BeforeInstall=Skipped", "Install=Skipped", "AfterInstall=Skipped", "ApplicationStart=Skipped", "ValidateService=Skipped"}
	if got := eventStatuses(tg.LifecycleEvents); !slices.Equal(got, want) {
		t.Errorf("events %v", got)
	}
	ev := findEvent(t, tg.LifecycleEvents, "ApplicationStop")
	if ev.Diagnostics == nil || !strings.HasPrefix(aws.ToString(ev.Diagnostics.Message), "CodeDeploy agent was not able to receive the lifecycle event") {
		t.Errorf("diagnostics %+v", ev.Diagnostics)
	}
}
