package deploy_test

// Shared fixture of the blue/green and seed tests: real in-process agents
// running real hook scripts from an S3 bundle, each host's application a real
// HTTP server on 127.0.0.1:<port> (its cutover:address tag) that answers with
// the host's name while the hooks say it is started, and a real load balancer
// (the builtin router or a real HAProxy) in front of them.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
)

const (
	bgApp    = "bgapp"
	bgGroup  = "bggroup"
	bgTG     = "web"
	bgBucket = "bgbundles"
	// bgHeader names the host that answered through the load balancer.
	bgHeader = "X-Served-By"
	// bgStoppedHeader marks an answer from a host whose application is
	// stopped: the load balancer sent traffic to a dead backend.
	bgStoppedHeader = "X-App-Stopped"
)

// bgHookScript runs for every scriptable event. It logs the event, can be
// held (hold-<event> exists) or failed (fail-<event> exists) by the test,
// and starts/stops the application by removing/creating the stopped marker.
const bgHookScript = `#!/bin/sh
echo "$DEPLOYMENT_ID $LIFECYCLE_EVENT" >> "$STATE_DIR/hooks.log"
touch "$STATE_DIR/at-$LIFECYCLE_EVENT"
while [ -e "$STATE_DIR/hold-$LIFECYCLE_EVENT" ]; do sleep 0.02; done
if [ -e "$STATE_DIR/fail-$LIFECYCLE_EVENT" ]; then echo "failing $LIFECYCLE_EVENT on purpose" >&2; exit 1; fi
case "$LIFECYCLE_EVENT" in
  ApplicationStop) touch "$STATE_DIR/stopped" ;;
  ApplicationStart) rm -f "$STATE_DIR/stopped" ;;
esac
exit 0
`

var bgScripted = []string{"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService",
	"BeforeAllowTraffic", "AfterAllowTraffic", "BeforeBlockTraffic", "AfterBlockTraffic"}

