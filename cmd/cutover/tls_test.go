package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/tlsca"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `cutover server` with args until the test ends and
// returns its output so far, as it grows.
func startServer(t *testing.T, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"server", "--log-level", "info"}, args...), out, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	})
	return out
}

func waitHTTP(t *testing.T, client *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never healthy: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerTLSByDefault starts `cutover server` without TLS flags: it
// serves HTTPS with a CA it creates in its data directory and prints the
// CA's fingerprint; `cutover agent register --ca-fingerprint` refuses a
// wrong fingerprint, and with the right one pins the CA and registers.
func TestServerTLSByDefault(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	t.Setenv("CUTOVER_ROOT_ACCESS_KEY_ID", "AKIATLSTESTROOT00001")
	t.Setenv("CUTOVER_ROOT_SECRET_ACCESS_KEY", "tls-test-root-secret-000000000000000000")
	out := startServer(t, "--listen", addr, "--data-dir", dataDir, "--advertise", "cutover.test", "--poll-wait", "2s")
	endpoint := "https://" + addr

	var ca *x509.Certificate
	deadline := time.Now().Add(10 * time.Second)
	for ca == nil {
		if pem, err := os.ReadFile(filepath.Join(dataDir, tlsca.CertFile)); err == nil {
			ca, _ = tlsca.ParseCertificate(pem)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CA in the data directory; server said %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	waitHTTP(t, &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(pool)}}, endpoint)
	fp := tlsca.Fingerprint(ca)
	if !strings.Contains(out.String(), fp) {
		t.Fatalf("server did not print the CA fingerprint %s: %q", fp, out.String())
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served without --insecure-http")
		}
	}
	if _, err := http.Get(endpoint + "/healthz"); err == nil {
		t.Fatal("the generated certificate is trusted without the CA")
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATLSTESTROOT00001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "tls-test-root-secret-000000000000000000")
	t.Setenv("AWS_CA_BUNDLE", "")
	conf := filepath.Join(dir, "conf", "codedeploy.onpremises.yml")
	wrong := strings.Replace(fp, fp[:2], "00", 1)
	if fp[:2] == "00" {
		wrong = strings.Replace(fp, fp[:2], "11", 1)
	}
	if o, err := runOut(t, "agent", "register", "--endpoint", endpoint, "--instance-name", "web-1", "--onprem-config", conf, "--ca-fingerprint", wrong); err == nil || !strings.Contains(err.Error(), "refusing to trust") {
		t.Fatalf("wrong fingerprint accepted: %v %s", err, o)
	}
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Fatalf("config written after a refused fingerprint: %v", err)
	}
	// openssl's lower-case form without colons is accepted too.
	o, err := runOut(t, "agent", "register", "--endpoint", endpoint, "--instance-name", "web-1", "--onprem-config", conf,
		"--ca-fingerprint", strings.ToLower(strings.ReplaceAll(fp, ":", "")))
	if err != nil {
		t.Fatalf("register: %v %s", err, o)
	}
	c, err := agent.LoadOnPremConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	if c.CutoverCAFile != filepath.Join(dir, "conf", "cutover-ca.pem") || c.CutoverEndpoint != endpoint {
		t.Fatalf("config %+v", c)
	}
	pinned, err := os.ReadFile(c.CutoverCAFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tlsca.ParseCertificate(pinned); err != nil || tlsca.Fingerprint(got) != fp {
		t.Fatalf("pinned CA %v %v", got, err)
	}
	// The agent's client, built from the config as `cutover agent` does.
	hc, err := httpClient(c.CutoverCAFile, c.CutoverEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, hc, endpoint)

	// --official-agent-config writes the official agent's own
	// configuration beside the on-premises one, pointed at this server
	// for commands and revisions; the CA advice names the variables the
	// official agent reads (AWS_SSL_CA_BUNDLE alone was wrong advice).
	conf2 := filepath.Join(dir, "conf2", "codedeploy.onpremises.yml")
	official := filepath.Join(dir, "conf2", "codedeployagent.yml")
	o, err = runOut(t, "agent", "register", "--endpoint", endpoint, "--instance-name", "web-2", "--onprem-config", conf2,
		"--ca-file", c.CutoverCAFile, "--official-agent-config", official)
	if err != nil {
		t.Fatalf("register --official-agent-config: %v %s", err, o)
	}
	for _, want := range []string{"official CodeDeploy agent config written to " + official, "no PORT or CUTOVER_INSTANCE", "cutover:address",
		"SSL_CERT_FILE", "AWS_CA_BUNDLE"} {
		if !strings.Contains(o, want) {
			t.Errorf("register printed no %q:\n%s", want, o)
		}
	}
	var agentConf map[string]any
	b, err := os.ReadFile(official)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &agentConf); err != nil {
		t.Fatalf("codedeployagent.yml: %v\n%s", err, b)
	}
	for k, v := range map[string]any{":deploy_control_endpoint": endpoint, ":s3_endpoint_override": endpoint,
		":on_premises_config_file": conf2, ":root_dir": "/opt/codedeploy-agent/deployment-root", ":wait_between_runs": 1} {
		if agentConf[k] != v {
			t.Errorf("codedeployagent.yml %s = %v, want %v\n%s", k, agentConf[k], v, b)
		}
	}
	var onprem map[string]any
	if b, err = os.ReadFile(conf2); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &onprem); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"aws_access_key_id", "aws_secret_access_key", "iam_user_arn", "region"} {
		if s, _ := onprem[k].(string); s == "" {
			t.Errorf("on-premises config lacks %s:\n%s", k, b)
		}
	}
	// The official agent polls with the key written there: a real SDK
	// client signing as it reaches this server over TLS.
	c2, err := agent.LoadOnPremConfig(conf2)
	if err != nil {
		t.Fatal(err)
	}
	hc2, err := httpClient(c.CutoverCAFile, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	pc := &protocol.Client{Endpoint: agentConf[":deploy_control_endpoint"].(string), Region: c2.Region, Credentials: c2.CredentialsProvider(), HTTPClient: hc2, MaxRetries: -1}
	host := c2.HostIdentifier()
	pctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := pc.PollHostCommand(pctx, &commands.PollHostCommandInput{HostIdentifier: &host}); err != nil {
		t.Fatalf("poll with the written config: %v", err)
	}
}

