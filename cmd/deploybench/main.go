// Command deploybench measures Cutover's deployment path end to end, with a
// real `cutover server` process (SQLite), agents speaking the real command
// protocol over loopback with SigV4, and bundles in an S3-compatible server:
//
//	(a) one instance, in-place, every hook present and doing nothing: wall
//	    time from CreateDeployment to Succeeded (median of -runs), with the
//	    same deployment of a hook-less inline appspec as the baseline;
//	(b) -agents lightweight in-process agents (Poll → GetDeploymentSpecification
//	    → Ack → Complete Succeeded) in one AllAtOnce deployment: wall time
//	    and the server's peak RSS (VmHWM);
//	(c) -idle idle long-polling agents: server CPU (fraction of one core over
//	    -idle-for, from /proc/<pid>/stat) and RSS;
//	(d) the RSS of an idle `cutover agent` process.
//
//	go run ./cmd/deploybench
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/logging"
	"github.com/cutoverhq/cutover/internal/model/commands"
)

const (
	rootKey    = "AKIABENCHROOT0000001"
	rootSecret = "bench-root-secret-key-00000000000000000"
	region     = "us-east-1"
	bucket     = "bench"
)

type bench struct {
	url    string
	pid    int
	client *codedeploy.Client
	http   *http.Client
	s3url  string
	s3     *s3.Client
	bin    string
	tmp    string
}

func main() {
	bin := flag.String("cutover", "", "cutover binary (default: go build ./cmd/cutover into a temporary directory)")
	runs := flag.Int("runs", 10, "(a) deployments to take the median of")
	nAgents := flag.Int("agents", 1000, "(b) lightweight agents in one deployment")
	nIdle := flag.Int("idle", 5000, "(c) idle long-polling agents")
	idleFor := flag.Duration("idle-for", 20*time.Second, "(c) CPU measuring window")
	only := flag.String("only", "abcd", "which benchmarks to run")
	flag.Parse()
	if err := run(*bin, *runs, *nAgents, *nIdle, *idleFor, *only); err != nil {
		fmt.Fprintln(os.Stderr, "deploybench:", err)
		os.Exit(1)
	}
}

func run(bin string, runs, nAgents, nIdle int, idleFor time.Duration, only string) error {
	tmp, err := os.MkdirTemp("", "deploybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		if bin, err = build(tmp); err != nil {
			return err
		}
	}
	ctx := context.Background()
	b := &bench{bin: bin, tmp: tmp}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 10000
	tr.ResponseHeaderTimeout = protocol.ReadTimeout
	b.http = &http.Client{Transport: tr}
	stop, err := b.startServer()
	if err != nil {
		return err
	}
	defer stop()
	if err := b.startS3(); err != nil {
		return err
	}
	fmt.Printf("server pid %d at %s (SQLite), cutover binary %s\n\n", b.pid, b.url, bin)

	if strings.Contains(only, "a") {
		if err := b.single(ctx, runs); err != nil {
			return fmt.Errorf("(a): %w", err)
		}
	}
	var hosts []lightHost
	if strings.Contains(only, "b") {
		if hosts, err = b.fleet(ctx, nAgents); err != nil {
			return fmt.Errorf("(b): %w", err)
		}
	}
	if strings.Contains(only, "c") {
		if err := b.idle(ctx, hosts, nIdle, idleFor); err != nil {
			return fmt.Errorf("(c): %w", err)
		}
	}
	if strings.Contains(only, "d") {
		if err := b.agentRSS(ctx); err != nil {
			return fmt.Errorf("(d): %w", err)
		}
	}
	return nil
}

func build(tmp string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(tmp, "cutover")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cutover")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (b *bench) startServer() (func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(b.tmp, "data")
	logf, err := os.Create(filepath.Join(b.tmp, "server.log"))
	if err != nil {
		return nil, err
	}
	// Loopback, and the figures compare with earlier plain-HTTP runs.
	cmd := exec.Command(b.bin, "server", "--listen", addr, "--data-dir", data, "--log-level", "warn", "--insecure-http")
	cmd.Env = append(os.Environ(), "CUTOVER_ROOT_ACCESS_KEY_ID="+rootKey, "CUTOVER_ROOT_SECRET_ACCESS_KEY="+rootSecret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	}
	b.url, b.pid = "http://"+addr, cmd.Process.Pid
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(b.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("server did not become healthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.client = codedeploy.New(codedeploy.Options{Region: region, BaseEndpoint: aws.String(b.url),
		Credentials: credentials.NewStaticCredentialsProvider(rootKey, rootSecret, ""), HTTPClient: b.http})
	return stop, nil
}

