package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/agent"
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
	out := startServer(t, "--listen", addr, "--data-dir", dataDir, "--advertise", "cutover.test")
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
