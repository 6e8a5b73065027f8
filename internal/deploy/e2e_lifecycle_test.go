//lint:file-ignore SA1019 the deprecated instance operations are under test

package deploy_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// TestE2EInstallFilesHooksAndReads deploys a bundle with files,
// permissions and every hook to one host, then checks the disk, the hooks'
// order and environment, and every read API's view of the deployment.
func TestE2EInstallFilesHooksAndReads(t *testing.T) {
	e := newE2E(t)
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", "")
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	dest := filepath.Join(t.TempDir(), "srv", "app")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody:", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("changing file owners needs root, as the agent runs on a host")
	}
	files := filesSection(dest) + "permissions:\n  - object: " + dest + "\n    pattern: \"**\"\n    mode: 640\n    owner: nobody\n    type:\n      - file\n"
	rev := func(v string) revSpec {
		return revSpec{files: files, hooks: recordAll(), extra: []bfile{
			{name: "app/config.txt", body: "version=" + v + "\n"},
			{name: "app/bin/run.sh", mode: 0o755, body: "#!/bin/sh\necho " + v + "\n"},
		}}
	}
	loc1 := e.upload(t, "app/v1.tgz", rev("v1"))
	id := e.deploy(t, "app", "web", loc1)
	info := e.waitDone(t, id, types.DeploymentStatusSucceeded)

	// Disk: content and permissions (mode 640 and owner nobody on files).
	for _, f := range []struct{ path, body string }{
		{filepath.Join(dest, "config.txt"), "version=v1\n"},
		{filepath.Join(dest, "bin", "run.sh"), "#!/bin/sh\necho v1\n"},
	} {
		if got := readFile(t, f.path); got != f.body {
			t.Errorf("%s = %q, want %q", f.path, got, f.body)
		}
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s mode %v, want 0640", f.path, st.Mode().Perm())
		}
		if uid := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)); uid != nobody.Uid {
			t.Errorf("%s owner uid %s, want nobody (%s)", f.path, uid, nobody.Uid)
		}
	}

	// Hooks: first deployment has no previous revision, so ApplicationStop
	// has no script to run.
	if got, want := hookOrder(t, h.evidence, id), []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}; !slices.Equal(got, want) {
		t.Errorf("hook order %v, want %v", got, want)
	}
	gid := e.groupID(t, "app", "web")
	s3 := loc1.S3Location
	for _, ev := range []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"} {
		env := envOf(t, h.evidence, ev)
		want := map[string]string{
			"APPLICATION_NAME": "app", "DEPLOYMENT_ID": id, "DEPLOYMENT_GROUP_NAME": "web", "DEPLOYMENT_GROUP_ID": gid,
			"LIFECYCLE_EVENT": ev, "BUNDLE_BUCKET": e2eBucket, "BUNDLE_KEY": "app/v1.tgz",
			"BUNDLE_ETAG": aws.ToString(s3.ETag), "BUNDLE_VERSION": aws.ToString(s3.Version),
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s: %s=%q, want %q", ev, k, env[k], v)
			}
		}
	}
	if aws.ToString(s3.Version) == "" || aws.ToString(s3.ETag) == "" {
		t.Fatalf("S3 gave no version/etag: etag %q version %q", aws.ToString(s3.ETag), aws.ToString(s3.Version))
	}

	// GetDeployment.
	if info.Creator != types.DeploymentCreatorUser {
		t.Errorf("creator %q", info.Creator)
	}
	wantOverview(t, info, 0, 0, 1, 0, 0)
	if info.ErrorInformation != nil || info.CreateTime == nil || info.StartTime == nil || info.CompleteTime == nil {
		t.Errorf("info: error %s, times %v %v %v", errInfo(info), info.CreateTime, info.StartTime, info.CompleteTime)
	}

	// Targets, new API.
	ctx := context.Background()
	c := e.env.Client
	lt, err := c.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: &id})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lt.TargetIds, []string{"host-1"}) {
		t.Fatalf("ListDeploymentTargets %v", lt.TargetIds)
	}
	bt, err := c.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: &id, TargetIds: lt.TargetIds})
	if err != nil {
		t.Fatal(err)
	}
	if len(bt.DeploymentTargets) != 1 || bt.DeploymentTargets[0].InstanceTarget == nil {
		t.Fatalf("BatchGetDeploymentTargets %+v", bt.DeploymentTargets)
	}
	if bt.DeploymentTargets[0].DeploymentTargetType != types.DeploymentTargetTypeInstanceTarget {
		t.Errorf("target type %q", bt.DeploymentTargets[0].DeploymentTargetType)
	}
	for _, tg := range []*types.InstanceTarget{bt.DeploymentTargets[0].InstanceTarget, e.target(t, id, "host-1")} {
		if tg.Status != types.TargetStatusSucceeded || aws.ToString(tg.TargetId) != "host-1" || !strings.HasPrefix(aws.ToString(tg.TargetArn), "arn:") || aws.ToString(tg.DeploymentId) != id || tg.LastUpdatedAt == nil {
			t.Errorf("target %+v", tg)
		}
		checkEvents(t, tg.LifecycleEvents, allEvents)
	}

	// Deprecated instance operations.
	li, err := c.ListDeploymentInstances(ctx, &codedeploy.ListDeploymentInstancesInput{DeploymentId: &id})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(li.InstancesList, []string{"host-1"}) {
		t.Fatalf("ListDeploymentInstances %v", li.InstancesList)
	}
	bi, err := c.BatchGetDeploymentInstances(ctx, &codedeploy.BatchGetDeploymentInstancesInput{DeploymentId: &id, InstanceIds: []string{"host-1"}})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := c.GetDeploymentInstance(ctx, &codedeploy.GetDeploymentInstanceInput{DeploymentId: &id, InstanceId: aws.String("host-1")})
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.InstancesSummary) != 1 {
		t.Fatalf("BatchGetDeploymentInstances %+v", bi.InstancesSummary)
	}
	for _, s := range []types.InstanceSummary{bi.InstancesSummary[0], *gi.InstanceSummary} {
		if s.Status != types.InstanceStatusSucceeded || aws.ToString(s.DeploymentId) != id || !strings.HasSuffix(aws.ToString(s.InstanceId), "host-1") {
			t.Errorf("instance summary %+v", s)
		}
		checkEvents(t, s.LifecycleEvents, allEvents)
	}

	// A second revision: ApplicationStop now runs (v1's script), first.
	id2 := e.deploy(t, "app", "web", e.upload(t, "app/v2.tgz", rev("v2")))
	e.waitDone(t, id2, types.DeploymentStatusSucceeded)
	if got, want := hookOrder(t, h.evidence, id2), scriptable; !slices.Equal(got, want) {
		t.Errorf("second deployment hook order %v, want %v", got, want)
	}
	if got := readFile(t, filepath.Join(dest, "config.txt")); got != "version=v2\n" {
		t.Errorf("after v2 config.txt = %q", got)
	}
	if env := envOf(t, h.evidence, "ApplicationStop"); env["DEPLOYMENT_ID"] != id2 || env["BUNDLE_KEY"] != "app/v2.tgz" {
		t.Errorf("ApplicationStop env: DEPLOYMENT_ID=%s BUNDLE_KEY=%s", env["DEPLOYMENT_ID"], env["BUNDLE_KEY"])
	}
}

