package main

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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/keys"
)

func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func TestVersionAndUsage(t *testing.T) {
	out, err := runOut(t, "version")
	if err != nil || !strings.HasPrefix(out, "cutover ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if _, err := runOut(t, "bogus"); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServerTLSKeysWhileRunning runs `cutover server` over HTTPS, with its
// settings from a config file, and manages keys with `cutover keys` on the
// same data directory while it runs.
func TestServerTLSKeysWhileRunning(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	certFile, keyFile, pool := selfSigned(t, dir)
	addr := freeAddr(t)
	cfgFile := filepath.Join(dir, "cutover.yml")
	// The file sets the listen address; the environment overrides the
	// data dir the file names (precedence: flag > env > file).
	cfg := "listen: " + addr + "\ndata-dir: /nonexistent/ignored\ntls-cert: " + certFile + "\ntls-key: " + keyFile + "\nlog-level: warn\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_DATA_DIR", dataDir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var out bytes.Buffer
		done <- run(ctx, []string{"server", "--config", cfgFile}, &out, &out)
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never healthy over HTTPS: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	out, err := runOut(t, "keys", "create", "--user", "alice", "--role", "read-only", "--account", "123456789012", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(out, err)
	}
	var created keys.Created
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Arn != "arn:aws:iam::123456789012:user/alice" || created.SecretAccessKey == "" {
		t.Fatalf("keys create printed %q (%v)", out, err)
	}
	cd := codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + addr), HTTPClient: client,
		Credentials: credentials.NewStaticCredentialsProvider(created.AccessKeyID, created.SecretAccessKey, ""), Retryer: aws.NopRetryer{}})
	if _, err := cd.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("new key does not work at once: %v", err)
	}
	// The read-only key may read, not write.
	_, err = cd.CreateApplication(context.Background(), &codedeploy.CreateApplicationInput{ApplicationName: aws.String("x")})
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("read-only key created an application: %v", err)
	}
	out, err = runOut(t, "audit", "--data-dir", dataDir, "--key", created.AccessKeyID)
	if err != nil || !strings.Contains(out, "codedeploy:CreateApplication") || !strings.Contains(out, "AccessDeniedException") || !strings.Contains(out, "application:x") {
		t.Fatalf("audit: %q %v", out, err)
	}
	out, err = runOut(t, "audit", "--data-dir", dataDir, "--operation", "cutover-admin:CreateAccessKey")
	if err != nil || !strings.Contains(out, "user:alice") || !strings.Contains(out, "cli") {
		t.Fatalf("audit of keys create: %q %v", out, err)
	}
	out, err = runOut(t, "keys", "list", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, created.AccessKeyID) || !strings.Contains(out, "active") || !strings.Contains(out, "read-only") {
		t.Fatalf("keys list: %q %v", out, err)
	}
	if out, err := runOut(t, "keys", "revoke", "--data-dir", dataDir, created.AccessKeyID); err != nil {
		t.Fatal(out, err)
	}
	_, err = cd.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{})
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("revoked key still works: %v", err)
	}
	if out, err := runOut(t, "github-token", "add", "--name", "gh", "--token", "ghp_secret", "--data-dir", dataDir); err != nil {
		t.Fatal(out, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server did not shut down cleanly: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop")
	}
}
