package deploy_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent/layout"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// pendingResults lists the results an agent has saved but not delivered.
func pendingResults(t testing.TB, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, layout.CompletionsDirName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		// A result is saved once renamed into place: a temporary file
		// being written is not one yet (a run under load killed the
		// agent in between and expected the result to survive).
		if strings.HasPrefix(e.Name(), ".tmp") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// settledResults waits up to 10 s for the agent to drop its saved results:
// it removes a result only after the server's answer reaches it, which can
// trail the deployment's Succeeded on a loaded machine.
func settledResults(t testing.TB, root string) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := pendingResults(t, root)
		if len(p) == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2ECompletionsSurviveServerOutage: the server goes away (stopped, or
// killed with SIGKILL as in the report; the store is kept) for 10 s
// while three agents finish their AfterInstall hooks, and one of those
// agents is restarted meanwhile. When the server is back on the same data
// directory and port, every completion lands: the deployment succeeds with
// each hook run once and no event timed out. Before, the agent gave up after
// four tries (~2 s) and the events ended as ScriptTimedOut.
func TestE2ECompletionsSurviveServerOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps the server down for 10 s")
	}
	// A lost completion would show as ScriptTimedOut well within the
	// test's wait.
	const eventTimeout = 40 * time.Second
	t.Run("stopped", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		opts := []servertest.Option{servertest.WithDataDir(t.TempDir()), func(c *server.Config) {
			c.Listen = addr
			c.EventTimeout = eventTimeout
		}}
		var env *servertest.Env
		serverOutage(t, func() *servertest.Env { env = servertest.Start(t, opts...); return env }, func() { env.Stop() })
	})
	t.Run("kill9", func(t *testing.T) {
		bin := buildCutover(t)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		dataDir := t.TempDir()
		var p *proc
		serverOutage(t, func() *servertest.Env {
			p = serverProc(t, bin, addr, dataDir, "--event-timeout", eventTimeout.String())
			return externalEnv("http://" + addr)
		}, func() { p.kill9() })
	})
}

