package clitest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/server"
)

// TestAWSCLIRevisionStore is the README's revision workflow with nothing
// but the server: `aws s3 mb/cp` and `aws deploy push` against the embedded
// revision store, then a deployment whose agent downloads the pushed bundle
// from the server by default. Over HTTPS botocore sends aws-chunked bodies
// with a trailing checksum; over HTTP it signs the payload.
func TestAWSCLIRevisionStore(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("SKIPPING AWS CLI REVISION STORE SESSION: the aws command is not on PATH; install awscli to run it")
	}
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) { revisionSession(t, useTLS) })
	}
}

const (
	rsRootKey    = "AKIATESTROOT00000001"
	rsRootSecret = "test-root-secret-key-0000000000000000000"
)

func revisionSession(t *testing.T, useTLS bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), RootAccessKeyID: rsRootKey, RootSecretAccessKey: rsRootSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Minute: 100 * time.Millisecond, InsecureHTTP: !useTLS}
	hc := &http.Client{Timeout: 30 * time.Second}
	var caFile string
	if useTLS {
		cfg.TLSCert, cfg.TLSKey, caFile = revstoreCert(t, dir)
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(caFile)
		pool.AppendCertsFromPEM(pemBytes)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served; srv.Close() }()
	url := srv.URL()

	env := revstoreAWSEnv(t, url, rsRootKey, rsRootSecret, caFile)
	aws := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command("aws", args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("aws %v: %v", args, err)
		}
		return stdout.String(), stderr.String(), code
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := aws(args...)
		if code != 0 {
			t.Fatalf("aws %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}

	ok("s3", "mb", "s3://revs")
	// 9 MiB: above aws-cli's 8 MiB threshold, so a multipart upload.
	big := make([]byte, 9<<20)
	_, _ = rand.Read(big)
	bigFile := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(bigFile, big, 0o600); err != nil {
		t.Fatal(err)
	}
	ok("s3", "cp", bigFile, "s3://revs/files/big.bin", "--only-show-errors")
	back := filepath.Join(dir, "back.bin")
	ok("s3", "cp", "s3://revs/files/big.bin", back, "--only-show-errors")
	if got, _ := os.ReadFile(back); !bytes.Equal(got, big) {
		t.Fatalf("downloaded %d bytes differ from the 9 MiB uploaded", len(got))
	}
	if out := ok("s3", "ls", "s3://revs/files/"); !strings.Contains(out, "9437184 big.bin") {
		t.Errorf("s3 ls: %q", out)
	}

	// The bundle: a file the deployment copies, and 7 MiB of noise so that
	// `aws deploy push` uploads in parts (its limit is 6 MiB).
	src := filepath.Join(dir, "app")
	dest := filepath.Join(dir, "www")
	failOn(t, os.MkdirAll(src, 0o755))
	failOn(t, os.WriteFile(filepath.Join(src, "index.html"), []byte("blue\n"), 0o644))
	failOn(t, os.WriteFile(filepath.Join(src, "noise.bin"), big[:7<<20], 0o644))
	failOn(t, os.WriteFile(filepath.Join(src, "appspec.yml"), []byte(fmt.Sprintf("version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: %s\n", dest)), 0o644))

	ok("deploy", "create-application", "--application-name", "web")
	push := ok("deploy", "push", "--application-name", "web", "--s3-location", "s3://revs/web/app.zip", "--source", src)
	if !strings.Contains(push, "bucket=revs,key=web/app.zip,bundleType=zip,eTag=") {
		t.Fatalf("push: %q", push)
	}
	var revs struct {
		Revisions []struct {
			S3Location struct{ Bucket, Key, BundleType, ETag string }
		}
	}
	failOn(t, json.Unmarshal([]byte(ok("deploy", "list-application-revisions", "--application-name", "web", "--output", "json")), &revs))
	if len(revs.Revisions) != 1 || revs.Revisions[0].S3Location.ETag == "" {
		t.Fatalf("registered revisions: %+v", revs.Revisions)
	}
	loc := revs.Revisions[0].S3Location

	// A host registered with its own key; its agent has no S3 setting.
	reg, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: url, Region: "us-east-1", InstanceName: "web-1",
		AdminCredentials: credentials.NewStaticCredentialsProvider(rsRootKey, rsRootSecret, ""),
		Tags:             map[string]string{"role": "web"}, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	acfg := agent.Config{Endpoint: url, Region: "us-east-1", Credentials: reg.CredentialsProvider(), HostIdentifier: reg.HostIdentifier(),
		RootDir: filepath.Join(dir, "agent"), S3PathStyle: true, PollInterval: -1, HTTPClient: hc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	t.Setenv("AWS_ENDPOINT_URL_S3", "") // the default under test
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(ctx, acfg) }()
	defer func() { cancel(); <-agentDone }()

	// The host's key reads revisions but cannot change them.
	hostCreds, err := reg.CredentialsProvider().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hostEnv := revstoreAWSEnv(t, url, hostCreds.AccessKeyID, hostCreds.SecretAccessKey, caFile)
	hostCmd := exec.Command("aws", "s3", "cp", filepath.Join(src, "index.html"), "s3://revs/web/evil.html")
	hostCmd.Env = hostEnv
	if out, err := hostCmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "AccessDenied") {
		t.Errorf("host key upload: err %v, output %s", err, out)
	}
	hostCmd = exec.Command("aws", "s3", "cp", "s3://revs/web/app.zip", filepath.Join(dir, "host.zip"), "--only-show-errors")
	hostCmd.Env = hostEnv
	if out, err := hostCmd.CombinedOutput(); err != nil {
		t.Errorf("host key download: %v %s", err, out)
	}

	ok("deploy", "create-deployment-group", "--application-name", "web", "--deployment-group-name", "prod",
		"--service-role-arn", "arn:aws:iam::000000000000:role/cutover",
		"--on-premises-instance-tag-filters", "Key=role,Value=web,Type=KEY_AND_VALUE")
	// The deployment is created with the command `aws deploy push`
	// printed, its placeholders filled in as a user would.
	printed := push[strings.Index(push, "aws deploy create-deployment"):]
	printed, _, _ = strings.Cut(printed, "\n")
	args := strings.Fields(strings.TrimPrefix(printed, "aws "))
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "<deployment-group-name>":
			args[i] = "prod"
		case strings.HasPrefix(args[i], "<") && i > 0:
			args = append(args[:i-1], args[i+1:]...) // an optional flag left unset
			i -= 2
		}
	}
	if !slices.Contains(args, fmt.Sprintf("bucket=%s,key=%s,bundleType=%s,eTag=%s", loc.Bucket, loc.Key, loc.BundleType, loc.ETag)) {
		t.Fatalf("printed command %q does not name the registered revision %+v", printed, loc)
	}
	var dep struct{ DeploymentId string }
	failOn(t, json.Unmarshal([]byte(ok(append(args, "--output", "json")...)), &dep))
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got struct{ DeploymentInfo struct{ Status string } }
		failOn(t, json.Unmarshal([]byte(ok("deploy", "get-deployment", "--deployment-id", dep.DeploymentId, "--output", "json")), &got))
		st := got.DeploymentInfo.Status
		if st == "Succeeded" {
			break
		}
		if st == "Failed" || st == "Stopped" || time.Now().After(deadline) {
			out, _, _ := aws("deploy", "list-deployment-instances", "--deployment-id", dep.DeploymentId)
			t.Fatalf("deployment %s: %s", st, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "index.html")); err != nil || string(got) != "blue\n" {
		t.Fatalf("deployed file: %q %v", got, err)
	}
}

// revstoreAWSEnv isolates aws-cli from the user's configuration and points every
// service, S3 included, at url.
func revstoreAWSEnv(t *testing.T, url, key, secret, caFile string) []string {
	dir := t.TempDir()
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "BOTO_") {
			out = append(out, kv)
		}
	}
	out = append(out,
		"AWS_ENDPOINT_URL="+url, "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
	if caFile != "" {
		out = append(out, "AWS_CA_BUNDLE="+caFile)
	}
	return out
}

// revstoreCert writes a certificate for 127.0.0.1 that is its own CA.
func revstoreCert(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	failOn(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	failOn(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	failOn(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	failOn(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	failOn(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile, certFile
}

func failOn(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
