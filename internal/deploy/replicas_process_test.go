package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
)

// replicaProc is one `cutover server` process of a replica set.
type replicaProc struct {
	id, addr, dir string
	bin           string
	envv, args    []string
	proc          *proc
	env           *servertest.Env
}

// start runs (or runs again, after a kill) the replica's process.
func (r *replicaProc) start(t *testing.T) {
	t.Helper()
	r.proc = startProc(t, filepath.Join(r.dir, "server.log"), r.envv, r.bin, r.args...)
	waitURL(t, "http://"+r.addr+"/healthz", r.proc)
}

// startReplicaProcs runs n `cutover server` processes on one PostgreSQL
// database, configured as the README says: one CUTOVER_SERVER_KEY, a
// CUTOVER_REPLICA_ID each.
func startReplicaProcs(t *testing.T, bin, url string, n int, extra func(i int, dir string) []string) []*replicaProc {
	t.Helper()
	key := serverKeyHex(t)
	var out []*replicaProc
	for i := range n {
		r := &replicaProc{id: fmt.Sprint("replica-", i), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir(), bin: bin}
		r.envv = []string{"CUTOVER_ROOT_ACCESS_KEY_ID=" + procRootKey, "CUTOVER_ROOT_SECRET_ACCESS_KEY=" + procRootSecret,
			"CUTOVER_SERVER_KEY=" + key, "CUTOVER_REPLICA_ID=" + r.id}
		r.args = []string{"server", "--listen", r.addr, "--data-dir", r.dir, "--log-level", "info", "--insecure-http"}
		if url != "" { // "": the server's own SQLite database in its data dir
			r.args = append(r.args, "--database", url)
		}
		if extra != nil {
			r.args = append(r.args, extra(i, r.dir)...)
		}
		r.start(t)
		r.env = externalEnv("http://" + r.addr)
		out = append(out, r)
	}
	return out
}