// serverOutage runs the outage scenario against a server that start
// brings up (again, on the same store and address) and stop takes down.
func serverOutage(t *testing.T, start func() *servertest.Env, stop func()) {
	e := &e2e{env: start(), s3: startS3(t)}
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	var hosts []*host
	for i := range 3 {
		hosts = append(hosts, startHost(t, e.env, e.s3.URL, fmt.Sprintf("host-%d", i+1), "web", release))
	}
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	hooks := recordAll()
	hooks["AfterInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	for _, h := range hosts {
		waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	}

	stopAt := time.Now()
	stop()
	down := time.Now()
	t.Logf("stopped the server in %s", down.Sub(stopAt).Round(time.Millisecond))
	touch(t, release)
	// Every agent finishes its hook and saves the result it cannot send.
	for _, h := range hosts {
		deadline := time.Now().Add(10 * time.Second)
		for len(pendingResults(t, h.agent.RootDir)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s saved no result while the server was down", h.agent.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The third agent restarts while the server is away: its result must
	// come back from disk, not as a "failed after restart".
	restarted := hosts[2]
	restarted.agent.Stop()
	if p := pendingResults(t, restarted.agent.RootDir); len(p) != 1 {
		t.Fatalf("%s stopped with saved results %v, want one", restarted.agent.Name, p)
	}
	time.Sleep(10*time.Second - time.Since(down))

	e.env = start()
	back := time.Now()
	restarted.agent.Start()
	info := e.waitDone(t, id, types.DeploymentStatusSucceeded)
	defer func(start time.Time) { t.Logf("checks and cleanup from %s", time.Since(start)) }(time.Now())
	t.Logf("server down %s; deployment done %s after it came back", back.Sub(down).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	wantOverview(t, info, 0, 0, 3, 0, 0)
	for _, h := range hosts {
		want := []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
		if got := hookOrder(t, h.evidence, id); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want each hook once: %v", h.agent.Name, got, want)
		}
		// Every event Succeeded with Success diagnostics: none timed out.
		checkEvents(t, e.target(t, id, h.agent.Name).LifecycleEvents, allEvents)
		if p := settledResults(t, h.agent.RootDir); len(p) != 0 {
			t.Errorf("%s still holds results %v", h.agent.Name, p)
		}
	}
}

// TestE2ELateCompletionAfterTimeout: the server times an event out while
// the hook still runs; the agent's late Complete is answered {} (the first
// outcome stands, AGENT-SEMANTICS §1.7) and the agent, taking that as
// final, drops its saved result instead of retrying it forever.
func TestE2ELateCompletionAfterTimeout(t *testing.T) {
	var logs lockedBuffer
	e := newE2E(t, func(c *server.Config) {
		c.EventTimeout = time.Second
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", release)
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	hooks := recordAll()
	hooks["BeforeInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	e.waitDone(t, id, types.DeploymentStatusFailed)
	ev := findEvent(t, e.target(t, id, "host-1").LifecycleEvents, "BeforeInstall")
	if ev.Diagnostics == nil || ev.Diagnostics.ErrorCode != types.LifecycleErrorCodeScriptTimedOut {
		t.Fatalf("BeforeInstall %s %+v, want ScriptTimedOut", ev.Status, ev.Diagnostics)
	}

	// The hook now finishes and succeeds; its Complete comes too late.
	touch(t, release)
	// The tracking file goes once the result is saved, the saved result
	// once the server has answered; both gone means the Complete was sent
	// and settled.
	tracking := filepath.Join(h.agent.RootDir, layout.TrackingDirName)
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(tracking)
		if len(entries) == 0 && len(pendingResults(t, h.agent.RootDir)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent still holds %v / %v after the late Complete", entries, pendingResults(t, h.agent.RootDir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	ev = findEvent(t, e.target(t, id, "host-1").LifecycleEvents, "BeforeInstall")
	if ev.Status != types.LifecycleEventStatusFailed || ev.Diagnostics.ErrorCode != types.LifecycleErrorCodeScriptTimedOut {
		t.Errorf("after the late Complete BeforeInstall is %s %s; the first outcome must stand", ev.Status, ev.Diagnostics.ErrorCode)
	}
	if !strings.Contains(logs.String(), `msg="completion of a command no longer current; ignored" host=`+h.agent.Arn) {
		t.Errorf("the server did not log the late Complete")
	}
	// The agent carries on with the next deployment.
	id2 := e.deploy(t, "app", "web", e.upload(t, "app/v2.tgz", revSpec{hooks: recordAll()}))
	e.waitDone(t, id2, types.DeploymentStatusSucceeded)
}

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestE2EAgentKill9WithSavedCompletion: a `cutover agent` process finishes
// its hook while the server is away, saves the result, and is killed with
// SIGKILL. Started again after the server is back, it sends the saved
// result (not "failed after an agent restart") and the deployment succeeds
// with the hook run once.
func TestE2EAgentKill9WithSavedCompletion(t *testing.T) {
	bin := buildCutover(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	opts := []servertest.Option{servertest.WithDataDir(t.TempDir()), func(c *server.Config) {
		c.Listen = addr
		c.EventTimeout = 40 * time.Second
	}}
	e := &e2e{env: servertest.Start(t, opts...), s3: startS3(t)}
	h, ag, id, release := blockedAgentProc(t, bin, e)

	e.env.Stop()
	touch(t, release)
	deadline := time.Now().Add(10 * time.Second)
	for len(pendingResults(t, h.root)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent saved no result while the server was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ag.kill9()

	e.env = servertest.Start(t, opts...)
	h.start(t)
	e.waitDone(t, id, types.DeploymentStatusSucceeded)
	if got, want := hookOrder(t, h.evidence, id), []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want each hook once: %v", got, want)
	}
	checkEvents(t, e.target(t, id, "host-1").LifecycleEvents, allEvents)
	if p := settledResults(t, h.root); len(p) != 0 {
		t.Errorf("the agent still holds %v", p)
	}
}
