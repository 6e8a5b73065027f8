package servertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/eventually"
	"github.com/cutoverhq/cutover/internal/logging"
)

// S3 is a real S3-compatible server (gofakes3, in memory) on loopback.
type S3 struct {
	URL    string
	Client *s3.Client
}

// StartS3 runs an S3-compatible endpoint until the test ends, with bucket
// created (versioning on, so uploads get version ids).
func StartS3(t testing.TB, bucket string) *S3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := logger(t)
	srv := &http.Server{Handler: gofakes3.New(backend, gofakes3.WithLogger(logging.S3(l))).Server(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: logging.StdLogger(l, slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	u := "http://" + ln.Addr().String()
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(u), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("s3key", "s3secret", ""),
	})
	_, err = c.PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
	if err != nil {
		t.Fatalf("enable versioning: %v", err)
	}
	return &S3{URL: u, Client: c}
}

// Put uploads data and returns its ETag and version id.
func (s *S3) Put(t testing.TB, bucket, key string, data []byte) (etag, version string) {
	t.Helper()
	out, err := s.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ETag), aws.ToString(out.VersionId)
}

// Agent is an in-process `cutover agent` speaking the real protocol over
// loopback.
type Agent struct {
	Name    string
	Arn     string
	RootDir string
	cfg     agent.Config
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
}

// AgentOption adjusts an agent's configuration.
type AgentOption func(*agent.Config)

// WithEnviron sets extra environment variables for the agent's hooks.
func WithEnviron(kv ...string) AgentOption {
	return func(c *agent.Config) { c.Environ = append(hookEnv(), kv...) }
}

func hookEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// StartAgent registers an on-premises instance with tags through the real
// registration path (admin key -> CreateAccessKey, RegisterOnPremisesInstance,
// AddTagsToOnPremisesInstances) and runs an agent for it until the test
// ends (or Stop).
func (e *Env) StartAgent(t testing.TB, name string, tags map[string]string, s3url string, opts ...AgentOption) *Agent {
	t.Helper()
	ctx := context.Background()
	c, err := agent.Register(ctx, agent.RegisterRequest{
		Endpoint: e.URL, Region: e.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(e.AccessKey, e.SecretKey, ""),
		InstanceName:     name, Tags: tags, HTTPClient: e.HTTPClient,
	})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	root := filepath.Join(t.TempDir(), "root")
	cfg := agent.Config{
		Endpoint: e.URL, Region: e.Region, Credentials: c.CredentialsProvider(), HostIdentifier: c.HostIdentifier(),
		RootDir: root, S3Endpoint: s3url, S3PathStyle: true, PollInterval: -1,
		Logger: logger(t).With("agent", name), Environ: hookEnv(),
		ErrorBackoff: func(int) time.Duration { return 50 * time.Millisecond },
		HTTPClient:   e.HTTPClient, // nil, or trusting the server's own CA (WithTLS)
	}
	for _, o := range opts {
		o(&cfg)
	}
	a := &Agent{Name: name, Arn: c.HostIdentifier(), RootDir: root, cfg: cfg}
	a.Start()
	t.Cleanup(a.Stop)
	return a
}

// Start runs the agent (again, after Stop: an agent restart).
func (a *Agent) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan error, 1)
	cfg := a.cfg
	go func() { a.done <- agent.Run(ctx, cfg) }()
}

// Stop shuts the agent down gracefully and waits for it.
func (a *Agent) Stop() {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.cancel = nil
	a.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// SetupGroup creates an application and a deployment group targeting
// on-premises instances tagged key=value.
func (e *Env) SetupGroup(t testing.TB, app, group, config, key, value string, mutate ...func(*codedeploy.CreateDeploymentGroupInput)) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: &app}); err != nil {
		var ae interface{ ErrorCode() string }
		if !errors.As(err, &ae) || ae.ErrorCode() != "ApplicationAlreadyExistsException" {
			t.Fatal(err)
		}
	}
	in := &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: &app, DeploymentGroupName: &group,
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/cutover"),
		OnPremisesInstanceTagFilters: []cdtypes.TagFilter{{Key: &key, Value: &value, Type: cdtypes.TagFilterTypeKeyAndValue}},
	}
	if config != "" {
		in.DeploymentConfigName = &config
	}
	for _, m := range mutate {
		m(in)
	}
	if _, err := e.Client.CreateDeploymentGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
}

// WaitStatus polls GetDeployment until the status is one of want or the
// timeout passes, and returns the last DeploymentInfo.
func (e *Env) WaitStatus(t testing.TB, id string, timeout time.Duration, want ...cdtypes.DeploymentStatus) *cdtypes.DeploymentInfo {
	t.Helper()
	var last *cdtypes.DeploymentInfo
	eventually.NoError(t, timeout, fmt.Sprintf("deployment %s to reach %v", id, want), func() error {
		out, err := e.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: &id})
		if err != nil {
			t.Fatal(err)
		}
		last = out.DeploymentInfo
		if slices.Contains(want, last.Status) {
			return nil
		}
		return fmt.Errorf("last %s %+v", last.Status, last.ErrorInformation)
	})
	return last
}
