package servertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// A blue/green setup for the tests of the tools that watch deployments
// (dashboard, CLI): a server with a builtin-router target group, real
// agents on "blue" and "green" hosts running a real hook script from an S3
// bundle, and each host's application a real HTTP server.

// BG names.
const (
	BGApp    = "shop"
	BGGroup  = "web-bg"
	BGTarget = "web"
	bgBucket = "bundles"
)

// bgHook prints a line per event (the hook logs the tests look for) and
// fails when fail-<event> exists in the host's state directory.
const bgHook = `#!/bin/sh
echo "hook $LIFECYCLE_EVENT on $HOST_NAME for $DEPLOYMENT_ID"
if [ -e "$STATE_DIR/fail-$LIFECYCLE_EVENT" ]; then echo "failing $LIFECYCLE_EVENT on purpose" >&2; exit 1; fi
case "$LIFECYCLE_EVENT" in
  ApplicationStop) touch "$STATE_DIR/stopped" ;;
  ApplicationStart) rm -f "$STATE_DIR/stopped" ;;
esac
exit 0
`

// BGHost is one host of a BlueGreen setup.
type BGHost struct {
	Name, Color, Addr, Dir string
	Agent                  *Agent
}

// Fail makes the host's runs of event fail.
func (h *BGHost) Fail(t testing.TB, event string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.Dir, "fail-"+event), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (h *BGHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := os.Stat(filepath.Join(h.Dir, "stopped")); err == nil {
		http.Error(w, "stopped", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, h.Name+"\n")
}

// BlueGreen is a running blue/green setup.
type BlueGreen struct {
	Env         *Env
	Rev         *cdtypes.RevisionLocation
	Blue, Green []*BGHost
	TG          traffic.TargetGroupConfig
}

// StartBlueGreen starts n blue and n green hosts behind the target group
// and puts the blue hosts into traffic with a first deployment.
func StartBlueGreen(t testing.TB, n int, opts ...Option) *BlueGreen {
	t.Helper()
	s3 := StartS3(t, bgBucket)
	etag, ver := s3.Put(t, bgBucket, "app.tar", bgBundle(t))
	f := &BlueGreen{Rev: &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3, S3Location: &cdtypes.S3Location{
		Bucket: aws.String(bgBucket), Key: aws.String("app.tar"), BundleType: cdtypes.BundleTypeTar, ETag: aws.String(etag), Version: aws.String(ver)}}}
	f.TG = traffic.TargetGroupConfig{Name: BGTarget, Driver: traffic.DriverBuiltin, Listen: freeAddr(t), Mode: traffic.ModeHTTP, Port: 1,
		HealthCheck:         traffic.HealthCheck{Path: "/", Interval: 50 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2},
		DeregistrationDelay: time.Second}
	f.Env = Start(t, append([]Option{func(c *server.Config) {
		c.Minute = time.Second
		c.TargetGroups = append(c.TargetGroups, f.TG)
	}}, opts...)...)
	for i := range n {
		f.Blue = append(f.Blue, f.startHost(t, s3, fmt.Sprintf("blue-%d", i+1), "blue"))
		f.Green = append(f.Green, f.startHost(t, s3, fmt.Sprintf("green-%d", i+1), "green"))
	}
	f.Env.SetupGroup(t, BGApp, BGGroup, "CodeDeployDefault.AllAtOnce", "fleet", "blue", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.DeploymentStyle = &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen, DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl}
		in.LoadBalancerInfo = &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String(BGTarget)}}}
		in.BlueGreenDeploymentConfiguration = &cdtypes.BlueGreenDeploymentConfiguration{
			DeploymentReadyOption:                     &cdtypes.DeploymentReadyOption{ActionOnTimeout: cdtypes.DeploymentReadyActionStopDeployment, WaitTimeInMinutes: 600},
			TerminateBlueInstancesOnDeploymentSuccess: &cdtypes.BlueInstanceTerminationOption{Action: cdtypes.InstanceActionKeepAlive},
			GreenFleetProvisioningOption:              &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionDiscoverExisting},
		}
	})
	id := f.Deploy(t, "blue")
	if info := f.Env.WaitStatus(t, id, 60*time.Second, cdtypes.DeploymentStatusReady, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped); info.Status == cdtypes.DeploymentStatusReady {
		if _, err := f.Env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: cdtypes.DeploymentWaitTypeReadyWait}); err != nil {
			t.Fatal(err)
		}
	}
	if info := f.Env.WaitStatus(t, id, 60*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped); info.Status != cdtypes.DeploymentStatusSucceeded {
		t.Fatalf("bootstrap deployment %s: %s", id, info.Status)
	}
	return f
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (f *BlueGreen) startHost(t testing.TB, s3 *S3, name, color string) *BGHost {
	t.Helper()
	h := &BGHost{Name: name, Color: color, Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(h.Dir, "stopped"), nil, 0o644); err != nil {
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
	tags := map[string]string{"color": color, "cutover:address": h.Addr}
	if color == "blue" {
		tags["fleet"] = "blue"
	}
	h.Agent = f.Env.StartAgent(t, name, tags, s3.URL, WithEnviron("STATE_DIR="+h.Dir, "HOST_NAME="+name))
	return h
}

// Deploy starts a deployment whose replacement instances are the hosts of color.
func (f *BlueGreen) Deploy(t testing.TB, color string) string {
	t.Helper()
	out, err := f.Env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String(BGApp), DeploymentGroupName: aws.String(BGGroup), Revision: f.Rev,
		TargetInstances: &cdtypes.TargetInstances{TagFilters: []cdtypes.EC2TagFilter{{Key: aws.String("color"), Value: aws.String(color), Type: cdtypes.EC2TagFilterTypeKeyAndValue}}},
	})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	return aws.ToString(out.DeploymentId)
}

func bgBundle(t testing.TB) []byte {
	t.Helper()
	var spec strings.Builder
	spec.WriteString("version: 0.0\nos: linux\nhooks:\n")
	for _, ev := range []string{"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService",
		"BeforeAllowTraffic", "AfterAllowTraffic", "BeforeBlockTraffic", "AfterBlockTraffic"} {
		fmt.Fprintf(&spec, "  %s:\n    - location: hook.sh\n      timeout: 60\n", ev)
	}
	return TarBundle(t, map[string]string{"appspec.yml": spec.String(), "hook.sh": bgHook})
}

// TarBundle returns a tar revision of the given files; names ending in
// .sh are executable.
func TarBundle(t testing.TB, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