// TestServerInsecureHTTP: --insecure-http serves plain HTTP and creates no
// CA.
func TestServerInsecureHTTP(t *testing.T) {
	dataDir := t.TempDir()
	addr := freeAddr(t)
	startServer(t, "--listen", addr, "--data-dir", dataDir, "--insecure-http")
	waitHTTP(t, http.DefaultClient, "http://"+addr)
	if _, err := os.Stat(filepath.Join(dataDir, tlsca.CertFile)); !os.IsNotExist(err) {
		t.Fatalf("CA created with --insecure-http: %v", err)
	}
}

func tlsConfig(pool *x509.CertPool) *tls.Config { return &tls.Config{RootCAs: pool} }

// withoutEnv drops the variables named from env.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// TestLogsAndWatchTrustAWSCABundle: against a server on its own CA, with
// the CA given only as AWS_CA_BUNDLE (aws-cli's way; SSL_CERT_FILE unset),
// `cutover watch` follows the event stream (the blue/green phase comes
// only from it, and no fallback is announced) and `cutover logs` reads the
// streamed output; both used a plain HTTP client for those endpoints and
// failed ("certificate signed by unknown authority") or fell back to
// polling silently. A deployment whose agent does not stream (as the
// official agent) gets each event's diagnostics and log tail from
// `cutover logs`, with a note, instead of nothing.
func TestLogsAndWatchTrustAWSCABundle(t *testing.T) {
	f := servertest.StartBlueGreen(t, 1, servertest.WithTLS())
	if f.Env.CAFile == "" {
		t.Fatal("the server serves no CA")
	}
	env := append(withoutEnv(awsEnv(t, f.Env), "SSL_CERT_FILE", "SSL_CERT_DIR", "AWS_CA_BUNDLE"), "AWS_CA_BUNDLE="+f.Env.CAFile)
	id := f.Deploy(t, "green")
	var stdout, stderr lockedBuffer
	watch := exec.Command(cutoverBin, "watch", "--plain", id)
	watch.Env, watch.Stdout, watch.Stderr = env, &stdout, &stderr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "phase ready") {
		if time.Now().After(deadline) {
			t.Fatalf("watch never showed the Ready phase (the event stream's):\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := f.Env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait}); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(watch, 60*time.Second); err != nil {
		t.Fatalf("watch: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if strings.Contains(stderr.String(), "event stream") {
		t.Errorf("watch fell back to polling: %s", stderr.String())
	}

	r := runBin(t, env, "logs", id)
	if r.code != 0 || !strings.Contains(r.stdout, "hook BeforeInstall on green-1 for "+id) || strings.Contains(r.stderr, "no streamed output") {
		t.Fatalf("logs over TLS: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// The same endpoints refuse a client without the CA.
	if r := runBin(t, withoutEnv(env, "AWS_CA_BUNDLE"), "logs", id); r.code == 0 {
		t.Fatalf("logs trusted the server without its CA: %s", r.stdout)
	}

	quiet := f.Env.DeployWithoutStreaming(t)
	for _, args := range [][]string{{"logs", quiet}, {"logs", "--follow", quiet}, {"logs", "--instance", servertest.QuietInstance, quiet}} {
		r := runBin(t, env, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "no streamed output from "+servertest.QuietInstance) {
			t.Errorf("%v: no note on stderr: %q", args, r.stderr)
		}
		for _, want := range []string{
			"==> " + servertest.QuietInstance + " BeforeInstall (Succeeded",
			"==> " + servertest.QuietInstance + " AfterInstall (Failed, ScriptFailed, script scripts/AfterInstall.sh",
			servertest.QuietFailure,
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: stdout lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
	// Another instance's filter shows nothing of it.
	if r := runBin(t, env, "logs", "--instance", "green-1", quiet); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("logs --instance green-1 of the quiet deployment: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
