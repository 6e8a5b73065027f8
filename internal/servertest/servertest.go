// Package servertest starts real in-process Cutover servers for tests and
// hands out real aws-sdk-go-v2 clients pointed at them.
package servertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/eventually"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/tlsca"
)

// Env is a running server with an administrator key.
type Env struct {
	Server    *server.Server
	URL       string
	AccessKey string
	SecretKey string
	Region    string
	Client    *codedeploy.Client
	Config    server.Config
	// CAFile and HTTPClient are set when the server serves HTTPS from its
	// own CA (WithTLS): the CA's PEM file and a client trusting it.
	CAFile     string
	HTTPClient *http.Client
	cancel     context.CancelFunc
	done       chan error
}

// Option adjusts the server configuration before start.
type Option func(*server.Config)

// WithDataDir uses dir instead of a fresh temporary directory (restarts).
func WithDataDir(dir string) Option { return func(c *server.Config) { c.DataDir = dir } }

// WithTLS serves HTTPS with the server's own CA, as cutover server does
// by default.
func WithTLS() Option { return func(c *server.Config) { c.InsecureHTTP = false } }

// WithDatabase uses a PostgreSQL URL.
func WithDatabase(url string) Option { return func(c *server.Config) { c.Database = url } }

// Start runs a server until the test ends.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := server.Config{
		Listen:              "127.0.0.1:0",
		DataDir:             t.TempDir(),
		RootAccessKeyID:     "AKIATESTROOT00000001",
		RootSecretAccessKey: "test-root-secret-key-0000000000000000000",
		Logger:              logger(t),
		InsecureHTTP:        true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return StartConfig(t, cfg)
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("CUTOVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// StartConfig runs a server with cfg until the test ends.
func StartConfig(t testing.TB, cfg server.Config) *Env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start server: %v", err)
	}
	if err := srv.Listen(); err != nil {
		cancel()
		srv.Close()
		t.Fatal(err)
	}
	e := &Env{Server: srv, URL: srv.URL(), AccessKey: cfg.RootAccessKeyID, SecretKey: cfg.RootSecretAccessKey, Region: "us-east-1", Config: cfg, cancel: cancel, done: make(chan error, 1)}
	if pem, _ := srv.CA(); pem != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		e.CAFile = filepath.Join(cfg.DataDir, tlsca.CertFile)
		e.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	go func() { e.done <- srv.Serve(ctx) }()
	t.Cleanup(e.Stop)
	e.Client = e.NewClient(e.AccessKey, e.SecretKey, e.Region)
	waitHealthy(t, e.httpClient(), e.URL)
	return e
}

// Stop shuts the server down (idempotent).
func (e *Env) Stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	e.Server.Close()
	e.cancel = nil
}

func (e *Env) httpClient() *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	return http.DefaultClient
}

func waitHealthy(t testing.TB, client *http.Client, url string) {
	t.Helper()
	eventually.NoError(t, time.Minute, "the server at "+url+" to be healthy", func() error {
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// NewClient returns a CodeDeploy client with the given credentials. SDK
// retries are off so that tests see each answer as the server gave it.
func (e *Env) NewClient(key, secret, region string) *codedeploy.Client {
	return codedeploy.New(e.options(key, secret, region, aws.NopRetryer{}))
}

// NewRetryingClient is NewClient with the SDK's standard retries.
func (e *Env) NewRetryingClient(key, secret, region string) *codedeploy.Client {
	return codedeploy.New(e.options(key, secret, region, retry.NewStandard()))
}

func (e *Env) options(key, secret, region string, retryer aws.Retryer) codedeploy.Options {
	o := codedeploy.Options{
		Region:       region,
		BaseEndpoint: aws.String(e.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer:      retryer,
	}
	if e.HTTPClient != nil {
		o.HTTPClient = e.HTTPClient
	}
	return o
}

// ErrorCode returns the AWS error code of err ("" if none).
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// WantError fails the test unless err carries the AWS error code.
func WantError(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s, got success", code)
	}
	if got := ErrorCode(err); got != code {
		t.Fatalf("expected %s, got %s (%v)", code, got, err)
	}
}
