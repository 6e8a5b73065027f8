package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// e2eBucket is the bucket every end-to-end test uploads its bundles to.
const e2eBucket = "bundles"

// bfile is one entry of a test bundle.
type bfile struct {
	name string
	mode int64
	body string
}

// tarGz builds a tgz bundle from files.
func tarGz(t testing.TB, files []bfile) []byte {
	t.Helper()
	fs := make([]servertest.File, len(files))
	for i, f := range files {
		fs[i] = servertest.File{Name: f.name, Mode: f.mode, Body: f.body}
	}
	return servertest.TarGz(t, fs...)
}

// Hook scripts. Each agent's hooks see EVIDENCE (a per-host directory) and
// RELEASE (a file whose appearance unblocks blocking hooks).
const (
	// scriptRecord appends the event to the order file, one line per run,
	// and keeps the environment it ran with.
	scriptRecord = "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID\" >> \"$EVIDENCE/order\"\nenv > \"$EVIDENCE/env.$LIFECYCLE_EVENT\"\n"
	// scriptBlock records, marks itself blocked and waits for RELEASE.
	scriptBlock = "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID\" >> \"$EVIDENCE/order\"\ntouch \"$EVIDENCE/blocked\"\nwhile [ ! -f \"$RELEASE\" ]; do sleep 0.05; done\n"
	// scriptFail prints to both streams and exits 3.
	scriptFail = "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID\" >> \"$EVIDENCE/order\"\necho \"boom: the service is not healthy\"\necho \"more detail on stderr\" >&2\nexit 3\n"
	// scriptTimed records start and end (ns) around a short sleep.
	scriptTimed = "#!/bin/sh\necho \"start $(date +%s%N)\" >> \"$EVIDENCE/times\"\nsleep 0.4\n"
	scriptEnd   = "#!/bin/sh\necho \"end $(date +%s%N)\" >> \"$EVIDENCE/times\"\n"
)

// scriptable lists the in-place hooks in AWS order.
var scriptable = []string{"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}

// allEvents is the in-place event list without traffic control.
var allEvents = []string{"ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart", "ValidateService"}

// revSpec describes a test revision: the files section and each hook's
// script (absent hooks are not in the appspec).
type revSpec struct {
	files string // appspec text for files: and permissions: (may be "")
	hooks map[string]string
	extra []bfile
}

// recordAll is a revSpec whose every hook records.
func recordAll() map[string]string {
	m := map[string]string{}
	for _, h := range scriptable {
		m[h] = scriptRecord
	}
	return m
}

func (r revSpec) bundle(t testing.TB) []byte {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("version: 0.0\nos: linux\n")
	sb.WriteString(r.files)
	files := slices.Clone(r.extra)
	if len(r.hooks) > 0 {
		sb.WriteString("hooks:\n")
		for _, h := range scriptable {
			s, ok := r.hooks[h]
			if !ok {
				continue
			}
			fmt.Fprintf(&sb, "  %s:\n    - location: scripts/%s.sh\n      timeout: 120\n", h, h)
			files = append(files, bfile{name: "scripts/" + h + ".sh", mode: 0o755, body: s})
		}
	}
	files = append(files, bfile{name: "appspec.yml", body: sb.String()})
	return tarGz(t, files)
}

// e2e is a running server, an S3 endpoint and the client to both.
type e2e struct {
	env *servertest.Env
	s3  *servertest.S3
}

func newE2E(t *testing.T, opts ...servertest.Option) *e2e {
	t.Helper()
	e := &e2e{env: servertest.Start(t, opts...), s3: startS3(t)}
	return e
}

// startS3 starts the S3 endpoint with versioning really enabled
// (servertest.StartS3 documents it but does not turn it on), so uploads
// get version ids and hooks see BUNDLE_VERSION.
func startS3(t testing.TB) *servertest.S3 {
	t.Helper()
	s := servertest.StartS3(t, e2eBucket)
	_, err := s.Client.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(e2eBucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// host is an agent with its evidence directory.
type host struct {
	agent    *servertest.Agent
	evidence string
}

// startHost runs an in-process agent whose hooks write evidence under a
// fresh directory; release is the file that unblocks scriptBlock.
func startHost(t *testing.T, env *servertest.Env, s3url, name, role, release string, opts ...servertest.AgentOption) *host {
	t.Helper()
	ev := t.TempDir()
	opts = append([]servertest.AgentOption{servertest.WithEnviron("EVIDENCE="+ev, "RELEASE="+release, "E2E_HOST="+name)}, opts...)
	a := env.StartAgent(t, name, map[string]string{"role": role}, s3url, opts...)
	return &host{agent: a, evidence: ev}
}

// upload puts the revision's bundle in S3 and returns its location with
// the ETag (unquoted, as the CLI sends it) and version.
func (e *e2e) upload(t testing.TB, key string, r revSpec) *types.RevisionLocation {
	t.Helper()
	etag, version := e.s3.Put(t, e2eBucket, key, r.bundle(t))
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
		Bucket: aws.String(e2eBucket), Key: aws.String(key), BundleType: types.BundleTypeTarGZip,
		ETag: aws.String(strings.Trim(etag, `"`)), Version: aws.String(version),
	}}
}

// deploy creates a deployment and returns its id.
func (e *e2e) deploy(t testing.TB, app, group string, rev *types.RevisionLocation, mutate ...func(*codedeploy.CreateDeploymentInput)) string {
	t.Helper()
	in := &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group), Revision: rev}
	for _, m := range mutate {
		m(in)
	}
	out, err := e.env.Client.CreateDeployment(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	return aws.ToString(out.DeploymentId)
}