func bgBundle(t testing.TB) []byte {
	t.Helper()
	var spec strings.Builder
	spec.WriteString("version: 0.0\nos: linux\nhooks:\n")
	for _, ev := range bgScripted {
		fmt.Fprintf(&spec, "  %s:\n    - location: scripts/hook.sh\n      timeout: 300\n", ev)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name, body string
		mode       int64
	}{{"appspec.yml", spec.String(), 0o644}, {"scripts/hook.sh", bgHookScript, 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bgHost is one host: its application (a real HTTP server) and its agent.
type bgHost struct {
	Name, Color string
	Addr        string // 127.0.0.1:port, the cutover:address tag
	Dir         string // hook state: hooks.log, stopped, hold-*, at-*, fail-*
	Agent       *servertest.Agent
	served      atomic.Int64
}

func (h *bgHost) stopped() bool {
	_, err := os.Stat(filepath.Join(h.Dir, "stopped"))
	return err == nil
}

func (h *bgHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.stopped() {
		// The application is stopped (ApplicationStop ran, or it was never
		// started): traffic reaching it is a failure the client sees.
		w.Header().Set(bgStoppedHeader, h.Name)
		http.Error(w, "application on "+h.Name+" is stopped", http.StatusServiceUnavailable)
		return
	}
	h.served.Add(1)
	w.Header().Set(bgHeader, h.Name)
	_, _ = io.WriteString(w, h.Name+" "+h.Color+"\n")
}

// startApp starts the host's application server; it starts out stopped.
func bgStartApp(t testing.TB, name, color string) *bgHost {
	t.Helper()
	dir := t.TempDir()
	h := &bgHost{Name: name, Color: color, Dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "stopped"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.Addr = ln.Addr().String()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return h
}

func (h *bgHost) tags() map[string]string {
	m := map[string]string{"color": h.Color, "cutover:address": h.Addr}
	if h.Color == "blue" {
		m["fleet"] = "blue"
	}
	return m
}

func (h *bgHost) file(name string) string { return filepath.Join(h.Dir, name) }

// Hold makes the host's next run of event wait until Release.
func (h *bgHost) Hold(t testing.TB, event string) {
	t.Helper()
	_ = os.Remove(h.file("at-" + event))
	if err := os.WriteFile(h.file("hold-"+event), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Never leave a hook held when the test ends (agents wait for hooks).
	t.Cleanup(func() { h.Release(event) })
}

func (h *bgHost) Release(event string) { _ = os.Remove(h.file("hold-" + event)) }

// WaitAt waits until the host's hook for event is running.
func (h *bgHost) WaitAt(t testing.TB, event string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(h.file("at-" + event)); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never ran %s within %s; hooks: %v", h.Name, event, timeout, h.Hooks(t, ""))
}

// Hooks returns the events the host ran for deployment id ("" = all).
func (h *bgHost) Hooks(t testing.TB, id string) []string {
	t.Helper()
	b, err := os.ReadFile(h.file("hooks.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		d, ev, ok := strings.Cut(l, " ")
		if ok && (id == "" || d == id) {
			out = append(out, ev)
		}
	}
	return out
}

type bgOptions struct {
	driver       string // traffic.DriverBuiltin (default) or traffic.DriverHAProxy
	minute       time.Duration
	readyAction  types.DeploymentReadyAction
	readyWait    int32
	termAction   types.InstanceAction
	termWait     int32
	blue, green  int
	config       string
	noBootstrap  bool
	serverOpts   []servertest.Option
	autoRollback *types.AutoRollbackConfiguration
}

// bgFixture is a server, S3, hosts and a load balancer.
type bgFixture struct {
	Env         *servertest.Env
	S3          *servertest.S3
	Rev         *types.RevisionLocation
	Blue, Green []*bgHost
	LB          string // load balancer listener host:port
	TG          traffic.TargetGroupConfig
}

func bgDefaults(o bgOptions) bgOptions {
	if o.driver == "" {
		o.driver = traffic.DriverBuiltin
	}
	if o.minute == 0 {
		o.minute = time.Second
	}
	if o.readyAction == "" {
		o.readyAction = types.DeploymentReadyActionStopDeployment
	}
	if o.readyWait == 0 {
		o.readyWait = 120
	}
	if o.termAction == "" {
		o.termAction = types.InstanceActionTerminate
	}
	if o.termWait == 0 {
		o.termWait = 120
	}
	if o.blue == 0 {
		o.blue = 2
	}
	if o.green == 0 {
		o.green = 2
	}
	if o.config == "" {
		o.config = "CodeDeployDefault.AllAtOnce"
	}
	return o
}

// newBG starts everything. Unless noBootstrap, it then puts the blue hosts
// into traffic the way a user would: a first blue/green deployment to them
// (the group had no instances in traffic yet), continued through its Ready
// wait, so that the group's traffic is on blue.
func newBG(t *testing.T, o bgOptions) *bgFixture {
	t.Helper()
	o = bgDefaults(o)
	f := bgPrepare(t, o)
	if o.driver == traffic.DriverHAProxy {
		f.TG.HAProxy.Socket = haproxytest.StartHAProxy(t, []traffic.TargetGroupConfig{f.TG.WithDefaults()})
	}
	opts := append([]servertest.Option{func(c *server.Config) {
		c.Minute = o.minute
		c.TargetGroups = append(c.TargetGroups, f.TG)
	}}, o.serverOpts...)
	f.Env = servertest.Start(t, opts...)
	bgFinish(t, f, o)
	return f
}

// bgPrepare starts S3 with the revision and picks the target group.
func bgPrepare(t *testing.T, o bgOptions) *bgFixture {
	t.Helper()
	f := &bgFixture{}
	f.S3 = servertest.StartS3(t, bgBucket)
	etag, ver := f.S3.Put(t, bgBucket, "app.tar", bgBundle(t))
	f.Rev = &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
		Bucket: aws.String(bgBucket), Key: aws.String("app.tar"), BundleType: types.BundleTypeTar, ETag: aws.String(etag), Version: aws.String(ver)}}
	f.TG = traffic.TargetGroupConfig{
		Name: bgTG, Driver: o.driver, Listen: haproxytest.FreeAddr(t), Mode: traffic.ModeHTTP, Port: 1,
		HealthCheck:         traffic.HealthCheck{Path: "/", Interval: 50 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2},
		DeregistrationDelay: 2 * time.Second,
	}
	f.LB = f.TG.Listen
	return f
}

// bgFinish starts the hosts and the group against f.Env, then bootstraps.
func bgFinish(t *testing.T, f *bgFixture, o bgOptions) {
	t.Helper()
	for i := range o.blue {
		f.Blue = append(f.Blue, f.startHost(t, fmt.Sprintf("blue-%d", i+1), "blue"))
	}
	for i := range o.green {
		f.Green = append(f.Green, f.startHost(t, fmt.Sprintf("green-%d", i+1), "green"))
	}
	f.Env.SetupGroup(t, bgApp, bgGroup, o.config, "fleet", "blue", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithTrafficControl}
		in.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String(bgTG)}}}
		in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{
			DeploymentReadyOption:                     &types.DeploymentReadyOption{ActionOnTimeout: o.readyAction, WaitTimeInMinutes: o.readyWait},
			TerminateBlueInstancesOnDeploymentSuccess: &types.BlueInstanceTerminationOption{Action: o.termAction, TerminationWaitTimeInMinutes: o.termWait},
			GreenFleetProvisioningOption:              &types.GreenFleetProvisioningOption{Action: types.GreenFleetProvisioningActionDiscoverExisting},
		}
		in.AutoRollbackConfiguration = o.autoRollback
	})
	if !o.noBootstrap {
		f.Bootstrap(t)
	}
}

