package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
)

// serverKeyHex returns a fresh server key in CUTOVER_SERVER_KEY's format.
func serverKeyHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startReplicas runs n in-process servers on one fresh PostgreSQL
// database, sharing a server key as the README tells operators to.
func startReplicas(t *testing.T, n int, opts ...servertest.Option) []*servertest.Env {
	t.Helper()
	url := pgtest.Start(t)
	t.Setenv("CUTOVER_SERVER_KEY", serverKeyHex(t))
	var envs []*servertest.Env
	for i := range n {
		o := append([]servertest.Option{servertest.WithDatabase(url), func(c *server.Config) { c.ReplicaID = fmt.Sprint("replica-", i) }}, opts...)
		envs = append(envs, servertest.Start(t, o...))
	}
	return envs
}

// TestReplicasShareKeysCommandsAndControl runs two replicas on one
// PostgreSQL: a key created through one signs requests to the other, and
// its revocation reaches the other at once; an agent polling replica B is
// woken by a deployment replica A drives; StopDeployment sent to B reaches
// the deployment on A.
func TestReplicasShareKeysCommandsAndControl(t *testing.T) {
	envs := startReplicas(t, 2)
	a, b := envs[0], envs[1]
	ctx := context.Background()

	created, err := a.Server.Keys.Create(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	alice := b.NewClient(created.AccessKeyID, created.SecretAccessKey, b.Region)
	if _, err := alice.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("a key created through replica A, used on replica B: %v", err)
	}
	if err := a.Server.Keys.Revoke(ctx, created.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := alice.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		if err != nil {
			if code := servertest.ErrorCode(err); code != "UnrecognizedClientException" && code != "InvalidClientTokenId" {
				t.Fatalf("revoked key answered %v", err)
			}
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("a key revoked through replica A still works on replica B after 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The agent registers and polls through B; the deployment is created,
	// hence driven, by A.
	e := &e2e{env: a, s3: startS3(t)}
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h := startHost(t, b, e.s3.URL, "host-1", "web", release)
	a.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	start := time.Now()
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: recordAll()}))
	e.waitDone(t, id, types.DeploymentStatusSucceeded)
	// Seven commands handed across replicas; each wake is a notification
	// away, not a poll recheck (5 s).
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the deployment took %s: commands queued on A did not wake the poll on B at once", d)
	} else {
		t.Logf("deployment driven by A for an agent polling B: %s", d.Round(time.Millisecond))
	}
	if got := hookOrder(t, h.evidence, id); !slices.Equal(got, []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}) {
		t.Errorf("hooks ran %v", got)
	}

	hooks := recordAll()
	hooks["BeforeInstall"] = scriptBlock
	id2 := e.deploy(t, "app", "web", e.upload(t, "app/v2.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	out, err := b.Client.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &id2})
	if err != nil {
		t.Fatalf("StopDeployment through the replica not driving it: %v", err)
	}
	if out.Status != types.StopStatusPending {
		t.Fatalf("stop status %s", out.Status)
	}
	touch(t, release)
	info := b.WaitStatus(t, id2, 30*time.Second, terminal...)
	if info.Status != types.DeploymentStatusStopped {
		t.Fatalf("deployment %s after a stop through B: %s", id2, info.Status)
	}
	if got := hookOrder(t, h.evidence, id2); !slices.Equal(got, []string{"ApplicationStop", "BeforeInstall"}) {
		t.Errorf("after the stop the host ran %v", got)
	}
}

// TestReplicaRejectsAnotherServerKey: a replica started with a server key
// other than the database's refuses to start, saying why.
func TestReplicaRejectsAnotherServerKey(t *testing.T) {
	url := pgtest.Start(t)
	t.Setenv("CUTOVER_SERVER_KEY", serverKeyHex(t))
	servertest.Start(t, servertest.WithDatabase(url))
	t.Setenv("CUTOVER_SERVER_KEY", serverKeyHex(t))
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Database: url, InsecureHTTP: true}
	s, err := server.New(context.Background(), cfg)
	if err == nil {
		s.Close()
		t.Fatal("a replica with another server key started")
	}
	if !strings.Contains(err.Error(), "CUTOVER_SERVER_KEY") {
		t.Fatalf("error does not tell what to fix: %v", err)
	}
}