var terminal = []types.DeploymentStatus{types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped}

// waitDone waits for a terminal status and checks it is want.
func (e *e2e) waitDone(t testing.TB, id string, want types.DeploymentStatus) *types.DeploymentInfo {
	t.Helper()
	info := e.env.WaitStatus(t, id, 30*time.Second, terminal...)
	if info.Status != want {
		t.Fatalf("deployment %s ended %s, want %s (error %s; overview %s)", id, info.Status, want, errInfo(info), overview(info))
	}
	return info
}

func errInfo(info *types.DeploymentInfo) string {
	if info.ErrorInformation == nil {
		return "none"
	}
	return fmt.Sprintf("%s: %s", info.ErrorInformation.Code, aws.ToString(info.ErrorInformation.Message))
}

func overview(info *types.DeploymentInfo) string {
	o := info.DeploymentOverview
	if o == nil {
		return "nil"
	}
	return fmt.Sprintf("Pending=%d InProgress=%d Succeeded=%d Failed=%d Skipped=%d Ready=%d", o.Pending, o.InProgress, o.Succeeded, o.Failed, o.Skipped, o.Ready)
}

// wantOverview compares the counters (Pending, InProgress, Succeeded,
// Failed, Skipped).
func wantOverview(t testing.TB, info *types.DeploymentInfo, pending, inProgress, succeeded, failed, skipped int64) {
	t.Helper()
	o := info.DeploymentOverview
	if o == nil || o.Pending != pending || o.InProgress != inProgress || o.Succeeded != succeeded || o.Failed != failed || o.Skipped != skipped {
		t.Fatalf("overview %s, want Pending=%d InProgress=%d Succeeded=%d Failed=%d Skipped=%d", overview(info), pending, inProgress, succeeded, failed, skipped)
	}
}

// target returns an instance target through GetDeploymentTarget.
func (e *e2e) target(t testing.TB, id, name string) *types.InstanceTarget {
	t.Helper()
	out, err := e.env.Client.GetDeploymentTarget(context.Background(), &codedeploy.GetDeploymentTargetInput{DeploymentId: aws.String(id), TargetId: aws.String(name)})
	if err != nil {
		t.Fatalf("GetDeploymentTarget %s %s: %v", id, name, err)
	}
	if out.DeploymentTarget == nil || out.DeploymentTarget.InstanceTarget == nil {
		t.Fatalf("GetDeploymentTarget %s %s: no instance target", id, name)
	}
	return out.DeploymentTarget.InstanceTarget
}

// eventStatuses lists "Name=Status" of a target's events.
func eventStatuses(evs []types.LifecycleEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, aws.ToString(ev.LifecycleEventName)+"="+string(ev.Status))
	}
	return out
}

func findEvent(t testing.TB, evs []types.LifecycleEvent, name string) types.LifecycleEvent {
	t.Helper()
	for _, ev := range evs {
		if aws.ToString(ev.LifecycleEventName) == name {
			return ev
		}
	}
	t.Fatalf("no event %s in %v", name, eventStatuses(evs))
	return types.LifecycleEvent{}
}

// waitFile polls until path exists.
func waitFile(t testing.TB, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s", path, timeout)
}

// touch creates a file.
func touch(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readLines returns a file's lines ("" file or missing: none).
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// hookOrder returns the events recorded for deployment id, in order.
func hookOrder(t testing.TB, evidence, id string) []string {
	t.Helper()
	var out []string
	for _, l := range readLines(t, filepath.Join(evidence, "order")) {
		ev, dep, _ := strings.Cut(l, " ")
		if dep == id {
			out = append(out, ev)
		}
	}
	return out
}

// envOf reads the environment a hook recorded.
func envOf(t testing.TB, evidence, event string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range readLines(t, filepath.Join(evidence, "env."+event)) {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// groupID returns a deployment group's id.
func (e *e2e) groupID(t testing.TB, app, group string) string {
	t.Helper()
	out, err := e.env.Client.GetDeploymentGroup(context.Background(), &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.DeploymentGroupInfo.DeploymentGroupId)
}

// getDeployment returns GetDeployment's DeploymentInfo.
func (e *e2e) getDeployment(t testing.TB, id string) *types.DeploymentInfo {
	t.Helper()
	out, err := e.env.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return out.DeploymentInfo
}

// filesSection is an appspec files: section copying app/ to dest.
func filesSection(dest string) string {
	return fmt.Sprintf("files:\n  - source: app\n    destination: %s\n", dest)
}