func (f *bgFixture) startHost(t *testing.T, name, color string) *bgHost {
	t.Helper()
	h := bgStartApp(t, name, color)
	h.Agent = f.Env.StartAgent(t, name, h.tags(), f.S3.URL, servertest.WithEnviron("STATE_DIR="+h.Dir, "PORT="+h.Addr[strings.LastIndex(h.Addr, ":")+1:]))
	return h
}

// Bootstrap deploys to the blue hosts and puts them into traffic.
func (f *bgFixture) Bootstrap(t *testing.T) {
	t.Helper()
	id := f.Deploy(t, "blue")
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status == types.DeploymentStatusReady {
		f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	}
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("bootstrap deployment %s: %s %+v", id, info.Status, bgErr(info))
	}
	f.WaitServing(t, f.Blue, 10*time.Second)
}

// Deploy creates a blue/green deployment whose replacement instances are
// the hosts of color.
func (f *bgFixture) Deploy(t testing.TB, color string, mutate ...func(*codedeploy.CreateDeploymentInput)) string {
	t.Helper()
	in := &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String(bgApp), DeploymentGroupName: aws.String(bgGroup), Revision: f.Rev,
		TargetInstances: &types.TargetInstances{TagFilters: []types.EC2TagFilter{{Key: aws.String("color"), Value: aws.String(color), Type: types.EC2TagFilterTypeKeyAndValue}}},
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := f.Env.Client.CreateDeployment(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	return aws.ToString(out.DeploymentId)
}

func (f *bgFixture) Continue(t testing.TB, id string, wait types.DeploymentWaitType) {
	t.Helper()
	if _, err := f.Env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: wait}); err != nil {
		t.Fatalf("ContinueDeployment(%s, %s): %v", id, wait, err)
	}
}

func (f *bgFixture) Stop(t testing.TB, id string, rollback *bool) *codedeploy.StopDeploymentOutput {
	t.Helper()
	out, err := f.Env.Client.StopDeployment(context.Background(), &codedeploy.StopDeploymentInput{DeploymentId: &id, AutoRollbackEnabled: rollback})
	if err != nil {
		t.Fatalf("StopDeployment(%s): %v", id, err)
	}
	return out
}

func (f *bgFixture) Get(t testing.TB, id string) *types.DeploymentInfo {
	t.Helper()
	out, err := f.Env.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: &id})
	if err != nil {
		t.Fatal(err)
	}
	return out.DeploymentInfo
}

// WaitDone waits for a terminal status and checks it.
func (f *bgFixture) WaitDone(t testing.TB, id string, want types.DeploymentStatus) *types.DeploymentInfo {
	t.Helper()
	info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped)
	if info.Status != want {
		t.Fatalf("deployment %s ended %s (%s), want %s; messages %q", id, info.Status, bgErr(info), want, info.DeploymentStatusMessages)
	}
	return info
}

