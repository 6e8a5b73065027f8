package alarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

const pollInterval = 500 * time.Millisecond

// exporter is the application's metrics endpoint: one gauge the test sets.
type exporter struct {
	srv   *httptest.Server
	gauge prometheus.Gauge
}

func newExporter(t *testing.T) *exporter {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "app_errors", Help: "Errors the test reports."})
	reg.MustRegister(g)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return &exporter{srv: srv, gauge: g}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPrometheus runs the Debian prometheus binary scraping target every
// 200 ms, with its storage in a temporary directory.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (scripts/test installs the Debian package)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['%s']
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	u := "http://" + addr
	// Ready once the target has been scraped: the series exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, err := query(u, "app_errors"); err == nil && n > 0 {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus never scraped the exporter")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// query returns how many series an instant query returns.
func query(base, q string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Data   struct{ Result []json.RawMessage }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("query status %s", out.Status)
	}
	return len(out.Data.Result), nil
}

// waitHook blocks until $RELEASE/<name> exists; it touches $RELEASE/<name>.started first.
func waitHook(name string) string {
	return fmt.Sprintf("touch \"$RELEASE/%s.started\"\ni=0\nwhile [ ! -f \"$RELEASE/%s\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n", name, name)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	env     *servertest.Env
	s3      *servertest.S3
	release string
	n       int
}

func (f *fixture) deploy(t *testing.T, group string, hooks map[string]string) string {
	t.Helper()
	f.n++
	rev := f.s3.UploadRevision(t, "bundles", fmt.Sprintf("rev%d.tgz", f.n), servertest.HookBundle(t, hooks))
	out, err := f.env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String(group), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.DeploymentId)
}

func alarmGroup(names []string, ignore bool, rollback bool) func(*codedeploy.CreateDeploymentGroupInput) {
	return func(in *codedeploy.CreateDeploymentGroupInput) {
		var as []cdtypes.Alarm
		for _, n := range names {
			as = append(as, cdtypes.Alarm{Name: aws.String(n)})
		}
		in.AlarmConfiguration = &cdtypes.AlarmConfiguration{Enabled: true, IgnorePollAlarmFailure: ignore, Alarms: as}
		if rollback {
			in.AutoRollbackConfiguration = &cdtypes.AutoRollbackConfiguration{Enabled: true,
				Events: []cdtypes.AutoRollbackEvent{cdtypes.AutoRollbackEventDeploymentStopOnAlarm}}
		}
	}
}