// leaseOf reads who drives a deployment, straight from the database.
func leaseOf(t *testing.T, st store.Store, id string) (owner string, epoch int64) {
	t.Helper()
	b, err := store.Get(context.Background(), st, "lease", "deployment/"+id)
	if err != nil {
		t.Fatalf("lease of %s: %v", id, err)
	}
	var l struct {
		Owner string `json:"owner"`
		Epoch int64  `json:"epoch"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l.Owner, l.Epoch
}

// TestReplicasKill9OwnerMidHook runs three replicas on one PostgreSQL,
// agents polling two of them, API calls spread over all three. The replica
// driving an in-place deployment is killed with SIGKILL while every host
// is inside a hook: another replica takes the deployment over within 10 s,
// the hooks' completions reach it through the replicas the agents poll,
// and the deployment ends as it would have, every hook run exactly once.
func TestReplicasKill9OwnerMidHook(t *testing.T) {
	bin := buildCutover(t)
	url := pgtest.Start(t)
	reps := startReplicaProcs(t, bin, url, 3, nil)
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	s3 := startS3(t)
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	hosts := []*host{
		startHost(t, reps[1].env, s3.URL, "host-1", "web", release),
		startHost(t, reps[2].env, s3.URL, "host-2", "web", release),
		startHost(t, reps[1].env, s3.URL, "host-3", "web", release),
	}
	reps[2].env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	e := &e2e{env: reps[0].env, s3: s3}
	hooks := recordAll()
	hooks["AfterInstall"] = scriptBlock
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: hooks}))
	for _, h := range hosts {
		waitFile(t, filepath.Join(h.evidence, "blocked"), 20*time.Second)
	}
	owner, epoch := leaseOf(t, st, id)
	if owner != reps[0].id {
		t.Fatalf("deployment created through %s is driven by %s", reps[0].id, owner)
	}

	reps[0].proc.kill9()
	killed := time.Now()
	for {
		o, ep := leaseOf(t, st, id)
		if o != owner && ep > epoch {
			t.Logf("%s took the deployment over %s after %s was killed (epoch %d)", o, time.Since(killed).Round(time.Millisecond), owner, ep)
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("no replica took the deployment over within 10 s (lease %s/%d)", o, ep)
		}
		time.Sleep(50 * time.Millisecond)
	}
	touch(t, release)
	e.env = reps[1].env
	info := e.waitDone(t, id, types.DeploymentStatusSucceeded)
	wantOverview(t, info, 0, 0, 3, 0, 0)
	for _, h := range hosts {
		want := []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
		if got := hookOrder(t, h.evidence, id); !slices.Equal(got, want) {
			t.Errorf("%s ran %v, want each hook once: %v", h.agent.Name, got, want)
		}
		checkEvents(t, e.target(t, id, h.agent.Name).LifecycleEvents, allEvents)
	}
	// Any surviving replica answers for it.
	e.env = reps[2].env
	if got := e.getDeployment(t, id).Status; got != types.DeploymentStatusSucceeded {
		t.Errorf("replica-2 reads %s", got)
	}
}

// TestReplicasBlueGreenOwnerKilled: three replicas each run the builtin
// load balancer of the target group on their own address. The replica
// driving a blue/green deployment is killed with SIGKILL in one of its
// waits. In the Ready wait, ContinueDeployment sent to a survivor reaches
// the replica that took the deployment over; in the termination wait, the
// new owner ends the wait at its original deadline. Live traffic through a
// surviving replica's load balancer never fails a request.
func TestReplicasBlueGreenOwnerKilled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		termWait int32
	}{
		{"ReadyWait", 1},
		{"TerminationWait", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := bgDefaults(bgOptions{minute: time.Second, readyWait: 60, termWait: tc.termWait})
			f, reps, st := startBGReplicas(t, o)
			ham := bgStartHammer(t, f.LB, 8)
			f.Env = reps[0].env
			id := f.Deploy(t, "green")
			f.Env = reps[1].env
			if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status != types.DeploymentStatusReady {
				t.Fatalf("%s (%s)", info.Status, bgErr(info))
			}
			if owner, _ := leaseOf(t, st, id); owner != reps[0].id {
				t.Fatalf("deployment created through %s is driven by %s", reps[0].id, owner)
			}
			var waitSeen time.Time
			if tc.name == "TerminationWait" {
				f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
				f.WaitTerminationWait(t, id)
				waitSeen = time.Now()
			}
			reps[0].proc.kill9()
			killed := time.Now()
			if tc.name == "ReadyWait" {
				f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
				t.Logf("ContinueDeployment through replica-1 applied %s after the owner was killed", time.Since(killed).Round(time.Millisecond))
			}
			info := f.WaitDone(t, id, types.DeploymentStatusSucceeded)
			if !waitSeen.IsZero() {
				deadline := waitSeen.Add(time.Duration(tc.termWait) * o.minute)
				if end := *info.CompleteTime; end.Before(deadline.Add(-time.Second)) || end.After(deadline.Add(1500*time.Millisecond)) {
					t.Errorf("the termination wait ended %s after it was seen; want its original %s", end.Sub(waitSeen), time.Duration(tc.termWait)*o.minute)
				}
				for _, h := range f.Blue {
					if got, want := h.Hooks(t, id), []string{"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"}; !slices.Equal(got, want) {
						t.Errorf("%s ran %v, want %v", h.Name, got, want)
					}
				}
			}
			f.WaitServing(t, f.Green, 10*time.Second)
			ham.Stop()
			ham.CheckNoFailures(t)
			bgCheckServed(t, ham, append(append([]*bgHost{}, f.Blue...), f.Green...))
		})
	}
}

// startBGReplicas starts three replica processes, each with the builtin
// load balancer on its own address (replica-1's is f.LB), and the
// blue/green fixture against replica-1, blue in traffic.
func startBGReplicas(t *testing.T, o bgOptions) (*bgFixture, []*replicaProc, store.Store) {
	t.Helper()
	bin := buildCutover(t)
	url := pgtest.Start(t)
	f := bgPrepare(t, o)
	lbs := []string{haproxytest.FreeAddr(t), f.LB, haproxytest.FreeAddr(t)}
	reps := startReplicaProcs(t, bin, url, 3, func(i int, dir string) []string {
		tf := filepath.Join(dir, "traffic.yaml")
		yaml := fmt.Sprintf("targetGroups:\n  - name: %s\n    driver: builtin\n    listen: %s\n    port: 1\n"+
			"    healthCheck: {path: /, interval: 50ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}\n    deregistrationDelay: 2s\n", bgTG, lbs[i])
		if err := os.WriteFile(tf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{"--traffic-config", tf, "--minute", o.minute.String()}
	})
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.Env = reps[1].env
	bgFinish(t, f, o) // agents poll replica-1; blue is in traffic
	return f, reps, st
}

// TestReplicaKillSoak is the randomized kill soak of BENCHMARKS.md, run
// only when CUTOVER_SOAK_ROUNDS is set: each round creates an in-place
// deployment to three hosts through a
// random replica (agents reach the replicas through a TCP front that
// connects to a live one), kills a random replica with SIGKILL at a random moment,
// starts it again, and checks the outcome: Succeeded, every hook exactly
// once on every host, no deployment stuck. It reports the takeover times
// of the rounds that killed the deployment's owner. With
// CUTOVER_SOAK_STORE=sqlite it runs one server on its own SQLite database
// instead: the kill takes the only server down, and the deployment must
// resume when it starts again.
func TestReplicaKillSoak(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("CUTOVER_SOAK_ROUNDS"))
	if rounds <= 0 {
		t.Skip("set CUTOVER_SOAK_ROUNDS=N to run N rounds of kill -9 of a random replica")
	}
	sqlite := os.Getenv("CUTOVER_SOAK_STORE") == "sqlite"
	bin := buildCutover(t)
	var reps []*replicaProc
	var st store.Store
	if sqlite {
		reps = startReplicaProcs(t, bin, "", 1, nil)
	} else {
		url := pgtest.Start(t)
		reps = startReplicaProcs(t, bin, url, 3, nil)
		pst, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer pst.Close()
		st = pst
	}
	s3 := startS3(t)
	release := filepath.Join(t.TempDir(), "release")
	touch(t, release)
	// Agents reach the replicas through one address, as the README tells
	// operators to set up: a connection goes to a live replica.
	front := externalEnv("http://" + startFront(t, reps))
	hosts := []*host{
		startHost(t, front, s3.URL, "host-1", "web", release),
		startHost(t, front, s3.URL, "host-2", "web", release),
		startHost(t, front, s3.URL, "host-3", "web", release),
	}
	reps[0].env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	slow := "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID\" >> \"$EVIDENCE/order\"\nsleep 0.2\n"
	hooks := map[string]string{}
	for _, h := range scriptable {
		hooks[h] = slow
	}
	s3e := &e2e{env: reps[0].env, s3: s3}
	rev := s3e.upload(t, "app/soak.tgz", revSpec{hooks: hooks})
	var divergent, doubled, lost, stuck, midway int
	var takeovers []time.Duration
	for round := range rounds {
		e := &e2e{env: reps[mrand.IntN(len(reps))].env, s3: s3}
		id := e.deploy(t, "app", "web", rev)
		time.Sleep(time.Duration(mrand.IntN(3000)) * time.Millisecond)
		victim := reps[mrand.IntN(len(reps))]
		// The only server owns everything; no lease to watch move.
		owner, epoch := victim.id, int64(0)
		if st != nil {
			owner, epoch = leaseOf(t, st, id)
		}
		if !done(t, reps, nil, id) {
			midway++
		}
		victim.proc.kill9()
		killed := time.Now()
		if st != nil && owner == victim.id && !done(t, reps, victim, id) {
			for {
				o, ep := leaseOf(t, st, id)
				if o != victim.id && ep > epoch {
					takeovers = append(takeovers, time.Since(killed))
					break
				}
				if done(t, reps, victim, id) || time.Since(killed) > 30*time.Second {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		victim.start(t)
		other := reps[(slices.Index(reps, victim)+1)%len(reps)].env
		info := other.WaitStatus(t, id, 90*time.Second, terminal...)
		switch {
		case !slices.Contains(terminal, info.Status):
			stuck++
			t.Errorf("round %d: %s stuck %s", round, id, info.Status)
		case info.Status != types.DeploymentStatusSucceeded:
			divergent++
			t.Errorf("round %d: %s ended %s (%s)", round, id, info.Status, errInfo(info))
		}
		want := []string{"BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
		if round > 0 {
			want = append([]string{"ApplicationStop"}, want...)
		}
		for _, h := range hosts {
			got := hookOrder(t, h.evidence, id)
			for _, ev := range want {
				switch n := countOf(got, ev); {
				case n > 1:
					doubled++
					t.Errorf("round %d: %s ran %s %d times", round, h.agent.Name, ev, n)
				case n == 0 && info.Status == types.DeploymentStatusSucceeded:
					lost++
					t.Errorf("round %d: %s never ran %s", round, h.agent.Name, ev)
				}
			}
		}
		t.Logf("round %d: killed %s (owner %s) at %s; %s", round, victim.id, owner, killed.Format("15:04:05.000"), info.Status)
	}
	slices.Sort(takeovers)
	t.Logf("SOAK rounds=%d divergent=%d doubled=%d lost=%d stuck=%d (killed while the deployment ran: %d)", rounds, divergent, doubled, lost, stuck, midway)
	if len(takeovers) > 0 {
		t.Logf("SOAK owner killed %d times; takeover min=%s p50=%s max=%s", len(takeovers), takeovers[0], takeovers[len(takeovers)/2], takeovers[len(takeovers)-1])
	}
}

// done reports whether a deployment has ended, asking a live replica.
func done(t *testing.T, reps []*replicaProc, dead *replicaProc, id string) bool {
	t.Helper()
	for _, r := range reps {
		if r == dead {
			continue
		}
		out, err := r.env.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: &id})
		if err == nil {
			return slices.Contains(terminal, out.DeploymentInfo.Status)
		}
	}
	return false
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// startFront runs a TCP front for the replicas, like a virtual IP or a TCP
// load balancer: each connection goes to a random replica that accepts it.
func startFront(t *testing.T, reps []*replicaProc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				first := mrand.IntN(len(reps))
				var b net.Conn
				for i := range reps {
					if b, err = net.DialTimeout("tcp", reps[(first+i)%len(reps)].addr, time.Second); err == nil {
						break
					}
				}
				if b == nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c); b.Close() }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return ln.Addr().String()
}
