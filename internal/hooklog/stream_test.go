package hooklog_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// streamAppspec runs a hook that says it started, waits for the test,
// then prints about 2.6 MB.
const streamAppspec = `version: 0.0
os: linux
hooks:
  AfterInstall:
    - location: talk.sh
      timeout: 60
`

const streamHook = `#!/bin/sh
echo "started $DEPLOYMENT_ID"
while [ ! -e "$STATE_DIR/go" ]; do sleep 0.02; done
yes 0123456789 | head -n 200000
echo "the end"
`

// TestAgentStreamsHookOutput: a real agent streams a running hook's
// output (it is readable before the hook ends) and the server keeps the
// first 1 MiB of it, cut with the marker.
func TestAgentStreamsHookOutput(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	id, dir := deployTalker(t, env, streamHook)
	t.Cleanup(func() { _ = os.WriteFile(filepath.Join(dir, "go"), nil, 0o644) })

	// While the hook waits, its first line is already on the server.
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs, err := env.Server.HookLogs.Read(ctx, id, "h1")
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) == 1 && strings.Contains(logs[0].Text, "started "+id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running hook's output never reached the server: %+v", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s", info.Status)
	}
	logs, err := env.Server.HookLogs.Read(ctx, id, "")
	if err != nil || len(logs) != 1 {
		t.Fatalf("logs %v %v", len(logs), err)
	}
	l := logs[0]
	if l.Instance != "h1" || l.Event != "AfterInstall" || !l.Truncated {
		t.Errorf("log %s %s truncated %v", l.Instance, l.Event, l.Truncated)
	}
	if want := hooklog.MaxPerCommand + len(hooklog.TruncationMarker); len(l.Text) != want || !strings.HasSuffix(l.Text, hooklog.TruncationMarker) {
		t.Errorf("kept %d bytes, want %d ending in the marker", len(l.Text), want)
	}
	if !strings.HasPrefix(l.Text, "LifecycleEvent - AfterInstall\nScript - talk.sh\n[stdout]started "+id+"\n[stdout]0123456789\n") {
		t.Errorf("log starts %q", l.Text[:min(200, len(l.Text))])
	}
	if strings.Contains(l.Text, "the end") {
		t.Error("output past 1 MiB was kept")
	}
}

const outageHook = `#!/bin/sh
echo "before $DEPLOYMENT_ID"
while [ ! -e "$STATE_DIR/go1" ]; do sleep 0.02; done
echo "during the outage"
while [ ! -e "$STATE_DIR/go2" ]; do sleep 0.02; done
echo "after the outage"
`

// TestStreamSurvivesServerOutage: output a hook prints while the server is
// down reaches it when it is back; before, the first failed PutHookLog
// ended the stream and the rest of the command's output never arrived.
func TestStreamSurvivesServerOutage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	opts := []servertest.Option{servertest.WithDataDir(t.TempDir()), func(c *server.Config) { c.Listen = addr }}
	env := servertest.Start(t, opts...)
	ctx := context.Background()
	id, dir := deployTalker(t, env, outageHook)
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { touch("go1"); touch("go2") })
	waitLog := func(env *servertest.Env, want string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			logs, err := env.Server.HookLogs.Read(ctx, id, "h1")
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) == 1 && strings.Contains(logs[0].Text, want) {
				return logs[0].Text
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q never reached the server: %+v", want, logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLog(env, "before "+id)

	env.Stop()
	touch("go1")
	// Several attempts fail meanwhile (the agent flushes every 250 ms).
	time.Sleep(1500 * time.Millisecond)
	env = servertest.Start(t, opts...)
	touch("go2")
	text := waitLog(env, "after the outage")
	if i, j := strings.Index(text, "during the outage"), strings.Index(text, "after the outage"); i < 0 || j < i {
		t.Errorf("output printed during the outage missing or out of order:\n%s", text)
	}
	if n := strings.Count(text, "during the outage"); n != 1 {
		t.Errorf("the outage's output kept %d times:\n%s", n, text)
	}
	if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s", info.Status)
	}
}

// deployTalker starts an agent and deploys hook as its AfterInstall
// script; STATE_DIR in the hook's environment is the returned dir.
func deployTalker(t *testing.T, env *servertest.Env, hook string) (id, dir string) {
	t.Helper()
	s3 := servertest.StartS3(t, "bundles")
	etag, _ := s3.Put(t, "bundles", "talk.tar", servertest.TarBundle(t, map[string]string{"appspec.yml": streamAppspec, "talk.sh": hook}))
	dir = t.TempDir()
	env.StartAgent(t, "h1", map[string]string{"role": "talk"}, s3.URL, servertest.WithEnviron("STATE_DIR="+dir))
	env.SetupGroup(t, "talk", "talkers", "", "role", "talk")
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("talk"), DeploymentGroupName: aws.String("talkers"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
			Bucket: aws.String("bundles"), Key: aws.String("talk.tar"), BundleType: types.BundleTypeTar, ETag: aws.String(etag)}}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.DeploymentId), dir
}