// WaitTerminationWait waits until the deployment waits to terminate the
// original instances.
func (f *bgFixture) WaitTerminationWait(t testing.TB, id string) *types.DeploymentInfo {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info := f.Get(t, id)
		if info.InstanceTerminationWaitTimeStarted {
			return info
		}
		if info.Status == types.DeploymentStatusSucceeded || info.Status == types.DeploymentStatusFailed || info.Status == types.DeploymentStatusStopped {
			t.Fatalf("deployment %s ended %s (%s) before its termination wait", id, info.Status, bgErr(info))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("deployment %s never reached its termination wait", id)
	return nil
}

// Targets returns the deployment's targets by name.
func (f *bgFixture) Targets(t testing.TB, id string) map[string]*types.InstanceTarget {
	t.Helper()
	ctx := context.Background()
	var ids []string
	var tok *string
	for {
		out, err := f.Env.Client.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: &id, NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.TargetIds...)
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	out, err := f.Env.Client.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: &id, TargetIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*types.InstanceTarget{}
	for _, tg := range out.DeploymentTargets {
		if it := tg.InstanceTarget; it != nil {
			m[aws.ToString(it.TargetId)] = it
		}
	}
	return m
}

// Serving returns the names of the target group's serving members, as the
// router reports them.
func (f *bgFixture) Serving(t testing.TB) []string {
	t.Helper()
	if f.Env.Server == nil {
		t.Fatal("Serving needs an in-process server")
	}
	ms, err := f.Env.Server.Traffic.Members(context.Background(), bgTG)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if m.State == traffic.StateServing {
			out = append(out, m.ID)
		}
	}
	sort.Strings(out)
	return out
}

func bgNames(hs []*bgHost) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}

// WaitServing waits until exactly hosts serve the target group and then
// checks that new requests through the load balancer reach only them.
func (f *bgFixture) WaitServing(t testing.TB, hosts []*bgHost, timeout time.Duration) {
	t.Helper()
	want := bgNames(hosts)
	deadline := time.Now().Add(timeout)
	var got []string
	if f.Env.Server == nil { // a server in another process: ask the listener
		for time.Now().Before(deadline) && !f.answersOnly(hosts, 40) {
			time.Sleep(20 * time.Millisecond)
		}
		f.ExpectOnly(t, hosts, 40)
		return
	}
	for time.Now().Before(deadline) {
		if got = f.Serving(t); slices.Equal(got, want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("serving members %v, want %v", got, want)
	}
	f.ExpectOnly(t, hosts, 40)
}

// ExpectOnly sends n fresh requests through the load balancer and checks
// each is answered by one of hosts.
func (f *bgFixture) ExpectOnly(t testing.TB, hosts []*bgHost, n int) {
	t.Helper()
	want := bgNames(hosts)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		resp, err := c.Get("http://" + f.LB + "/")
		if err != nil {
			t.Fatalf("request through load balancer: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		by := resp.Header.Get(bgHeader)
		if resp.StatusCode != 200 || !slices.Contains(want, by) {
			t.Fatalf("request answered %d by %q, want one of %v", resp.StatusCode, by, want)
		}
	}
}

// answersOnly reports whether n fresh requests were all answered by hosts.
func (f *bgFixture) answersOnly(hosts []*bgHost, n int) bool {
	want := bgNames(hosts)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		resp, err := c.Get("http://" + f.LB + "/")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !slices.Contains(want, resp.Header.Get(bgHeader)) {
			return false
		}
	}
	return true
}

func bgErr(info *types.DeploymentInfo) string {
	if info == nil || info.ErrorInformation == nil {
		return ""
	}
	return string(info.ErrorInformation.Code) + ": " + aws.ToString(info.ErrorInformation.Message)
}

// bgHammer is a set of keep-alive clients sending requests through the load
// balancer until stopped, recording who answered and every failure.
type bgHammer struct {
	url   string
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	by    map[string]int64
	fails []string
	nfail atomic.Int64
	ok    atomic.Int64
	dead  atomic.Int64 // answers from a host whose application was stopped
}

func bgStartHammer(t testing.TB, lb string, clients int) *bgHammer {
	h := &bgHammer{url: "http://" + lb + "/", stop: make(chan struct{}), by: map[string]int64{}}
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for range clients {
		h.wg.Go(func() {
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				resp, err := client.Get(h.url)
				if err != nil {
					h.fail(err.Error())
					time.Sleep(5 * time.Millisecond) // e.g. the listener is down: do not spin
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				by := resp.Header.Get(bgHeader)
				if resp.Header.Get(bgStoppedHeader) != "" {
					h.dead.Add(1)
				}
				if err != nil || resp.StatusCode != 200 || by == "" {
					h.fail(fmt.Sprintf("HTTP %d from %q (%v)", resp.StatusCode, by, err))
					continue
				}
				h.ok.Add(1)
				h.mu.Lock()
				h.by[by]++
				h.mu.Unlock()
			}
		})
	}
	t.Cleanup(func() { h.Stop(); tr.CloseIdleConnections() })
	return h
}

func (h *bgHammer) fail(msg string) {
	h.nfail.Add(1)
	h.mu.Lock()
	if len(h.fails) < 10 {
		h.fails = append(h.fails, time.Now().Format("15:04:05.000")+" "+msg)
	}
	h.mu.Unlock()
}

// Stop ends the load (idempotent).
func (h *bgHammer) Stop() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
}