// checkEvents asserts the events are names, in order, all Succeeded with
// times and the success diagnostics.
func checkEvents(t testing.TB, evs []types.LifecycleEvent, names []string) {
	t.Helper()
	var got []string
	for _, ev := range evs {
		got = append(got, aws.ToString(ev.LifecycleEventName))
		if ev.Status != types.LifecycleEventStatusSucceeded || ev.StartTime == nil || ev.EndTime == nil || ev.EndTime.Before(*ev.StartTime) {
			t.Errorf("event %s: %s %v..%v", aws.ToString(ev.LifecycleEventName), ev.Status, ev.StartTime, ev.EndTime)
		}
		if d := ev.Diagnostics; d == nil || d.ErrorCode != types.LifecycleErrorCodeSuccess || aws.ToString(d.Message) != "Succeeded" {
			t.Errorf("event %s diagnostics %+v", aws.ToString(ev.LifecycleEventName), d)
		}
	}
	if !slices.Equal(got, names) {
		t.Errorf("events %v, want %v", got, names)
	}
}

// TestE2EFailingHook: a hook exiting non-zero fails the deployment with the
// script's diagnostics, and the events after it are skipped.
func TestE2EFailingHook(t *testing.T) {
	e := newE2E(t)
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", "")
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	hooks := recordAll()
	hooks["AfterInstall"] = scriptFail
	id := e.deploy(t, "app", "web", e.upload(t, "app/bad.tgz", revSpec{hooks: hooks}))
	info := e.waitDone(t, id, types.DeploymentStatusFailed)
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeHealthConstraints {
		t.Fatalf("errorInformation %s", errInfo(info))
	}
	wantOverview(t, info, 0, 0, 0, 1, 0)
	tg := e.target(t, id, "host-1")
	if tg.Status != types.TargetStatusFailed {
		t.Errorf("target status %s", tg.Status)
	}
	want := []string{"ApplicationStop=Succeeded", "DownloadBundle=Succeeded", "BeforeInstall=Succeeded", "Install=Succeeded", "AfterInstall=Failed", "ApplicationStart=Skipped", "ValidateService=Skipped"}
	if got := eventStatuses(tg.LifecycleEvents); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	ev := findEvent(t, tg.LifecycleEvents, "AfterInstall")
	d := ev.Diagnostics
	if d == nil {
		t.Fatal("no diagnostics on the failed event")
	}
	if d.ErrorCode != types.LifecycleErrorCodeScriptFailed {
		t.Errorf("errorCode %s", d.ErrorCode)
	}
	if aws.ToString(d.ScriptName) != "scripts/AfterInstall.sh" {
		t.Errorf("scriptName %q", aws.ToString(d.ScriptName))
	}
	if !strings.Contains(aws.ToString(d.Message), "exit code 3") {
		t.Errorf("message %q", aws.ToString(d.Message))
	}
	if lt := aws.ToString(d.LogTail); !strings.Contains(lt, "boom: the service is not healthy") || !strings.Contains(lt, "more detail on stderr") {
		t.Errorf("logTail %q", lt)
	}
	if ev.StartTime == nil || ev.EndTime == nil {
		t.Errorf("failed event times %v %v", ev.StartTime, ev.EndTime)
	}
	if got := hookOrder(t, h.evidence, id); !slices.Equal(got, []string{"BeforeInstall", "AfterInstall"}) {
		t.Errorf("hooks that ran: %v", got)
	}
}