func (b *bench) startS3() error {
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Benchmark figures only: the endpoint's own chatter is discarded
	// rather than printed by the standard log package.
	quiet := slog.New(slog.DiscardHandler)
	srv := &http.Server{Handler: gofakes3.New(backend, gofakes3.WithLogger(logging.S3(quiet))).Server(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: logging.StdLogger(quiet, slog.LevelError)}
	go func() { _ = srv.Serve(ln) }()
	b.s3url = "http://" + ln.Addr().String()
	b.s3 = s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(b.s3url), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
	_, err = b.s3.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	return err
}

func (b *bench) register(ctx context.Context, name string, tags map[string]string) (agent.OnPremConfig, error) {
	return agent.Register(ctx, agent.RegisterRequest{Endpoint: b.url, Region: region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(rootKey, rootSecret, ""),
		InstanceName:     name, Tags: tags, HTTPClient: b.http})
}

func (b *bench) group(ctx context.Context, app, group, config, tag string) error {
	_, err := b.client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(app)})
	if err != nil && !strings.Contains(err.Error(), "ApplicationAlreadyExists") {
		return err
	}
	_, err = b.client.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group),
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/bench"),
		DeploymentConfigName:         aws.String(config),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("bench"), Value: aws.String(tag), Type: types.TagFilterTypeKeyAndValue}},
	})
	return err
}

// deploy creates a deployment and polls until it is terminal.
func (b *bench) deploy(ctx context.Context, app, group string, rev *types.RevisionLocation, poll time.Duration) (time.Duration, *types.DeploymentInfo, error) {
	start := time.Now()
	out, err := b.client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group), Revision: rev})
	if err != nil {
		return 0, nil, err
	}
	for {
		g, err := b.client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: out.DeploymentId})
		if err != nil {
			return 0, nil, err
		}
		switch g.DeploymentInfo.Status {
		case types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped:
			return time.Since(start), g.DeploymentInfo, nil
		}
		time.Sleep(poll)
	}
}

func tgz(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	err := gz.Close()
	return buf.Bytes(), err
}

// single is benchmark (a).
func (b *bench) single(ctx context.Context, runs int) error {
	c, err := b.register(ctx, "solo-1", map[string]string{"bench": "a"})
	if err != nil {
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(actx, agent.Config{Endpoint: b.url, Region: region, Credentials: c.CredentialsProvider(), HostIdentifier: c.HostIdentifier(),
			RootDir: filepath.Join(b.tmp, "solo-root"), S3Endpoint: b.s3url, S3PathStyle: true,
			Logger: slog.New(slog.DiscardHandler)})
	}()
	defer func() { cancel(); <-done }()
	if err := b.group(ctx, "a", "solo", "CodeDeployDefault.OneAtATime", "a"); err != nil {
		return err
	}
	files := map[string]string{}
	var spec strings.Builder
	spec.WriteString("version: 0.0\nos: linux\nhooks:\n")
	for _, h := range []string{"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"} {
		fmt.Fprintf(&spec, "  %s:\n    - location: hooks/%s.sh\n", h, h)
		files["hooks/"+h+".sh"] = "#!/bin/sh\nexit 0\n"
	}
	files["appspec.yml"] = spec.String()
	data, err := tgz(files)
	if err != nil {
		return err
	}
	put, err := b.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a.tgz"), Body: bytes.NewReader(data)})
	if err != nil {
		return err
	}
	hooks := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{Bucket: aws.String(bucket), Key: aws.String("a.tgz"),
		BundleType: types.BundleTypeTarGZip, ETag: aws.String(strings.Trim(aws.ToString(put.ETag), `"`)), Version: put.VersionId}}
	inline := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}
	measure := func(rev *types.RevisionLocation) ([]time.Duration, error) {
		var ds []time.Duration
		for i := 0; i <= runs; i++ { // the first run warms up
			d, info, err := b.deploy(ctx, "a", "solo", rev, 2*time.Millisecond)
			if err != nil {
				return nil, err
			}
			if info.Status != types.DeploymentStatusSucceeded {
				return nil, fmt.Errorf("deployment ended %s: %+v", info.Status, info.ErrorInformation)
			}
			if i > 0 {
				ds = append(ds, d)
			}
		}
		slices.Sort(ds)
		return ds, nil
	}
	base, err := measure(inline)
	if err != nil {
		return err
	}
	withHooks, err := measure(hooks)
	if err != nil {
		return err
	}
	mb, mh := base[len(base)/2], withHooks[len(withHooks)/2]
	fmt.Printf("(a) one instance, in-place, CreateDeployment → Succeeded, median of %d (target < 1 s)\n", runs)
	fmt.Printf("    S3 tgz bundle, 5 no-op hooks:   median %v  min %v  max %v\n", mh.Round(time.Millisecond), withHooks[0].Round(time.Millisecond), withHooks[len(withHooks)-1].Round(time.Millisecond))
	fmt.Printf("    baseline inline appspec, no hooks: median %v  min %v  max %v\n", mb.Round(time.Millisecond), base[0].Round(time.Millisecond), base[len(base)-1].Round(time.Millisecond))
	fmt.Printf("    ratio hooks/baseline: %.2f\n\n", float64(mh)/float64(mb))
	return nil
}

