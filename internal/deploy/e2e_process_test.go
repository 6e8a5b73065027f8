package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/servertest"
)

const (
	procRootKey    = "AKIATESTROOT00000001"
	procRootSecret = "test-root-secret-key-0000000000000000000"
)

// buildCutover builds the cutover binary from the module root.
func buildCutover(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the cutover binary")
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(t.TempDir(), "cutover")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cutover")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a child process in its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startProc(t testing.TB, logPath string, env []string, name string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: a test binary killed by its -timeout runs no cleanup;
	// without it the servers it started lived on (found orphaned after
	// a timed-out run, holding their ports).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log tail:\n%s", filepath.Base(name), b)
		}
	})
	return p
}

// kill9 kills the whole process group (the process and any hook it runs)
// with SIGKILL and waits for the process.
func (p *proc) kill9() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// serverProc runs `cutover server` on a fixed address and data directory.
func serverProc(t testing.TB, bin, addr, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"server", "--listen", addr, "--data-dir", dataDir, "--log-level", "info", "--insecure-http"}, extra...)
	p := startProc(t, filepath.Join(dataDir, "server.log"), []string{"CUTOVER_ROOT_ACCESS_KEY_ID=" + procRootKey, "CUTOVER_ROOT_SECRET_ACCESS_KEY=" + procRootSecret}, bin, args...)
	waitURL(t, "http://"+addr+"/healthz", p)
	return p
}

func waitURL(t testing.TB, url string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited before %s answered", url)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

// externalEnv is a servertest.Env for a server running elsewhere: its
// client, agents and WaitStatus work as for an in-process one.
func externalEnv(url string) *servertest.Env {
	e := &servertest.Env{URL: url, AccessKey: procRootKey, SecretKey: procRootSecret, Region: "us-east-1"}
	e.Client = e.NewClient(e.AccessKey, e.SecretKey, e.Region)
	return e
}

// TestE2EServerKill9MidDeployment kills the server process with SIGKILL
// while hooks are blocked on two hosts, restarts it on the same data
// directory and checks the deployment carries on, each hook running once.
func TestE2EServerKill9MidDeployment(t *testing.T) {
	bin := buildCutover(t)
	dataDir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	srv := serverProc(t, bin, addr, dataDir)
	e := &e2e{env: externalEnv("http://" + addr), s3: startS3(t)}
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	hosts := []*host{
		startHost(t, e.env, e.s3.URL, "host-1", "web", release),
		startHost(t, e.env, e.s3.URL, "host-2", "web", release),
	}
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	hooks := recordAll()
	hooks["AfterInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	for _, h := range hosts {
		waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	}

	srv.kill9()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("server still answers after SIGKILL")
	}
	serverProc(t, bin, addr, dataDir)
	if st := e.getDeployment(t, id).Status; st != types.DeploymentStatusInProgress {
		t.Fatalf("after restart the deployment is %s", st)
	}
	touch(t, release)
	info := e.waitDone(t, id, types.DeploymentStatusSucceeded)
	wantOverview(t, info, 0, 0, 2, 0, 0)
	for _, h := range hosts {
		want := []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
		if got := hookOrder(t, h.evidence, id); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want each hook once: %v", h.agent.Name, got, want)
		}
		checkEvents(t, e.target(t, id, h.agent.Name).LifecycleEvents, allEvents)
	}
}

// TestE2EAgentKill9MidHook kills a `cutover agent` process (and its hook)
// with SIGKILL and starts it again: the restarted agent fails the event it
// left in progress at once, and the deployment fails without a timeout.
func TestE2EAgentKill9MidHook(t *testing.T) {
	bin := buildCutover(t)
	e := newE2E(t) // default pickup (5m) and event (65m) timeouts
	h, ag, id, _ := blockedAgentProc(t, bin, e)
	ag.kill9()
	start := time.Now()
	h.start(t)
	info := e.waitDone(t, id, types.DeploymentStatusFailed)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the deployment took %s to fail after the agent restarted", d)
	}
	ev := findEvent(t, e.target(t, id, "host-1").LifecycleEvents, "BeforeInstall")
	if ev.Status != types.LifecycleEventStatusFailed || ev.Diagnostics == nil || !strings.Contains(aws.ToString(ev.Diagnostics.Message), "agent restart") {
		t.Fatalf("BeforeInstall %s %+v", ev.Status, ev.Diagnostics)
	}
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeHealthConstraints {
		t.Errorf("errorInformation %s", errInfo(info))
	}
	// The restarted agent then deploys normally.
	id2 := e.deploy(t, "app", "web", e.upload(t, "app/v2.tgz", revSpec{hooks: recordAll()}))
	e.waitDone(t, id2, types.DeploymentStatusSucceeded)
}

// agentProc is a registered host whose agent runs as a `cutover agent`
// process; its hooks see EVIDENCE and RELEASE as startHost's do.
type agentProc struct {
	bin, dir, root, evidence string
	env, args                []string
}

func newAgentProc(t testing.TB, bin string, e *e2e, name, release string) *agentProc {
	t.Helper()
	c, err := agent.Register(context.Background(), agent.RegisterRequest{
		Endpoint: e.env.URL, Region: e.env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(e.env.AccessKey, e.env.SecretKey, ""),
		InstanceName:     name, Tags: map[string]string{"role": "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.CutoverEndpoint = e.env.URL
	a := &agentProc{bin: bin, dir: t.TempDir(), evidence: t.TempDir()}
	a.root = filepath.Join(a.dir, "root")
	conf := filepath.Join(a.dir, "codedeploy.onpremises.yml")
	if err := agent.WriteOnPremConfig(conf, c); err != nil {
		t.Fatal(err)
	}
	a.env = []string{"EVIDENCE=" + a.evidence, "RELEASE=" + release}
	a.args = []string{"agent", "--onprem-config", conf, "--root-dir", a.root, "--s3-endpoint", e.s3.URL, "--log-level", "debug"}
	return a
}

// start runs the agent process (again, after a kill: a restart).
func (a *agentProc) start(t testing.TB) *proc {
	t.Helper()
	return startProc(t, filepath.Join(a.dir, "agent.log"), a.env, a.bin, a.args...)
}

// blockedAgentProc runs an agent process for host-1 and deploys to it a
// revision whose BeforeInstall blocks until the returned release file
// exists; it returns once the hook blocks.
func blockedAgentProc(t testing.TB, bin string, e *e2e) (h *agentProc, running *proc, id, release string) {
	t.Helper()
	release = filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h = newAgentProc(t, bin, e, "host-1", release)
	running = h.start(t)
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	hooks := recordAll()
	hooks["BeforeInstall"] = scriptBlock
	id = e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	return h, running, id, release
}
