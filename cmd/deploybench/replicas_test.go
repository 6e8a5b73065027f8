package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
)

// hostCmdKind is the store kind of the host command queue
// (internal/deploy's kindHostCmd); the test checks that the runner watches it.
const hostCmdKind = "hostcmd"

// TestIdleFleetReplicas is the agent-scale benchmark of BENCHMARKS.md for
// replicas, run only when CUTOVER_FLEET_AGENTS is set: three `cutover
// server` processes on one PostgreSQL, N registered instances (real host
// keys) long-polling them round-robin with the agent protocol client. It
// reports each replica's CPU and RSS while they idle, then queues commands
// through the store from outside the replicas (as the replica driving a
// deployment does: a put of the queue record, pg_notify in the same
// transaction) for agents polling the replicas, and measures queue commit →
// the agent's PollHostCommand returning it.
func TestIdleFleetReplicas(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CUTOVER_FLEET_AGENTS"))
	if n <= 0 {
		t.Skip("set CUTOVER_FLEET_AGENTS=N to run N idle agents across three replicas")
	}
	if !slices.Contains(deploy.WatchedKinds, hostCmdKind) {
		t.Fatalf("the runner does not watch %q: update hostCmdKind", hostCmdKind)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n)+1000 {
		lim.Cur = min(lim.Max, uint64(n)+2000)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < uint64(n)+1000 {
			t.Fatalf("open files limit %d is too low for %d agents (raise ulimit -n): %v", lim.Cur, n, err)
		}
	}
	ctx := context.Background()
	tmp := t.TempDir()
	bin, err := build(tmp)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.Start(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = n + 100
	tr.ResponseHeaderTimeout = protocol.ReadTimeout
	hc := &http.Client{Transport: tr}
	var reps []*bench
	for i := range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(tmp, fmt.Sprint("replica-", i))
		logf, err := os.Create(dir + ".log")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "server", "--listen", addr, "--data-dir", dir, "--database", url, "--log-level", "warn", "--insecure-http")
		cmd.Env = append(os.Environ(), "CUTOVER_ROOT_ACCESS_KEY_ID="+rootKey, "CUTOVER_ROOT_SECRET_ACCESS_KEY="+rootSecret,
			"CUTOVER_SERVER_KEY="+hex.EncodeToString(key), fmt.Sprint("CUTOVER_REPLICA_ID=replica-", i))
		// Dies with the test binary, even one killed by its -timeout.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
		b := &bench{url: "http://" + addr, pid: cmd.Process.Pid, http: hc, bin: bin, tmp: tmp}
		waitHealthy(t, b.url)
		reps = append(reps, b)
	}
	t.Logf("3 replicas on PostgreSQL: pids %d %d %d", reps[0].pid, reps[1].pid, reps[2].pid)
	for i, r := range reps {
		t.Logf("replica-%d before agents: VmRSS %s", i, procStatus(r.pid, "VmRSS"))
	}

	// Registration through the API (a real host key per instance), spread
	// over the replicas; each host then polls the replica after the one
	// that registered it.
	start := time.Now()
	hosts := make([]lightHost, n)
	polls := make([]int, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 48)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := reps[i%3].register(ctx, fmt.Sprint("fleet-", i), nil)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			polls[i] = (i + 1) % 3
			hosts[i] = lightHost{id: c.HostIdentifier(), client: &protocol.Client{Endpoint: reps[polls[i]].url, Region: region,
				Credentials: c.CredentialsProvider(), HTTPClient: hc, AgentVersion: "deploybench"}}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d registrations failed, first: %v", failed.Load(), firstErr.Load())
	}
	t.Logf("registered %d instances (host keys) in %s", n, time.Since(start).Round(time.Millisecond))

	// The agents: long polls; a returned command is reported on got.
	type arrival struct {
		host int
		id   string
		at   time.Time
	}
	got := make(chan arrival, 64)
	lctx, cancel := context.WithCancel(ctx)
	var errs atomic.Int64
	var errMu sync.Mutex
	errKinds := map[string]int{} // error text without addresses -> count
	noteErr := func(err error) {
		if errs.Add(1) <= 5 {
			t.Logf("agent-side error: %v", err)
		}
		msg := err.Error()
		if i := strings.Index(msg, "RequestID"); i >= 0 {
			msg = msg[:i]
		}
		errMu.Lock()
		errKinds[msg]++
		errMu.Unlock()
	}
	logErrs := func() {
		errMu.Lock()
		defer errMu.Unlock()
		for m, c := range errKinds {
			t.Logf("agent-side error x%d: %s", c, m)
		}
	}
	defer logErrs()
	var agents sync.WaitGroup
	for i, h := range hosts {
		if i%100 == 99 {
			// Staggered, as a fleet's agents start: 10,000 dials at once
			// would overflow the replicas' accept backlogs.
			time.Sleep(50 * time.Millisecond)
		}
		agents.Add(1)
		go func() {
			defer agents.Done()
			for lctx.Err() == nil {
				out, err := h.client.PollHostCommand(lctx, &commands.PollHostCommandInput{HostIdentifier: aws.String(h.id)})
				at := time.Now()
				if err != nil {
					if lctx.Err() == nil {
						noteErr(err)
						time.Sleep(time.Second)
					}
					continue
				}
				if c := out.HostCommand; c != nil {
					got <- arrival{i, aws.ToString(c.HostCommandIdentifier), at}
				}
			}
		}()
	}
	defer func() { cancel(); agents.Wait() }()
	settle := 10*time.Second + time.Duration(n)*time.Millisecond
	time.Sleep(settle)
	c0 := make([]int64, 3)
	for i, r := range reps {
		c0[i] = cpuTicks(r.pid)
	}
	t0 := time.Now()
	window := 30 * time.Second
	time.Sleep(window)
	el := time.Since(t0).Seconds()
	for i, r := range reps {
		c := cpuTicks(r.pid) - c0[i]
		t.Logf("IDLE replica-%d with %d agents polling it: CPU %.3f of one core over %.0f s (%d ticks); VmRSS %s; VmHWM %s; open fds %d",
			i, n/3, float64(c)/100/el, el, c, procStatus(r.pid, "VmRSS"), procStatus(r.pid, "VmHWM"), openFDs(r.pid))
	}
	t.Logf("IDLE agent-side errors during the idle phase: %d", errs.Load())

	// Queue → poll returns, across replicas: the command is committed
	// through a store of this process (a replica of its own as far as the
	// database is concerned) while its host polls one of the replicas.
	pst, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	pst.NotifyChanges(deploy.WatchedKinds, nil)
	account := strings.Split(hosts[0].id, ":")[4]
	samples, _ := strconv.Atoi(os.Getenv("CUTOVER_FLEET_SAMPLES"))
	if samples <= 0 {
		samples = 500
	}
	var lat []time.Duration
	for s := range samples {
		i := (s * 7919) % n // spread over hosts, hence over replicas
		id := fmt.Sprintf("bench-%d-%d", s, i)
		queue := account + "/" + region + "/" + hosts[i].id
		rec, err := json.Marshal(map[string]string{"id": id, "deployment": "d-BENCH" + strconv.Itoa(s), "host": hosts[i].id,
			"event": "BeforeInstall", "account": account, "region": region})
		if err != nil {
			t.Fatal(err)
		}
		var committed time.Time
		err = pst.Update(ctx, func(tx store.Tx) error {
			return tx.Put(ctx, hostCmdKind, queue+" d-BENCH"+strconv.Itoa(s), rec)
		})
		committed = time.Now()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-got:
			if a.host != i || a.id != id {
				t.Fatalf("sample %d: host %d got %s, want host %d %s", s, a.host, a.id, i, id)
			}
			lat = append(lat, max(0, a.at.Sub(committed)))
		case <-time.After(10 * time.Second):
			t.Fatalf("sample %d: the command for host %d (polling replica-%d) did not arrive within 10 s", s, i, polls[i])
		}
		time.Sleep(5 * time.Millisecond)
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("WAKE %d samples, %d agents idle-polling 3 replicas, command committed from outside the polled replica → PollHostCommand returned at the agent: mean %s p50 %s p90 %s p99 %s max %s",
		len(lat), n, (sum / time.Duration(len(lat))).Round(time.Microsecond), pct(0.5).Round(time.Microsecond), pct(0.9).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	t.Logf("agent-side errors in total: %d", errs.Load())
}

func waitHealthy(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become healthy", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func openFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}
