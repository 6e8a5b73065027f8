package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// needTool returns the path of a program the test drives, skipping the
// test outside CI when it is missing (scripts/test installs it).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (scripts/test installs the Debian package %s)", name, pkg)
	}
	t.Skipf("%s is not installed: install the Debian package %s (scripts/test does) to run this test", name, pkg)
	return ""
}

// buildCutover builds this command into a temporary directory.
func buildCutover(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cutover")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// awsEnv is the environment aws-cli would use to reach env's server, with
// no ~/.aws of the machine's user in the way.
func awsEnv(t *testing.T, env *servertest.Env) []string {
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_ENDPOINT_URL="+env.URL, "AWS_ACCESS_KEY_ID="+env.AccessKey, "AWS_SECRET_ACCESS_KEY="+env.SecretKey, "AWS_REGION="+env.Region)
}

type tmux struct {
	t      *testing.T
	bin    string
	socket string
}

func startTmux(t *testing.T, env []string, command string) *tmux {
	t.Helper()
	tm := &tmux{t: t, bin: needTool(t, "tmux", "tmux"), socket: filepath.Join(t.TempDir(), "tmux.sock")}
	cmd := exec.Command(tm.bin, "-S", tm.socket, "new-session", "-d", "-x", "200", "-y", "50", command)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(tm.bin, "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmux) capture() string {
	out, _ := exec.Command(tm.bin, "-S", tm.socket, "capture-pane", "-p").CombinedOutput()
	return string(out)
}

// waitFor waits until the pane shows every string of want.
func (tm *tmux) waitFor(timeout time.Duration, want ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	var pane string
	for time.Now().Before(deadline) {
		pane = tm.capture()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(pane, w)
		}
		if ok {
			return pane
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("the pane never showed %q:\n%s", want, pane)
	return ""
}

// TestWatchAndLogs runs the built binary as an operator would: `cutover
// watch` in a real terminal (tmux) follows a blue/green deployment through
// Ready, the reroute and success (exit 0); `cutover watch --group` and
// `cutover logs --follow` with plain output pick up the same deployment;
// a failing deployment makes `cutover watch` exit non-zero.
func TestWatchAndLogs(t *testing.T) {
	needTool(t, "tmux", "tmux")
	bin := buildCutover(t)
	f := servertest.StartBlueGreen(t, 1)
	env := awsEnv(t, f.Env)
	ctx := context.Background()

	// --group waits for the next deployment; started before it exists.
	var groupOut bytes.Buffer
	group := exec.Command(bin, "watch", "--group", servertest.BGApp+"/"+servertest.BGGroup)
	group.Env, group.Stdout, group.Stderr = env, &groupOut, &groupOut
	if err := group.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	id := f.Deploy(t, "green")
	var logsOut bytes.Buffer
	follow := exec.Command(bin, "logs", "--follow", id)
	follow.Env, follow.Stdout, follow.Stderr = env, &logsOut, &logsOut
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}

	tm := startTmux(t, env, bin+" watch "+id+"; echo EXIT=$?; sleep 600")
	pane := tm.waitFor(60*time.Second, "deployment "+id, ": Ready", "phase ready", "Ready wait ends in", "green-1 [Green] Ready", "traffic web: blue-1(serving")
	if !strings.Contains(pane, "[") || !strings.Contains(pane, "#") {
		t.Errorf("no progress bar:\n%s", pane)
	}
	t.Logf("pane while Ready:\n%s", pane)
	if _, err := f.Env.Client.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait}); err != nil {
		t.Fatal(err)
	}
	pane = tm.waitFor(60*time.Second, ": Succeeded", "EXIT=0", "green-1(serving")
	t.Logf("final pane:\n%s", pane)
	if strings.Count(pane, "deployment "+id) != 1 {
		t.Errorf("the view was not redrawn in place:\n%s", pane)
	}

	if err := waitCmd(group, 30*time.Second); err != nil {
		t.Errorf("watch --group: %v\n%s", err, groupOut.String())
	}
	if out := groupOut.String(); !strings.Contains(out, "deployment "+id) || !strings.Contains(out, "Succeeded") || strings.Contains(out, "\x1b[") {
		t.Errorf("watch --group (plain) output:\n%s", out)
	}
	if err := waitCmd(follow, 30*time.Second); err != nil {
		t.Errorf("logs --follow: %v\n%s", err, logsOut.String())
	}
	for _, want := range []string{"==> green-1 BeforeInstall <==", "hook BeforeInstall on green-1 for " + id, "hook AfterAllowTraffic on green-1 for " + id, "==> blue-1 BeforeBlockTraffic <=="} {
		if !strings.Contains(logsOut.String(), want) {
			t.Errorf("logs --follow output lacks %q:\n%s", want, logsOut.String())
		}
	}

	// A failing deployment: plain output (not a terminal), non-zero exit,
	// and `cutover logs --instance` shows the failing hook's output.
	f.Blue[0].Fail(t, "BeforeInstall")
	id2 := f.Deploy(t, "blue")
	watch := exec.Command(bin, "watch", id2)
	var watchOut bytes.Buffer
	watch.Env, watch.Stdout, watch.Stderr = env, &watchOut, &watchOut
	err := watch.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("watch of a failing deployment: %v, want a non-zero exit\n%s", err, watchOut.String())
	}
	if out := watchOut.String(); !strings.Contains(out, ": Failed") || !strings.Contains(out, "BeforeInstall=Failed") || strings.Contains(out, "\x1b[") {
		t.Errorf("plain watch output:\n%s", out)
	}
	logs := exec.Command(bin, "logs", "--instance", "blue-1", id2)
	logs.Env = env
	out, err := logs.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "failing BeforeInstall on purpose") || strings.Contains(string(out), "green-1") {
		t.Errorf("logs --instance blue-1: %v\n%s", err, out)
	}
}

func waitCmd(c *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = c.Process.Kill()
		<-done
		return errors.New("timed out")
	}
}

// lockedBuffer is an output buffer read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchWithoutEventStream: behind a proxy that refuses the event
// stream, `cutover watch` says so on stderr, falls back to polling every
// second and still follows the deployment to its end.
func TestWatchWithoutEventStream(t *testing.T) {
	bin := buildCutover(t)
	f := servertest.StartBlueGreen(t, 1)
	target, _ := url.Parse(f.Env.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui/events" {
			http.Error(w, "no streams here", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	id := f.Deploy(t, "green")
	var out lockedBuffer
	watch := exec.Command(bin, "watch", "--endpoint-url", proxy.URL, id)
	watch.Env, watch.Stdout, watch.Stderr = awsEnv(t, f.Env), &out, &out
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), ": Ready") {
		if time.Now().After(deadline) {
			t.Fatalf("never showed Ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.Env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait}); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(watch, 60*time.Second); err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), ": Succeeded") {
		t.Errorf("output:\n%s", out.String())
	}
	// The fallback is said, once, not silent.
	if n := strings.Count(out.String(), "event stream is unavailable"); n != 1 {
		t.Errorf("the fallback to polling was announced %d times, want once:\n%s", n, out.String())
	}
}
