package deploy_test

// The server is killed with SIGKILL during the blue/green waits and started
// again on the same data directory: the deployment must be found in the
// same phase, its timer must keep its original deadline, and the load
// balancer (which lives in the server process) must never send a request to
// a backend that left traffic.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
)

const (
	bgRootKey    = "AKIATESTROOT00000001"
	bgRootSecret = "test-root-secret-key-0000000000000000000"
)

var bgServerBinary struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// bgBuildServer builds ./cmd/cutover once per test binary.
func bgBuildServer(t *testing.T) string {
	t.Helper()
	b := &bgServerBinary
	b.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			b.err = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		b.dir, b.err = os.MkdirTemp("", "cutover-bin")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "cutover")
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/cutover")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/cutover: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// bgProc is a `cutover server` process.
type bgProc struct {
	bin, listen, dataDir, trafficFile string
	minute                            time.Duration
	cmd                               *exec.Cmd
	log                               *os.File
}

func (p *bgProc) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin, "server", "--listen", p.listen, "--data-dir", p.dataDir, "--insecure-http",
		"--minute", p.minute.String(), "--traffic-config", p.trafficFile)
	cmd.Env = append(os.Environ(), "CUTOVER_ROOT_ACCESS_KEY_ID="+bgRootKey, "CUTOVER_ROOT_SECRET_ACCESS_KEY="+bgRootSecret)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cutover server did not come up; log:\n%s", p.output())
}

// kill9 kills the server with SIGKILL: no shutdown code runs.
func (p *bgProc) kill9(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *bgProc) output() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

// newBGProcess is newBG with the server in its own process.
func newBGProcess(t *testing.T, o bgOptions) (*bgFixture, *bgProc) {
	t.Helper()
	o = bgDefaults(o)
	bin := bgBuildServer(t)
	f := bgPrepare(t, o)
	dir := t.TempDir()
	tf := filepath.Join(dir, "traffic.yaml")
	yaml := fmt.Sprintf(`targetGroups:
  - name: %s
    driver: builtin
    listen: %s
    port: 1
    healthCheck: {path: /, interval: 50ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}
    deregistrationDelay: 2s
`, bgTG, f.LB)
	if err := os.WriteFile(tf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &bgProc{bin: bin, listen: haproxytest.FreeAddr(t), dataDir: filepath.Join(dir, "data"), trafficFile: tf, minute: o.minute, log: logf}
	p.start(t)
	t.Cleanup(func() {
		p.kill9(t)
		if t.Failed() {
			t.Logf("server log:\n%s", p.output())
		}
		logf.Close()
	})
	env := &servertest.Env{URL: "http://" + p.listen, AccessKey: bgRootKey, SecretKey: bgRootSecret, Region: "us-east-1"}
	env.Client = env.NewClient(env.AccessKey, env.SecretKey, env.Region)
	f.Env = env
	bgFinish(t, f, o)
	return f, p
}

// bgCheckServed fails if the hammer got an answer from a stopped
// application or from a host outside allowed; requests refused while the
// server (and its listener) was down are not counted.
func bgCheckServed(t *testing.T, ham *bgHammer, allowed []*bgHost) {
	t.Helper()
	if n := ham.dead.Load(); n > 0 {
		t.Errorf("%d requests were routed to a backend whose application was stopped", n)
	}
	want := bgNames(allowed)
	for name, n := range ham.Counts() {
		if !slices.Contains(want, name) {
			t.Errorf("%d requests were answered by %s, want only %v", n, name, want)
		}
	}
	if ham.ok.Load() == 0 {
		t.Errorf("no request was served")
	}
	t.Logf("served %d, not served (server down) %d", ham.ok.Load(), ham.nfail.Load())
}

const (
	bgRestartMinute = time.Second
	bgRestartWait   = 8 // API minutes
)

func TestBlueGreenServerKilledDuringReadyWait(t *testing.T) {
	f, p := newBGProcess(t, bgOptions{minute: bgRestartMinute, readyWait: bgRestartWait})
	id := f.Deploy(t, "green")
	info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped)
	if info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s)", info.Status, bgErr(info))
	}
	readySeen := time.Now() // the wait began at or before this
	ham := bgStartHammer(t, f.LB, 8)
	time.Sleep(2 * time.Second)
	p.kill9(t)
	time.Sleep(2 * time.Second)
	p.start(t)
	info = f.Get(t, id)
	if info.Status != types.DeploymentStatusReady {
		t.Fatalf("after the restart the deployment is %s (%s), want Ready", info.Status, bgErr(info))
	}
	if info.DeploymentOverview.Ready != 2 {
		t.Errorf("after the restart overview %+v, want Ready 2", info.DeploymentOverview)
	}
	f.WaitServing(t, f.Blue, 10*time.Second)
	info = f.WaitDone(t, id, types.DeploymentStatusStopped)
	deadline := readySeen.Add(bgRestartWait * bgRestartMinute)
	if info.CompleteTime == nil {
		t.Fatal("no completeTime")
	}
	end := *info.CompleteTime
	// A timer restarted by the restart would end about 4 s later.
	if end.Before(deadline.Add(-time.Second)) || end.After(deadline.Add(1500*time.Millisecond)) {
		t.Errorf("the Ready wait ended at %s, %s after Ready was seen; want its original deadline (%s)", end.Format(time.StampMilli), end.Sub(readySeen), bgRestartWait*bgRestartMinute)
	}
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeTimeout {
		t.Errorf("error %s, want TIMEOUT", bgErr(info))
	}
	f.WaitServing(t, f.Blue, 10*time.Second)
	ham.Stop()
	bgCheckServed(t, ham, f.Blue)
}

func TestBlueGreenServerKilledDuringTerminationWait(t *testing.T) {
	f, p := newBGProcess(t, bgOptions{minute: bgRestartMinute, termWait: bgRestartWait})
	id := f.Deploy(t, "green")
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s)", info.Status, bgErr(info))
	}
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	f.WaitTerminationWait(t, id)
	waitSeen := time.Now()
	f.WaitServing(t, f.Green, 10*time.Second)
	ham := bgStartHammer(t, f.LB, 8)
	time.Sleep(2 * time.Second)
	p.kill9(t)
	time.Sleep(2 * time.Second)
	p.start(t)
	info := f.Get(t, id)
	if info.Status != types.DeploymentStatusInProgress || !info.InstanceTerminationWaitTimeStarted {
		t.Fatalf("after the restart: %s started=%v (%s), want InProgress in the termination wait", info.Status, info.InstanceTerminationWaitTimeStarted, bgErr(info))
	}
	for _, h := range f.Blue {
		if slices.Contains(h.Hooks(t, id), "ApplicationStop") {
			t.Errorf("%s stopped before the termination wait ended", h.Name)
		}
	}
	f.WaitServing(t, f.Green, 10*time.Second)
	info = f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	deadline := waitSeen.Add(bgRestartWait * bgRestartMinute)
	end := *info.CompleteTime
	if end.Before(deadline.Add(-time.Second)) || end.After(deadline.Add(1500*time.Millisecond)) {
		t.Errorf("the termination wait ended at %s, %s after it was seen; want its original deadline (%s)", end.Format(time.StampMilli), end.Sub(waitSeen), bgRestartWait*bgRestartMinute)
	}
	for _, h := range f.Blue {
		if got, want := h.Hooks(t, id), []string{"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"}; !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want %v", h.Name, got, want)
		}
	}
	f.WaitServing(t, f.Green, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	ham.Stop()
	bgCheckServed(t, ham, f.Green)
}
