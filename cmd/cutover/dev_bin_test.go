package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cutoverhq/cutover/internal/eventually"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestDevBinary runs `cutover dev` as the README does, on chosen ports:
// it names every port it binds, takes throwaway credentials (open mode) in
// the --root-account account, deploys a revision whose hook starts a web
// server in the background as the demo's does, and on SIGINT stops that
// web server and removes its temporary directory.
func TestDevBinary(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("SKIPPING: python3 (the demo's web server) is not on PATH")
	}
	tmp := t.TempDir()
	api, web := freeAddr(t), freeAddr(t)
	appPort := freePort(t)
	p := startBin(t, []string{"TMPDIR=" + tmp}, "dev", "--listen", api, "--web-listen", web,
		"--app-port", strconv.Itoa(appPort), "--agents", "1", "--minute", "1s", "--root-account", "123456789012")
	out := strings.Join(p.readUntil(t, "Ctrl-C stops everything", 60*time.Second), "\n")
	wantPorts := "# Ports: API and S3 " + api + ", load balancer " + web + ", applications (hooks' $PORT): dev-1 " + strconv.Itoa(appPort) + "."
	if !strings.Contains(out, wantPorts) || !strings.Contains(out, "Open mode on") {
		t.Fatalf("dev printed:\n%s\nwant the line %q and open mode on", out, wantPorts)
	}
	devDirs, _ := filepath.Glob(filepath.Join(tmp, "cutover-dev-*"))
	if len(devDirs) != 1 {
		t.Fatalf("temporary data dirs %v", devDirs)
	}

	ctx := context.Background()
	anyKey := credentials.NewStaticCredentialsProvider("test", "test", "")
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + api), UsePathStyle: true, Credentials: anyKey})
	pidFile := filepath.Join(tmp, "web.pid")
	start := "#!/bin/sh\ncd \"$(dirname \"$0\")\"\nnohup python3 -m http.server \"$PORT\" --bind 127.0.0.1 >/dev/null 2>&1 &\necho $! > " + pidFile + "\n"
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("cutover-dev"), Key: aws.String("app.tgz"),
		Body: bytes.NewReader(servertest.TarGz(t,
			servertest.File{Name: "appspec.yml", Body: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"},
			servertest.File{Name: "start.sh", Body: start, Mode: 0o755}))}); err != nil {
		t.Fatal(err)
	}
	cd := codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + api), Credentials: anyKey, Retryer: aws.NopRetryer{}})
	inst, err := cd.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("dev-1")})
	if err != nil {
		t.Fatalf("open mode: test/test does not see the dev instances: %v", err)
	}
	if arn := aws.ToString(inst.InstanceInfo.InstanceArn); !strings.Contains(arn, ":123456789012:") {
		t.Fatalf("dev-1 is %s, not in --root-account", arn)
	}
	if _, err := cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cd.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("dev"),
		ServiceRoleArn:               aws.String("arn:aws:iam::123456789012:role/cutover"),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("env"), Value: aws.String("dev"), Type: types.TagFilterTypeKeyAndValue}},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := cd.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("dev"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3,
			S3Location: &types.S3Location{Bucket: aws.String("cutover-dev"), Key: aws.String("app.tgz"), BundleType: types.BundleTypeTarGZip}}})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 2*time.Minute, "the deployment to succeed", func() bool {
		got, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: d.DeploymentId})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.DeploymentInfo.Status; s == types.DeploymentStatusFailed || s == types.DeploymentStatusStopped {
			t.Fatalf("deployment %s: %+v\n%s", s, got.DeploymentInfo.ErrorInformation, p.stderr())
		}
		return got.DeploymentInfo.Status == types.DeploymentStatusSucceeded
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	webPid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://127.0.0.1:" + strconv.Itoa(appPort) + "/"
	eventually.NoError(t, time.Minute, "the hook's web server to answer", func() error {
		resp, err := http.Get(appURL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})

	code, err := p.stop(os.Interrupt, 30*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("dev exit %d %v\n%s", code, err, p.stderr())
	}
	if alive(webPid) {
		_ = syscall.Kill(webPid, syscall.SIGKILL)
		t.Fatalf("the hook's web server (pid %d) outlived cutover dev", webPid)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(appPort), time.Second); err == nil {
		c.Close()
		t.Fatal("something still listens on the application port")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "cutover-dev-*")); len(left) != 0 {
		t.Fatalf("cutover dev left %v", left)
	}
}

// alive reports whether pid is a running process (a zombie, which an
// init that does not reap may leave, counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// TestDevNoAgentsAnyPort: `cutover dev --agents 0` starts only the server
// and load balancer, and with port 0 it prints the ports it bound, which
// answer: the API to a real client, the load balancer to HTTP.
func TestDevNoAgentsAnyPort(t *testing.T) {
	// A port alone is on loopback, as the README says.
	p := startBin(t, []string{"TMPDIR=" + t.TempDir()}, "dev", "--listen", ":0", "--web-listen", "127.0.0.1:0", "--agents", "0")
	out := strings.Join(p.readUntil(t, "Ctrl-C stops everything", 60*time.Second), "\n")
	var api, web string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "# Ports: API and S3 "); ok {
			api, rest, _ = strings.Cut(rest, ", load balancer ")
			web, _, _ = strings.Cut(rest, ", applications")
		}
	}
	for _, hp := range []string{api, web} {
		if host, port, err := net.SplitHostPort(hp); err != nil || port == "0" || host != "127.0.0.1" {
			t.Fatalf("dev printed %q as a bound address (%v):\n%s", hp, err, out)
		}
	}
	if !strings.Contains(out, "export AWS_ENDPOINT_URL=http://"+api+"\n") || !strings.Contains(out, "Local agents: none") {
		t.Fatalf("dev printed:\n%s\nwant the endpoint http://%s and no local agents", out, api)
	}
	ctx := context.Background()
	cd := codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + api), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	got, err := cd.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
	if err != nil || len(got.InstanceNames) != 0 {
		t.Fatalf("instances of a dev without agents: %v %v", got, err)
	}
	resp, err := http.Get("http://" + web + "/")
	if err != nil {
		t.Fatalf("the printed load balancer %s: %v", web, err)
	}
	resp.Body.Close()
	if code, err := p.stop(os.Interrupt, 30*time.Second); err != nil || code != 0 {
		t.Fatalf("dev exit %d %v\n%s", code, err, p.stderr())
	}
}

// TestDevRefusals: impossible agent counts and ports, and an API address
// beyond loopback (the dev environment serves plain HTTP), are refused
// before anything starts.
func TestDevRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--agents", "-1"}, "--agents -1"},
		{[]string{"--app-port", "65535", "--agents", "2"}, "out of the port range"},
		{[]string{"--app-port", "0", "--agents", "0"}, "out of the port range"},
		{[]string{"--listen", "0.0.0.0:0", "--agents", "0"}, "not a loopback address"},
	} {
		r := runBin(t, []string{"TMPDIR=" + t.TempDir()}, append([]string{"dev"}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("dev %v: exit %d, stderr %q; want %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
