// Package agent is the Cutover host agent: it polls the Cutover server over
// the CodeDeploy command protocol (CodeDeployCommandService_v20141006) and
// runs each command the way the official CodeDeploy agent does — bundle
// download, install and appspec hooks — on the host it runs on.
//
// Run is the whole agent. It keeps no package-level state, so several agents
// (with different RootDirs and identities) can run in one process, as the
// end-to-end tests do.
package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverhq/cutover/internal/agent/deployspec"
	"github.com/cutoverhq/cutover/internal/agent/fetch"
	"github.com/cutoverhq/cutover/internal/agent/layout"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/bundle"
	"github.com/cutoverhq/cutover/internal/hook"
)

// Defaults of Config fields.
const (
	DefaultMaxRevisions  = 5
	DefaultPollInterval  = time.Second
	DefaultWorkers       = 16
	DefaultShutdownGrace = 30 * time.Second
	DefaultGitHubAPIURL  = "https://api.github.com"
)

// trackingMaxAge is how old a tracking file may be and still be reported
// after a restart (§9 step 1); the service has timed out older commands.
const trackingMaxAge = 24 * time.Hour

// S3EndpointAWS as Config.S3Endpoint downloads bundles from AWS S3 rather
// than from the Cutover server.
const S3EndpointAWS = "aws"

// Config configures one agent.
type Config struct {
	// Endpoint is the Cutover server's base URL (the official agent's
	// :deploy_control_endpoint:).
	Endpoint string
	// Region is the SigV4 signing region for the command service and S3.
	Region string
	// Credentials sign every request (the host's own access key).
	Credentials aws.CredentialsProvider
	// HostIdentifier is sent in PollHostCommand: the on-prem iam_user_arn or
	// iam_session_arn, verbatim.
	HostIdentifier string
	// RootDir is the deployment root (:root_dir:).
	RootDir string
	// MaxRevisions is how many deployment directories per group are kept,
	// the current one included (default 5).
	MaxRevisions int
	// S3Endpoint is the bundle download endpoint. Default: the
	// AWS_ENDPOINT_URL_S3 environment variable, else Endpoint (the Cutover
	// server's embedded revision store), else AWS S3. S3EndpointAWS selects
	// AWS S3 explicitly.
	S3Endpoint  string
	S3PathStyle bool
	// GitHubAPIURL is the GitHub API base (default https://api.github.com).
	GitHubAPIURL string
	// HTTPClient is used for every outgoing request (command service, S3,
	// GitHub). nil uses a client with an 80 s response-header timeout. The
	// command service calls are always bounded by 80 s each.
	HTTPClient *http.Client
	// SpecCertFile optionally pins the certificate that must have signed the
	// deployment specification; TEXT/JSON specs are then refused.
	SpecCertFile string
	// Logger receives structured logs (nil: slog.Default()).
	Logger *slog.Logger
	// PollInterval is the wait after an empty poll (:wait_between_runs:).
	// Zero means the default of 1 s; a negative value means no wait at all,
	// which is only sensible against a server that long-polls (tests). After
	// a poll that returned a command the agent polls again at once.
	PollInterval time.Duration
	// Workers bounds the commands executing at once (default 16). The agent
	// does not poll while all workers are busy, so it never takes a command
	// it cannot start.
	Workers int

	// ShutdownGrace is how long running commands may continue after ctx is
	// cancelled (default 30 s). Commands still running then are killed and
	// reported Failed.
	ShutdownGrace time.Duration
	// Version is sent as x-amz-codedeploy-agent-version "cutover-<Version>"
	// (default "dev").
	Version string
	// ErrorBackoff returns the extra wait after the n-th consecutive failed
	// poll (n is 1..10). nil uses the official agent's 10,13,17,...,90 s.
	ErrorBackoff func(n int) time.Duration
	// BundleLimits caps what one revision bundle may unpack to (entries,
	// bytes, expansion ratio); zero fields take the bundle package defaults.
	BundleLimits bundle.Limits
	// NoHookLogStream keeps the hooks' output on the host: it is not
	// streamed to the server with PutHookLog, as by the official agent,
	// which does not know the extension. Only failures' log tails reach
	// the server, in the command's diagnostics.
	NoHookLogStream bool
	// Environ, when non-nil, replaces the agent's own environment as the
	// base environment of hook scripts (tests running several agents in one
	// process). nil gives hooks the agent's whole environment, as the
	// official agent does.
	Environ []string
}