// TestE2EAutoRollbackOnFailure: v2 fails in ValidateService, so a
// codeDeployRollback deployment puts v1 back on disk.
func TestE2EAutoRollbackOnFailure(t *testing.T) {
	e := newE2E(t)
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", "")
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true, Events: []types.AutoRollbackEvent{types.AutoRollbackEventDeploymentFailure}}
	})
	dest := filepath.Join(t.TempDir(), "app")
	v1 := e.upload(t, "app/v1.tgz", revSpec{files: filesSection(dest), hooks: recordAll(), extra: []bfile{{name: "app/index.html", body: "v1"}, {name: "app/only-v1.txt", body: "1"}}})
	id1 := e.deploy(t, "app", "web", v1)
	e.waitDone(t, id1, types.DeploymentStatusSucceeded)

	hooks := recordAll()
	hooks["ValidateService"] = scriptFail
	v2 := e.upload(t, "app/v2.tgz", revSpec{files: filesSection(dest), hooks: hooks, extra: []bfile{{name: "app/index.html", body: "v2"}, {name: "app/only-v2.txt", body: "2"}}})
	id2 := e.deploy(t, "app", "web", v2)
	info2 := e.waitDone(t, id2, types.DeploymentStatusFailed)
	if info2.RollbackInfo == nil || aws.ToString(info2.RollbackInfo.RollbackDeploymentId) == "" {
		t.Fatalf("failed deployment has no rollback: %+v", info2.RollbackInfo)
	}
	rb := aws.ToString(info2.RollbackInfo.RollbackDeploymentId)
	rinfo := e.waitDone(t, rb, types.DeploymentStatusSucceeded)
	if rinfo.Creator != types.DeploymentCreatorCodeDeployRollback {
		t.Errorf("rollback creator %q", rinfo.Creator)
	}
	if rinfo.RollbackInfo == nil || aws.ToString(rinfo.RollbackInfo.RollbackTriggeringDeploymentId) != id2 {
		t.Errorf("rollback's rollbackInfo %+v", rinfo.RollbackInfo)
	}
	if k := aws.ToString(rinfo.Revision.S3Location.Key); k != "app/v1.tgz" {
		t.Errorf("rollback revision %s", k)
	}
	info2 = e.getDeployment(t, id2)
	if info2.Status != types.DeploymentStatusFailed || info2.RollbackInfo == nil || aws.ToString(info2.RollbackInfo.RollbackMessage) != "Rollback deployment "+rb+" succeeded." {
		t.Errorf("original after rollback: %s %+v", info2.Status, info2.RollbackInfo)
	}
	// Disk: v1 again, v2's extra file gone.
	if got := readFile(t, filepath.Join(dest, "index.html")); got != "v1" {
		t.Errorf("index.html = %q after rollback", got)
	}
	if _, err := os.Stat(filepath.Join(dest, "only-v2.txt")); !os.IsNotExist(err) {
		t.Errorf("only-v2.txt still present after rollback (%v)", err)
	}
	if got := readFile(t, filepath.Join(dest, "only-v1.txt")); got != "1" {
		t.Errorf("only-v1.txt = %q", got)
	}
	if got := hookOrder(t, h.evidence, rb); !slices.Equal(got, scriptable) {
		t.Errorf("rollback hooks %v", got)
	}
}