// lightHost is a registered instance driven by a minimal agent loop.
type lightHost struct {
	id     string
	client *protocol.Client
}

// light runs the minimal agent loop until ctx ends; done counts Completes.
func light(ctx context.Context, h lightHost, done, errs *atomic.Int64, ph *phases) {
	var last time.Time // when this agent's previous Complete returned
	for ctx.Err() == nil {
		out, err := h.client.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: aws.String(h.id)})
		if err != nil {
			if ctx.Err() == nil {
				errs.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		hc := out.HostCommand
		if hc == nil {
			continue
		}
		t1 := time.Now()
		if !last.IsZero() {
			ph.add(phaseNext, t1.Sub(last))
		}
		if _, err := h.client.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{DeploymentExecutionId: hc.DeploymentExecutionId, HostIdentifier: aws.String(h.id)}); err != nil {
			errs.Add(1)
			continue
		}
		t2 := time.Now()
		ack, err := h.client.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: hc.HostCommandIdentifier,
			Diagnostics: &commands.Envelope{Format: aws.String("JSON"), Payload: aws.String(`{"IsCommandNoop":false}`)}})
		if err != nil {
			errs.Add(1)
			continue
		}
		if aws.ToString(ack.CommandStatus) != commands.DeploymentCommandStatusInProgress {
			continue
		}
		t3 := time.Now()
		if err := h.client.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{HostCommandIdentifier: hc.HostCommandIdentifier,
			CommandStatus: aws.String(commands.DeploymentCommandStatusSucceeded),
			Diagnostics:   &commands.Envelope{Format: aws.String("JSON"), Payload: aws.String(`{"error_code":0,"script_name":"","message":"Succeeded","log":""}`)}}); err != nil {
			errs.Add(1)
			continue
		}
		last = time.Now()
		ph.add(phaseSpec, t2.Sub(t1))
		ph.add(phaseAck, t3.Sub(t2))
		ph.add(phaseComplete, last.Sub(t3))
		done.Add(1)
	}
}

// Phases of one command as an agent sees it.
const (
	phaseNext     = iota // its previous Complete returned → PollHostCommand returned this command
	phaseSpec            // GetDeploymentSpecification
	phaseAck             // PutHostCommandAcknowledgement
	phaseComplete        // PutHostCommandComplete
	nPhases
)

var phaseNames = [nPhases]string{"previous Complete → next command polled", "GetDeploymentSpecification", "PutHostCommandAcknowledgement", "PutHostCommandComplete"}

// phases collects the agents' per-phase latencies.
type phases struct {
	mu sync.Mutex
	d  [nPhases][]time.Duration
}

func (p *phases) add(i int, d time.Duration) {
	p.mu.Lock()
	p.d[i] = append(p.d[i], d)
	p.mu.Unlock()
}

func (p *phases) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, ds := range p.d {
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		q := func(f float64) time.Duration { return ds[int(f*float64(len(ds)-1))].Round(time.Millisecond) }
		fmt.Printf("    %s: %d samples, mean %v, p50 %v, p90 %v, p99 %v, max %v\n", phaseNames[i], len(ds),
			(sum / time.Duration(len(ds))).Round(time.Millisecond), q(0.5), q(0.9), q(0.99), q(1))
	}
}