// Reset clears the per-host counts.
func (h *bgHammer) Reset() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.by
	h.by = map[string]int64{}
	return old
}

// Counts returns the per-host counts since the last Reset.
func (h *bgHammer) Counts() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int64{}
	for k, v := range h.by {
		out[k] = v
	}
	return out
}

// CheckNoFailures fails the test if any request failed.
func (h *bgHammer) CheckNoFailures(t testing.TB) {
	t.Helper()
	if n := h.nfail.Load(); n > 0 {
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Errorf("%d of %d requests through the load balancer failed; first: %q", n, n+h.ok.Load(), h.fails)
	}
	if h.ok.Load() == 0 {
		t.Errorf("the load generator got no answer at all")
	}
}

// onlyTo checks that, over window, the hammer's requests reached only hosts.
func (h *bgHammer) onlyTo(t testing.TB, hosts []*bgHost, window time.Duration) {
	t.Helper()
	h.Reset()
	time.Sleep(window)
	got := h.Counts()
	want := bgNames(hosts)
	var total int64
	for name, n := range got {
		total += n
		if !slices.Contains(want, name) {
			t.Errorf("%d requests reached %s, want only %v (counts %v)", n, name, want, got)
		}
	}
	if total == 0 {
		t.Errorf("no requests were served within %s", window)
	}
}

// bgCLI runs the AWS CLI against the fixture's server.
func bgCLI(t testing.TB, env *servertest.Env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("SKIPPING aws-cli checks: the aws command is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", args...)
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL="+env.URL, "AWS_ACCESS_KEY_ID="+env.AccessKey, "AWS_SECRET_ACCESS_KEY="+env.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("aws %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

var bgCLIVersion = sync.OnceValue(func() string {
	out, _ := exec.Command("aws", "--version").CombinedOutput()
	return strings.TrimSpace(string(out))
})

// bgCLIServiceErrorRC is the exit code the installed AWS CLI uses when the
// service answered with an error: 254 for aws-cli v2, while aws-cli v1
// (clidriver.py) exits 255 for every error.
func bgCLIServiceErrorRC() int {
	if strings.HasPrefix(bgCLIVersion(), "aws-cli/1.") {
		return 255
	}
	return 254
}

// bgCLIWantError checks that the CLI failed with the service exception.
func bgCLIWantError(t testing.TB, env *servertest.Env, exception string, args ...string) {
	t.Helper()
	out, errOut, code := bgCLI(t, env, args...)
	want := bgCLIServiceErrorRC()
	if code != want || !strings.Contains(errOut, "("+exception+")") {
		t.Fatalf("aws %s: exit %d, want %d (%s) with %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, bgCLIVersion(), exception, out, errOut)
	}
}