// TestE2EUpdateOutdatedInstancesOnly: instances already on the revision are
// left alone.
func TestE2EUpdateOutdatedInstancesOnly(t *testing.T) {
	e := newE2E(t)
	h1 := startHost(t, e.env, e.s3.URL, "host-1", "web", "")
	h2 := startHost(t, e.env, e.s3.URL, "host-2", "web", "")
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	rev := e.upload(t, "app/a.tgz", revSpec{hooks: recordAll()})
	e.waitDone(t, e.deploy(t, "app", "web", rev), types.DeploymentStatusSucceeded)
	h3 := startHost(t, e.env, e.s3.URL, "host-3", "web", "")

	id := e.deploy(t, "app", "web", rev, func(in *codedeploy.CreateDeploymentInput) { in.UpdateOutdatedInstancesOnly = true })
	info := e.waitDone(t, id, types.DeploymentStatusSucceeded)
	if !info.UpdateOutdatedInstancesOnly {
		t.Error("updateOutdatedInstancesOnly not echoed")
	}
	for _, h := range []*host{h1, h2} {
		if got := hookOrder(t, h.evidence, id); len(got) != 0 {
			t.Errorf("%s ran hooks though already current: %v", h.agent.Name, got)
		}
	}
	if got := hookOrder(t, h3.evidence, id); !slices.Equal(got, []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}) {
		t.Errorf("host-3 hooks %v", got)
	}
	lt, err := e.env.Client.ListDeploymentTargets(context.Background(), &codedeploy.ListDeploymentTargetsInput{DeploymentId: &id})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range lt.TargetIds {
		if st := e.target(t, id, name).Status; name != "host-3" && st != types.TargetStatusSkipped {
			t.Errorf("current instance %s listed with status %s", name, st)
		}
	}
	if info.DeploymentOverview.Succeeded != 1 {
		t.Errorf("overview %s", overview(info))
	}

	// Without the flag every instance is deployed again.
	id2 := e.deploy(t, "app", "web", rev)
	info2 := e.waitDone(t, id2, types.DeploymentStatusSucceeded)
	wantOverview(t, info2, 0, 0, 3, 0, 0)
}

// TestE2EFileExistsBehavior: a file in the destination that no deployment
// installed fails the deployment (DISALLOW), is replaced (OVERWRITE) or is
// kept (RETAIN).
func TestE2EFileExistsBehavior(t *testing.T) {
	tests := []struct {
		behavior types.FileExistsBehavior
		status   types.DeploymentStatus
		content  string
	}{
		{"", types.DeploymentStatusFailed, "local"},
		{types.FileExistsBehaviorDisallow, types.DeploymentStatusFailed, "local"},
		{types.FileExistsBehaviorOverwrite, types.DeploymentStatusSucceeded, "bundle"},
		{types.FileExistsBehaviorRetain, types.DeploymentStatusSucceeded, "local"},
	}
	for _, tt := range tests {
		t.Run(string(tt.behavior)+"default", func(t *testing.T) {
			e := newE2E(t)
			startHost(t, e.env, e.s3.URL, "host-1", "web", "")
			e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
			dest := t.TempDir()
			if err := os.WriteFile(filepath.Join(dest, "config.txt"), []byte("local"), 0o644); err != nil {
				t.Fatal(err)
			}
			rev := e.upload(t, "app/a.tgz", revSpec{files: filesSection(dest), extra: []bfile{{name: "app/config.txt", body: "bundle"}, {name: "app/new.txt", body: "new"}}})
			id := e.deploy(t, "app", "web", rev, func(in *codedeploy.CreateDeploymentInput) { in.FileExistsBehavior = tt.behavior })
			info := e.waitDone(t, id, tt.status)
			want := tt.behavior
			if want == "" {
				want = types.FileExistsBehaviorDisallow
			}
			if info.FileExistsBehavior != want {
				t.Errorf("fileExistsBehavior echoed %q, want %q", info.FileExistsBehavior, want)
			}
			if got := readFile(t, filepath.Join(dest, "config.txt")); got != tt.content {
				t.Errorf("config.txt = %q, want %q", got, tt.content)
			}
			if tt.status == types.DeploymentStatusFailed {
				ev := findEvent(t, e.target(t, id, "host-1").LifecycleEvents, "Install")
				if ev.Status != types.LifecycleEventStatusFailed || ev.Diagnostics == nil || !strings.Contains(strings.ToLower(aws.ToString(ev.Diagnostics.Message)), "exist") {
					t.Errorf("Install event %s %+v", ev.Status, ev.Diagnostics)
				}
			} else if got := readFile(t, filepath.Join(dest, "new.txt")); got != "new" {
				t.Errorf("new.txt = %q", got)
			}
		})
	}
}