// registerMany registers n instances name-<i> tagged bench=tag.
func (b *bench) registerMany(ctx context.Context, prefix string, from, n int, tag string) ([]lightHost, time.Duration, error) {
	start := time.Now()
	hosts := make([]lightHost, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := b.register(ctx, fmt.Sprintf("%s-%d", prefix, from+i), map[string]string{"bench": tag})
			if err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
				return
			}
			hosts[i] = lightHost{id: c.HostIdentifier(), client: &protocol.Client{Endpoint: b.url, Region: region, Credentials: c.CredentialsProvider(), HTTPClient: b.http, AgentVersion: "deploybench"}}
		}()
	}
	wg.Wait()
	return hosts, time.Since(start), first
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fleet is benchmark (b).
func (b *bench) fleet(ctx context.Context, n int) ([]lightHost, error) {
	hosts, took, err := b.registerMany(ctx, "fleet", 0, n, "b")
	if err != nil {
		return nil, err
	}
	fmt.Printf("(b) registered %d instances in %v\n", n, took.Round(time.Millisecond))
	if err := b.group(ctx, "b", "fleet", "CodeDeployDefault.AllAtOnce", "b"); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	var done, errs atomic.Int64
	var wg sync.WaitGroup
	var ph phases
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); light(lctx, h, &done, &errs, &ph) }()
	}
	time.Sleep(2 * time.Second) // let every agent reach its long poll
	hwmBefore := procStatus(b.pid, "VmHWM")
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}
	srv0, self0 := cpuTicks(b.pid), cpuTicks(os.Getpid())
	d, info, err := b.deploy(ctx, "b", "fleet", rev, 20*time.Millisecond)
	srv1, self1 := cpuTicks(b.pid), cpuTicks(os.Getpid())
	cancel()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	o := info.DeploymentOverview
	fmt.Printf("(b) %d lightweight agents, one AllAtOnce deployment (7 events each): %s in %v (target < 15 s)\n", n, info.Status, d.Round(time.Millisecond))
	fmt.Printf("    overview Succeeded=%d Failed=%d Skipped=%d; %d commands completed (%.0f/s), %d agent-side errors\n", o.Succeeded, o.Failed, o.Skipped, done.Load(), float64(done.Load())/d.Seconds(), errs.Load())
	fmt.Printf("    CPU during the deployment: server %.1f s (%.2f cores), bench process (agents, SigV4, client) %.1f s (%.2f cores)\n",
		float64(srv1-srv0)/100, float64(srv1-srv0)/100/d.Seconds(), float64(self1-self0)/100, float64(self1-self0)/100/d.Seconds())
	fmt.Printf("    server VmHWM before the deployment %s, after %s; VmRSS now %s (target peak < 300 MB)\n", hwmBefore, procStatus(b.pid, "VmHWM"), procStatus(b.pid, "VmRSS"))
	ph.print()
	fmt.Println()
	return hosts, nil
}

// idle is benchmark (c).
func (b *bench) idle(ctx context.Context, hosts []lightHost, n int, window time.Duration) error {
	if len(hosts) < n {
		more, took, err := b.registerMany(ctx, "idle", len(hosts), n-len(hosts), "c")
		if err != nil {
			return err
		}
		fmt.Printf("(c) registered %d more instances in %v\n", len(more), took.Round(time.Millisecond))
		hosts = append(hosts, more...)
	}
	hosts = hosts[:n]
	lctx, cancel := context.WithCancel(ctx)
	var done, errs atomic.Int64
	var wg sync.WaitGroup
	var ph phases
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); light(lctx, h, &done, &errs, &ph) }()
	}
	time.Sleep(5 * time.Second) // every agent connected and parked in its long poll
	rssBefore := procStatus(b.pid, "VmRSS")
	t0, c0 := time.Now(), cpuTicks(b.pid)
	time.Sleep(window)
	t1, c1 := time.Now(), cpuTicks(b.pid)
	rss := procStatus(b.pid, "VmRSS")
	cancel()
	wg.Wait()
	const clkTck = 100 // USER_HZ on Linux
	frac := float64(c1-c0) / clkTck / t1.Sub(t0).Seconds()
	fmt.Printf("(c) %d idle long-polling agents (server poll wait 40 s): server CPU %.4f of one core over %v (%d ticks); VmRSS %s at start, %s at end; VmHWM %s; %d agent-side errors\n\n",
		n, frac, t1.Sub(t0).Round(time.Millisecond), c1-c0, rssBefore, rss, procStatus(b.pid, "VmHWM"), errs.Load())
	return nil
}

// agentRSS is benchmark (d).
func (b *bench) agentRSS(ctx context.Context) error {
	c, err := b.register(ctx, "idle-agent", map[string]string{"bench": "d"})
	if err != nil {
		return err
	}
	conf := filepath.Join(b.tmp, "onprem.yml")
	if err := agent.WriteOnPremConfig(conf, c); err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "agent", "--onprem-config", conf, "--root-dir", filepath.Join(b.tmp, "idle-root"), "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(5 * time.Second)
	fmt.Printf("(d) idle `cutover agent` process: VmRSS %s, VmHWM %s (target < 20 MB)\n", procStatus(cmd.Process.Pid, "VmRSS"), procStatus(cmd.Process.Pid, "VmHWM"))
	return nil
}

func procStatus(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.Atoi(f[0])
				return fmt.Sprintf("%.1f MB", float64(kb)/1024)
			}
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name (which is in parentheses).
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}