// TestAlarmStopsDeployment: a real Prometheus scrapes an exporter whose
// gauge the test raises during a deployment; the alarm defined as a query
// on it stops the deployment with ALARM_ACTIVE, and the group's
// DEPLOYMENT_STOP_ON_ALARM rolls it back. An unreachable alarm stops or
// not as ignorePollAlarmFailure says.
func TestAlarmStopsDeployment(t *testing.T) {
	exp := newExporter(t)
	prom := startPrometheus(t, strings.TrimPrefix(exp.srv.URL, "http://"))
	closed := freePort(t) // nothing listens there
	alarms := filepath.Join(t.TempDir(), "alarms.yaml")
	cfg := fmt.Sprintf("prometheusUrl: %s\npollInterval: %s\nalarms:\n  - name: app-errors\n    prometheus: 'app_errors > 0'\n  - name: unreachable\n    http: http://%s/healthz\n", prom, pollInterval, closed)
	if err := os.WriteFile(alarms, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, func(c *server.Config) { c.AlarmsConfig = alarms })
	f := &fixture{env: env, s3: servertest.StartS3(t, "bundles"), release: t.TempDir()}
	env.StartAgent(t, "web-1", map[string]string{"role": "web"}, f.s3.URL, servertest.WithEnviron("RELEASE="+f.release))
	ctx := context.Background()

	// Unknown alarm names are refused, and nothing is created.
	env.SetupGroup(t, "app", "seed", "", "role", "none")
	_, err := env.Client.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("bad"),
		ServiceRoleArn:     aws.String("arn:aws:iam::000000000000:role/cutover"),
		AlarmConfiguration: &cdtypes.AlarmConfiguration{Enabled: true, Alarms: []cdtypes.Alarm{{Name: aws.String("nope")}}},
	})
	servertest.WantError(t, err, "InvalidAlarmConfigException")
	_, err = env.Client.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("bad")})
	servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")

	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", alarmGroup([]string{"app-errors"}, false, true))
	_, err = env.Client.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName: aws.String("app"), CurrentDeploymentGroupName: aws.String("web"),
		AlarmConfiguration: &cdtypes.AlarmConfiguration{Enabled: true, Alarms: []cdtypes.Alarm{{Name: aws.String("nope")}}},
	})
	servertest.WantError(t, err, "InvalidAlarmConfigException")
	_, err = env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"),
		Revision:                   f.s3.UploadRevision(t, "bundles", "unused.tgz", servertest.HookBundle(t, nil)),
		OverrideAlarmConfiguration: &cdtypes.AlarmConfiguration{Enabled: true, Alarms: []cdtypes.Alarm{{Name: aws.String("nope")}}},
	})
	servertest.WantError(t, err, "InvalidAlarmConfigException")

	// A quiet alarm lets a deployment through (it lasts over 2 polls).
	v1 := f.deploy(t, "web", map[string]string{"AfterInstall": "sleep 1.2\n"})
	if info := env.WaitStatus(t, v1, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped); info.Status != cdtypes.DeploymentStatusSucceeded {
		t.Fatalf("v1 %s %+v", info.Status, info.ErrorInformation)
	}

	// v2 blocks in BeforeInstall; the gauge goes up.
	v2 := f.deploy(t, "web", map[string]string{"BeforeInstall": waitHook("v2")})
	waitFile(t, filepath.Join(f.release, "v2.started"))
	exp.gauge.Set(3)
	var firing time.Time
	for deadline := time.Now().Add(10 * time.Second); ; {
		if n, err := query(prom, "app_errors > 0"); err == nil && n > 0 {
			firing = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the alarm query never fired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The stop is recorded (ALARM_ACTIVE shows) while the hook runs; the
	// hook is then released, so Stopped follows at once: the figure is the
	// alarm path's, not the hook's.
	decided := waitAlarmActive(t, env, v2).Sub(firing)
	touch(t, filepath.Join(f.release, "v2"))
	info := env.WaitStatus(t, v2, 20*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped)
	stopped := time.Since(firing)
	t.Logf("alarm firing -> stop recorded (ALARM_ACTIVE): %v; -> deployment Stopped: %v (poll interval %v: %.2f intervals)",
		decided.Round(time.Millisecond), stopped.Round(time.Millisecond), pollInterval, float64(stopped)/float64(pollInterval))
	if info.Status != cdtypes.DeploymentStatusStopped || info.ErrorInformation == nil || info.ErrorInformation.Code != cdtypes.ErrorCodeAlarmActive {
		t.Fatalf("v2 %s %+v, want Stopped with ALARM_ACTIVE", info.Status, info.ErrorInformation)
	}
	if !strings.Contains(aws.ToString(info.ErrorInformation.Message), "app-errors") {
		t.Errorf("message %q does not name the alarm", aws.ToString(info.ErrorInformation.Message))
	}
	// The hook's exit after the stop is the agent's and the machine's time,
	// so the bound is on the alarm path. The target (BENCHMARKS.md) is 2
	// poll intervals; the test allows a third for a loaded CI machine.
	if decided >= 3*pollInterval {
		t.Errorf("alarm firing -> stop took %v, want < 2 poll intervals (%v)", decided, 2*pollInterval)
	}
	if info.RollbackInfo == nil || aws.ToString(info.RollbackInfo.RollbackDeploymentId) == "" {
		t.Fatalf("no rollback deployment: %+v", info.RollbackInfo)
	}
	rb := aws.ToString(info.RollbackInfo.RollbackDeploymentId)
	// The alarm still fires: the rollback, the remedy, runs to its end.
	if rbInfo := env.WaitStatus(t, rb, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped); rbInfo.Status != cdtypes.DeploymentStatusSucceeded {
		t.Fatalf("rollback %s %+v", rbInfo.Status, rbInfo.ErrorInformation)
	}
	exp.gauge.Set(0)

	t.Run("unreadable alarm ignored", func(t *testing.T) {
		env.SetupGroup(t, "app", "ignore", "CodeDeployDefault.AllAtOnce", "role", "web", alarmGroup([]string{"unreachable"}, true, false))
		id := f.deploy(t, "ignore", map[string]string{"AfterInstall": "sleep 1.2\n"})
		if info := env.WaitStatus(t, id, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped); info.Status != cdtypes.DeploymentStatusSucceeded {
			t.Fatalf("%s %+v, want Succeeded (ignorePollAlarmFailure)", info.Status, info.ErrorInformation)
		}
	})
	t.Run("unreadable alarm stops", func(t *testing.T) {
		env.SetupGroup(t, "app", "strict", "CodeDeployDefault.AllAtOnce", "role", "web", alarmGroup([]string{"unreachable"}, false, false))
		id := f.deploy(t, "strict", map[string]string{"BeforeInstall": waitHook("strict")})
		// The first poll may come before or after BeforeInstall starts
		// (CI once saw it before): either way the error shows, a running
		// hook is let finish, and the deployment stops.
		waitAlarmActive(t, env, id)
		touch(t, filepath.Join(f.release, "strict"))
		info := env.WaitStatus(t, id, 20*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped)
		if info.Status != cdtypes.DeploymentStatusStopped || !strings.Contains(aws.ToString(info.ErrorInformation.Message), "could not be read") {
			t.Fatalf("%s %+v", info.Status, info.ErrorInformation)
		}
		if info.RollbackInfo != nil && info.RollbackInfo.RollbackDeploymentId != nil {
			t.Fatalf("rolled back without DEPLOYMENT_STOP_ON_ALARM: %+v", info.RollbackInfo)
		}
	})
}

// waitAlarmActive waits until the deployment's errorInformation says
// ALARM_ACTIVE and returns when it saw it.
func waitAlarmActive(t *testing.T, env *servertest.Env, id string) time.Time {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		out, err := env.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: &id})
		if err != nil {
			t.Fatal(err)
		}
		if ei := out.DeploymentInfo.ErrorInformation; ei != nil && ei.Code == cdtypes.ErrorCodeAlarmActive {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s: no ALARM_ACTIVE (status %s)", id, out.DeploymentInfo.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
