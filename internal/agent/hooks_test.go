package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Bundle uploads a tar bundle to a gofakes3 server and returns its URL and
// ETag.
func s3Bundle(t *testing.T, files map[string]string) (endpoint, etag string) {
	t.Helper()
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
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
	ctx := context.Background()
	c := s3.New(s3.Options{Region: "us-east-1", UsePathStyle: true, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDHOST", "secret", "")})
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bundles")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("web.tar"), Body: bytes.NewReader(buf.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, aws.ToString(out.ETag)
}

func TestS3DeploymentHooksAndShutdown(t *testing.T) {
	appspec := `version: 0.0
os: linux
hooks:
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/slow.sh
      timeout: 60
`
	out := filepath.Join(t.TempDir(), "env.out")
	s3URL, etag := s3Bundle(t, map[string]string{
		"appspec.yml":      appspec,
		"scripts/start.sh": "#!/bin/sh\nenv > " + out + "\necho started\n",
		"scripts/slow.sh":  "#!/bin/sh\necho validating\nsleep 30\n",
	})
	spec := textSpec(t, map[string]any{
		"Revision": map[string]any{"RevisionType": "S3", "S3Revision": map[string]any{
			"Bucket": "bundles", "Key": "web.tar", "BundleType": "tar", "ETag": etag}},
	})
	cmds := []fakeCommand{
		{ID: "c-dl", Host: testHost, ExecID: "x/y/z/d1", Name: "DownloadBundle"},
		{ID: "c-install", Host: testHost, ExecID: "x/y/z/d1", Name: "Install"},
		{ID: "c-start", Host: testHost, ExecID: "x/y/z/d1", Name: "ApplicationStart"},
		{ID: "c-validate", Host: testHost, ExecID: "x/y/z/d1", Name: "ValidateService"},
	}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": spec})
	cfg := testConfig(t, srv.URL)
	cfg.S3Endpoint, cfg.S3PathStyle = s3URL, true
	cfg.ShutdownGrace = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	// Stop the agent once ValidateService is running.
	deadline := time.After(20 * time.Second)
	for !acked(f, "c-validate") {
		select {
		case <-deadline:
			t.Fatalf("ValidateService never started; calls: %v", summary(t, f.allCalls()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	time.Sleep(100 * time.Millisecond)
	stopped := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}

	want := map[string]string{
		"c-dl":       "PutHostCommandComplete[Succeeded 0 Succeeded: ]",
		"c-install":  "PutHostCommandComplete[Succeeded 0 Succeeded: ]",
		"c-start":    "PutHostCommandComplete[Succeeded 0 Succeeded: ]",
		"c-validate": "PutHostCommandComplete[Failed 5 Failed: the Cutover agent was shut down while ValidateService was running and the command was killed]",
	}
	for id, w := range want {
		var completes []call
		for _, c := range f.allCalls() {
			if c.Op == "PutHostCommandComplete" && c.Body["HostCommandIdentifier"] == id {
				completes = append(completes, c)
			}
		}
		got := summary(t, completes)
		if len(got) != 1 || got[0] != w {
			t.Errorf("%s completes = %q, want exactly [%q]", id, got, w)
		}
	}
	// The killed hook's Complete carries its script and output.
	for _, c := range f.allCalls() {
		if c.Op == "PutHostCommandComplete" && c.Body["HostCommandIdentifier"] == "c-validate" {
			var d diag
			_ = json.Unmarshal([]byte(c.Body["Diagnostics"].(map[string]any)["Payload"].(string)), &d)
			if d.ScriptName != "scripts/slow.sh" || !strings.Contains(d.Log, "validating") {
				t.Errorf("killed hook diagnostics = %+v", d)
			}
		}
	}

	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{
		"LIFECYCLE_EVENT=ApplicationStart", "DEPLOYMENT_ID=d-AAAAAAAAA", "APPLICATION_NAME=app",
		"DEPLOYMENT_GROUP_NAME=web", "DEPLOYMENT_GROUP_ID=dg-1", "BUNDLE_BUCKET=bundles",
		"BUNDLE_KEY=web.tar", "BUNDLE_ETAG=" + etag, "PATH=/usr/bin:/bin",
	} {
		if !strings.Contains("\n"+string(env), "\n"+kv+"\n") {
			t.Errorf("hook environment lacks %s:\n%s", kv, env)
		}
	}
	if strings.Contains(string(env), "BUNDLE_VERSION=") || strings.Contains(string(env), "BUNDLE_COMMIT=") {
		t.Errorf("unset bundle variables present:\n%s", env)
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg.RootDir, "ongoing-deployment")); len(entries) != 0 {
		t.Errorf("tracking files left behind: %v", entries)
	}
}

func acked(f *fakeServer, id string) bool {
	for _, c := range f.allCalls() {
		if c.Op == "PutHostCommandAcknowledgement" && c.Body["HostCommandIdentifier"] == id {
			return true
		}
	}
	return false
}