// agent is one running agent; all state lives here.
type agent struct {
	cfg     Config
	log     *slog.Logger
	client  *protocol.Client
	layout  layout.Layout
	pinned  *x509.Certificate
	s3      fetch.S3Options
	github  fetch.GitHubOptions
	slots   chan struct{}
	workers sync.WaitGroup // commands and the Completes being retried

	mu      sync.Mutex
	reached chan struct{} // closed when a poll connects again after failing
	// handling holds the commands this agent runs or has results of still
	// to report. A server can hand a command out again (after taking a
	// deployment over, it re-queues the commands not acknowledged yet,
	// and this agent's acknowledgement may be on its way): a command
	// already here is not run a second time.
	handling map[string]bool
}

// claim records that the agent handles command id; false if it already
// does.
func (a *agent) claim(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.handling[id] {
		return false
	}
	if a.handling == nil {
		a.handling = make(map[string]bool)
	}
	a.handling[id] = true
	return true
}

func (a *agent) release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.handling, id)
}

// errShutdown is the cancellation cause of running commands when the grace
// period after shutdown has expired.
var errShutdown = errors.New("the agent was shut down")

func newAgent(cfg Config) (*agent, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("agent: Endpoint is required")
	}
	if cfg.Region == "" {
		return nil, errors.New("agent: Region is required")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("agent: Credentials are required")
	}
	if cfg.HostIdentifier == "" {
		return nil, errors.New("agent: HostIdentifier is required")
	}
	if cfg.RootDir == "" {
		return nil, errors.New("agent: RootDir is required")
	}
	if cfg.MaxRevisions == 0 {
		cfg.MaxRevisions = DefaultMaxRevisions
	}
	if cfg.MaxRevisions < 1 {
		// The official agent refuses to start too.
		return nil, fmt.Errorf("agent: MaxRevisions %d is below 1", cfg.MaxRevisions)
	}
	if cfg.S3Endpoint == "" {
		cfg.S3Endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
	}
	switch cfg.S3Endpoint {
	case "":
		cfg.S3Endpoint = cfg.Endpoint
	case S3EndpointAWS:
		cfg.S3Endpoint, cfg.S3PathStyle = "", false
	}
	if cfg.GitHubAPIURL == "" {
		cfg.GitHubAPIURL = DefaultGitHubAPIURL
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.ErrorBackoff == nil {
		cfg.ErrorBackoff = officialBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		// No overall timeout: bundle downloads may take long. The command
		// service calls carry their own 80 s deadline.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = protocol.ReadTimeout
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	a := &agent{
		cfg:    cfg,
		log:    cfg.Logger.With("host", cfg.HostIdentifier),
		layout: layout.Layout{Root: cfg.RootDir},
		slots:  make(chan struct{}, cfg.Workers),
	}
	if cfg.SpecCertFile != "" {
		cert, err := deployspec.LoadCertificate(cfg.SpecCertFile)
		if err != nil {
			return nil, fmt.Errorf("agent: spec signing certificate: %w", err)
		}
		a.pinned = cert
	}
	a.client = &protocol.Client{
		Endpoint:     cfg.Endpoint,
		Region:       cfg.Region,
		Credentials:  cfg.Credentials,
		HTTPClient:   cfg.HTTPClient,
		AgentVersion: "cutover-" + cfg.Version,
		Logger:       a.log,
	}
	a.s3 = fetch.S3Options{
		Endpoint:    cfg.S3Endpoint,
		PathStyle:   cfg.S3PathStyle,
		Region:      cfg.Region,
		Credentials: cfg.Credentials,
		HTTPClient:  cfg.HTTPClient,
	}
	a.github = fetch.GitHubOptions{APIURL: cfg.GitHubAPIURL, HTTPClient: cfg.HTTPClient}
	return a, nil
}

// officialBackoff is the Ruby agent's extra sleep after the n-th consecutive
// failed run: floor(1.2675^n · 90/1.2675^10) seconds, i.e. 10,13,...,90 s.
func officialBackoff(n int) time.Duration {
	table := [...]int{10, 13, 17, 21, 27, 34, 44, 56, 71, 90}
	n = max(1, min(n, len(table)))
	return time.Duration(table[n-1]) * time.Second
}

// Run runs the agent until ctx is cancelled. It first reports what a
// previous run left: results the server had not yet taken, and commands left
// in progress (§9). It then polls the server and executes commands in a
// bounded worker pool while it keeps polling.
//
// Every result is saved under RootDir before its PutHostCommandComplete and
// retried with backoff (at most 30 s apart, and at once when a poll connects
// again after failing) until the server takes it or refuses it for
// good; a result still unsent at shutdown is sent by the next start.
//
// On cancellation it stops polling, gives running commands
// Config.ShutdownGrace to finish and try their Complete once, then kills what
// is left (reporting it Failed) and returns nil. Errors talking to the server
// never end Run; they are logged and backed off. Run returns an error only
// for an invalid Config or an unusable RootDir.
func Run(ctx context.Context, cfg Config) error {
	a, err := newAgent(cfg)
	if err != nil {
		return err
	}
	return a.run(ctx)
}

func (a *agent) run(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.RootDir, 0o755); err != nil {
		return fmt.Errorf("agent: root dir: %w", err)
	}
	// Commands run under execCtx, which outlives ctx by the grace period.
	execCtx, killCommands := context.WithCancelCause(context.WithoutCancel(ctx))
	defer killCommands(nil)

	a.log.InfoContext(ctx, "agent started", "endpoint", a.cfg.Endpoint, "root_dir", a.cfg.RootDir, "workers", a.cfg.Workers)
	// What a previous run left to report goes out before the first poll;
	// what the server cannot take yet is retried alongside the polling.
	// Only the files present at start belong to a previous run.
	for _, o := range a.recoverResults(ctx) {
		if a.attempt(ctx, o) {
			continue
		}
		id := o.c.HostCommandIdentifier
		a.claim(id)
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			defer a.release(id)
			a.report(ctx, o)
		}()
	}
	failures := 0
	for ctx.Err() == nil {
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		start := time.Now()
		pctx := ctx
		if failures > 0 {
			// The server is back as soon as a poll connects, not when
			// that long poll returns (up to its wait later): wake the
			// Completes waiting to retry then.
			pctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
				if !c.Reused {
					a.serverBack()
				}
			}})
		}
		hc, err := a.poll(pctx)
		if err != nil {
			<-a.slots
			if ctx.Err() != nil {
				break
			}
			failures = min(failures+1, 10)
			// A poll that failed late (a long poll cut off) has waited
			// already.
			wait := max(0, a.cfg.ErrorBackoff(failures)-time.Since(start))
			a.log.ErrorContext(ctx, "poll failed", "err", err, "consecutive_failures", failures, "backoff", wait)
			sleep(ctx, a.cfg.PollInterval+wait)
			continue
		}
		if failures > 0 {
			a.serverBack()
		}
		failures = 0
		if hc == nil {
			<-a.slots
			sleep(ctx, a.cfg.PollInterval)
			continue
		}
		id := aws.ToString(hc.HostCommandIdentifier)
		if !a.claim(id) {
			<-a.slots
			a.log.WarnContext(ctx, "command handed out again while this agent handles it; not run twice", "host_command_id", id, "command", aws.ToString(hc.CommandName))
			continue
		}
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			defer a.release(id)
			o := a.process(execCtx, hc)
			// The slot is for executing; a Complete the server cannot take
			// yet must not keep the host from its next command.
			<-a.slots
			if o != nil {
				a.report(ctx, o)
			}
		}()
	}

	done := make(chan struct{})
	go func() { a.workers.Wait(); close(done) }()
	select {
	case <-done:
		a.log.Info("agent stopped")
		return nil
	default:
	}
	a.log.Info("agent stopping; waiting for running commands", "grace", a.cfg.ShutdownGrace)
	grace := time.NewTimer(a.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		a.log.Info("agent stopped")
		return nil
	case <-grace.C:
	}
	a.log.Warn("grace period over; killing running commands")
	killCommands(errShutdown)
	// Killed commands still send their Complete; bound the wait for that.
	select {
	case <-done:
	case <-time.After(hook.DefaultKillGrace + completeTimeout + 5*time.Second):
		a.log.Error("commands did not finish after being killed; exiting anyway")
	}
	a.log.Info("agent stopped")
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
