package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/eventually"
)

const (
	rootKeyID  = "AKIAROOTTEST00000001"
	rootSecret = "rootsecretrootsecretrootsecret00"
)

func waitHealthy(t *testing.T, url string, p *proc) {
	t.Helper()
	eventually.NoError(t, time.Minute, url+" healthy", func() error {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return fmt.Errorf("%w\nstderr:\n%s", err, p.stderr())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func cdClient(url, id, secret string) *codedeploy.Client {
	return codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestServerBinary runs `cutover server` as a user would: the root key
// belongs to --root-account, every log line is JSON with --log-format json,
// throwaway credentials are refused (a server has no open mode, whatever
// the environment says), and `cutover agent register` neither leaves an
// unused key behind when the name is taken nor when tagging fails.
func TestServerBinary(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr := freeAddr(t)
	url := "http://" + addr
	p := startBin(t, []string{"CUTOVER_ROOT_ACCESS_KEY_ID=" + rootKeyID, "CUTOVER_ROOT_SECRET_ACCESS_KEY=" + rootSecret, "CUTOVER_OPEN=true"},
		"server", "--data-dir", data, "--listen", addr, "--log-format", "json", "--root-account", "123456789012", "--insecure-http")
	waitHealthy(t, url, p)
	ctx := context.Background()

	root := cdClient(url, rootKeyID, rootSecret)
	if _, err := root.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("root key: %v", err)
	}
	for _, c := range []struct{ id, secret string }{{"test", "test"}, {"FOOBARKEY", "whatever"}, {"AKIAUNKNOWN000000000", rootSecret}} {
		_, err := cdClient(url, c.id, c.secret).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		if apiCode(err) != "UnrecognizedClientException" {
			t.Errorf("server accepted or misreported unknown key %s: %v", c.id, err)
		}
	}
	if _, err := cdClient(url, rootKeyID, "wrong-secret-wrong-secret").ListApplications(ctx, &codedeploy.ListApplicationsInput{}); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("wrong secret: %v", err)
	}

	adminEnv := []string{"AWS_ACCESS_KEY_ID=" + rootKeyID, "AWS_SECRET_ACCESS_KEY=" + rootSecret, "AWS_REGION=us-east-1"}
	register := func(name string, extra ...string) result {
		args := append([]string{"agent", "register", "--instance-name", name, "--endpoint", url, "--onprem-config", filepath.Join(dir, name+".yml")}, extra...)
		return runBin(t, adminEnv, args...)
	}
	keysOf := func(user string) (active, revoked int) {
		r := runBin(t, nil, "keys", "list", "--data-dir", data)
		if r.code != 0 {
			t.Fatalf("keys list: %s", r.stderr)
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Contains(line, ":user/"+user+" ") {
				if strings.Contains(line, "revoked") {
					revoked++
				} else {
					active++
				}
			}
		}
		return active, revoked
	}

	if r := register("web-1", "--tags", "env=prod"); r.code != 0 {
		t.Fatalf("register web-1: %s", r.stderr)
	}
	got, err := root.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("web-1")})
	if err != nil {
		t.Fatal(err)
	}
	if i := got.InstanceInfo; !strings.Contains(aws.ToString(i.InstanceArn), ":123456789012:") || aws.ToString(i.IamUserArn) != "arn:aws:iam::123456789012:user/web-1" {
		t.Errorf("root key is not in --root-account: instance %s user %s", aws.ToString(i.InstanceArn), aws.ToString(i.IamUserArn))
	}
	r := register("web-1")
	if r.code == 0 || !strings.Contains(r.stderr, "InstanceNameAlreadyRegisteredException") || !strings.Contains(r.stderr, "nothing was created") {
		t.Fatalf("second register of web-1: exit %d, %s", r.code, r.stderr)
	}
	if active, revoked := keysOf("web-1"); active != 1 || revoked != 0 {
		t.Fatalf("web-1 keys after the refused register: %d active, %d revoked; want 1, 0", active, revoked)
	}

	// A failure after the key exists (tagging) takes back the registration
	// and the key; a retry then succeeds.
	r = register("web-2", "--tags", strings.Repeat("k", 129)+"=v")
	if r.code == 0 || !strings.Contains(r.stderr, "InvalidTagException") {
		t.Fatalf("register with a bad tag: exit %d, %s", r.code, r.stderr)
	}
	if active, revoked := keysOf("web-2"); active != 0 || revoked != 1 {
		t.Fatalf("web-2 keys after the failed register: %d active, %d revoked; want 0, 1", active, revoked)
	}
	if got, err := root.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("web-2")}); err != nil || got.InstanceInfo.DeregisterTime == nil {
		t.Fatalf("web-2 after the failed register: %v %+v", err, got)
	}
	if r := register("web-2", "--tags", "env=prod"); r.code != 0 {
		t.Fatalf("retry register web-2: %s", r.stderr)
	}

	code, err := p.stop(syscall.SIGTERM, 20*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("server exit %d %v\n%s", code, err, p.stderr())
	}
	lines := strings.Split(strings.TrimSpace(p.stderr()), "\n")
	var sawListening bool
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON log line: %q", line)
		}
		sawListening = sawListening || m["msg"] == "cutover server listening"
	}
	if !sawListening {
		t.Errorf("no listening line in %q", lines)
	}
}