// TestReadyz: /readyz answers once the store answers and leases can be
// taken.
func TestReadyz(t *testing.T) {
	env := servertest.Start(t)
	resp, err := http.Get(env.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d", resp.StatusCode)
	}
}

// TestReplicasBlueGreenHAProxy: two replicas share one HAProxy. Only the
// replica holding the target group's lease pushes to it; the other drives
// the deployments (it created them) and its traffic events wait for the
// pusher's recorded outcome. ContinueDeployment goes through the pusher.
// Live traffic through HAProxy moves to the replacements with no failed
// request.
func TestReplicasBlueGreenHAProxy(t *testing.T) {
	o := bgDefaults(bgOptions{driver: traffic.DriverHAProxy, termWait: 1})
	f := bgPrepare(t, o)
	f.TG.HAProxy.Socket = haproxytest.StartHAProxy(t, []traffic.TargetGroupConfig{f.TG.WithDefaults()})
	envs := startReplicas(t, 2, func(c *server.Config) {
		c.Minute = o.minute
		c.TargetGroups = append(c.TargetGroups, f.TG)
	})
	f.Env = envs[1] // replica-0 started first: it holds the HAProxy lease
	b, err := store.Get(context.Background(), envs[1].Server.Store, "lease", "traffic/"+bgTG)
	if err != nil || !strings.Contains(string(b), `"owner":"replica-0"`) {
		t.Fatalf("HAProxy lease %s %v, want held by replica-0", b, err)
	}
	bgFinish(t, f, o)
	ham := bgStartHammer(t, f.LB, 8)
	id := f.Deploy(t, "green")
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s)", info.Status, bgErr(info))
	}
	f.Env = envs[0]
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	f.WaitServing(t, f.Green, 10*time.Second)
	ham.Stop()
	ham.CheckNoFailures(t)
	bgCheckServed(t, ham, append(append([]*bgHost{}, f.Blue...), f.Green...))
}

// TestReplicaGracefulStopHandsOver: a replica shut down cleanly gives its
// leases up, so another takes its deployments over at once instead of
// after the lease expires.
func TestReplicaGracefulStopHandsOver(t *testing.T) {
	envs := startReplicas(t, 2)
	a, b := envs[0], envs[1]
	e := &e2e{env: a, s3: startS3(t)}
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h := startHost(t, b, e.s3.URL, "host-1", "web", release)
	a.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	hooks := recordAll()
	hooks["AfterInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)
	owner := func() string {
		v, err := store.Get(context.Background(), b.Server.Store, "lease", "deployment/"+id)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if o := owner(); !strings.Contains(o, `"owner":"replica-0"`) {
		t.Fatalf("lease %s, want replica-0", o)
	}
	stopped := time.Now()
	a.Stop()
	for !strings.Contains(owner(), `"owner":"replica-1"`) {
		if time.Since(stopped) > 3*time.Second {
			t.Fatalf("3 s after replica-0 stopped cleanly its deployment is still not taken over: %s", owner())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("replica-1 took the deployment over %s after replica-0 began to stop", time.Since(stopped).Round(time.Millisecond))
	touch(t, release)
	info := b.WaitStatus(t, id, 30*time.Second, terminal...)
	if info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s (%s)", info.Status, errInfo(info))
	}
	if got := hookOrder(t, h.evidence, id); !slices.Equal(got, []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}) {
		t.Errorf("hooks ran %v", got)
	}
}

// TestCLIRevocationReachesReplicas: `cutover keys revoke` writes to the
// shared database from its own process (here: its own store and key
// manager); a replica that cached the key stops accepting it within 1 s.
func TestCLIRevocationReachesReplicas(t *testing.T) {
	envs := startReplicas(t, 1)
	env := envs[0]
	ctx := context.Background()
	created, err := env.Server.Keys.Create(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	bob := env.NewClient(created.AccessKeyID, created.SecretAccessKey, env.Region)
	if _, err := bob.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatal(err) // the replica now has the key cached
	}
	st, err := server.OpenStore(ctx, t.TempDir(), env.Config.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	box, err := server.OpenSealer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cli := &keys.Manager{Store: st, Sealer: box}
	if err := cli.Revoke(ctx, created.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		if _, err := bob.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("a key revoked by another process still works after 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("refused %s after the revocation", time.Since(revoked).Round(time.Millisecond))
}
