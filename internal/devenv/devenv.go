// Package devenv assembles `cutover dev`: a server on the embedded SQLite
// default with its embedded revision store (a bucket ready), local agents
// registered as on-premises instances, and a builtin load balancer, all in
// one process, so a newcomer can run a real deployment in five minutes.
package devenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// Options configures a dev environment.
type Options struct {
	// DataDir holds the database and the agents' files; empty means a new
	// temporary directory, removed by Close.
	DataDir     string
	Listen      string // API, default 127.0.0.1:8443; loopback only (plain HTTP)
	WebListen   string // builtin load balancer, default 127.0.0.1:8080
	Agents      int    // local agents, none when 0
	AppBasePort int    // agent i's application port is AppBasePort+i, default 9081
	Minute      time.Duration
	Logger      *slog.Logger
	// AccessKeyID/SecretAccessKey fix the dev key (default: a fresh one).
	AccessKeyID, SecretAccessKey string
	// RootAccount is the account of the dev key; default 000000000000.
	RootAccount string
	// Open accepts any access key id as the dev account's administrator
	// (server.Config.Open).
	Open bool
}

// TargetGroup is the name of the dev load balancer's target group.
const TargetGroup = "cutover-dev-web"

// Bucket is the bucket created in the server's revision store; any other
// bucket is created on first use.
const Bucket = "cutover-dev"

// Env is a running dev environment.
type Env struct {
	Server    *server.Server
	URL       string
	S3URL     string // the server's own URL: it serves S3 too
	WebURL    string
	AccessKey string
	SecretKey string
	Region    string
	Instances []string
	// AppPorts are the ports the instances' applications are told to
	// listen on ($PORT in hooks), in the order of Instances.
	AppPorts []int
	DataDir  string

	removeDir bool
	// session marks the environment of every hook the local agents run,
	// so that Close finds the processes they left behind.
	session string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
}

// loopback reports whether addr (host:port) names a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// onLoopback gives a host-less address (":port") the loopback host.
func onLoopback(addr string) string {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// Start brings the environment up; Close (or ctx's end) takes it down.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8443"
	}
	if o.WebListen == "" {
		o.WebListen = "127.0.0.1:8080"
	}
	// "All on 127.0.0.1": a port alone (":0", ":8443") is a loopback port
	// here, where a Go listener would take every interface.
	o.Listen, o.WebListen = onLoopback(o.Listen), onLoopback(o.WebListen)
	if !loopback(o.Listen) {
		return nil, fmt.Errorf("dev: %s is not a loopback address: the dev environment serves plain HTTP with a well-known layout; use cutover server for other addresses", o.Listen)
	}
	if o.Agents < 0 {
		return nil, fmt.Errorf("dev: %d agents", o.Agents)
	}
	if o.AppBasePort == 0 {
		o.AppBasePort = 9081
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Env{Region: "us-east-1", cancel: cancel, errs: make(chan error, 8), DataDir: o.DataDir, session: rand.Text()}
	if e.DataDir == "" {
		d, err := os.MkdirTemp("", "cutover-dev-")
		if err != nil {
			cancel()
			return nil, err
		}
		e.DataDir, e.removeDir = d, true
	}

	srv, err := server.New(ctx, server.Config{
		Listen:              o.Listen,
		DataDir:             e.DataDir,
		InsecureHTTP:        true, // loopback only: see Options.Listen
		Logger:              o.Logger,
		RootAccount:         o.RootAccount,
		Open:                o.Open,
		Minute:              o.Minute,
		PickupTimeout:       time.Minute,
		RootAccessKeyID:     o.AccessKeyID,
		RootSecretAccessKey: o.SecretAccessKey,
		S3AutoBucket:        true,
		TargetGroups: []traffic.TargetGroupConfig{{
			Name: TargetGroup, Driver: traffic.DriverBuiltin, Listen: o.WebListen, Port: o.AppBasePort,
			HealthCheck:         traffic.HealthCheck{Path: "/", Interval: 500 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 2},
			DeregistrationDelay: 2 * time.Second,
		}},
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.Server = srv
	if err := srv.Revisions.CreateBucket(Bucket, o.RootAccount); err != nil {
		e.Close()
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		e.Close()
		return nil, err
	}
	e.URL = srv.URL()
	e.S3URL = e.URL
	// The bound address, not the configured one: port 0 picks a port.
	web, err := srv.Traffic.Addr(TargetGroup)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.WebURL = "http://" + web.String()
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.errs <- srv.Serve(ctx) }()

	if o.AccessKeyID != "" {
		e.AccessKey, e.SecretKey = o.AccessKeyID, o.SecretAccessKey
	} else {
		k, err := srv.Keys.Create(ctx, "dev", o.RootAccount)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.AccessKey, e.SecretKey = k.AccessKeyID, k.SecretAccessKey
	}
	admin := credentials.NewStaticCredentialsProvider(e.AccessKey, e.SecretKey, "")
	for i := 1; i <= o.Agents; i++ {
		name := fmt.Sprintf("dev-%d", i)
		port := o.AppBasePort + i - 1
		c, err := registerWithRetry(ctx, agent.RegisterRequest{
			Endpoint: e.URL, Region: e.Region, AdminCredentials: admin, InstanceName: name,
			Tags: map[string]string{"env": "dev", "fleet": name, "cutover:address": fmt.Sprintf("127.0.0.1:%d", port)},
		})
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		e.Instances = append(e.Instances, name)
		e.AppPorts = append(e.AppPorts, port)
		cfg := agent.Config{
			Endpoint: e.URL, Region: e.Region, Credentials: c.CredentialsProvider(), HostIdentifier: c.HostIdentifier(),
			RootDir: filepath.Join(e.DataDir, "agents", name), S3Endpoint: e.S3URL, S3PathStyle: true,
			Logger: o.Logger.With("agent", name), Version: "dev",
			// Hooks learn the port their application should listen on.
			Environ: append(hookBaseEnv(), fmt.Sprintf("PORT=%d", port), "CUTOVER_INSTANCE="+name, sessionVar+"="+e.session),
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := agent.Run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
				e.errs <- fmt.Errorf("agent %s: %w", name, err)
			}
		}()
	}
	return e, nil
}

func registerWithRetry(ctx context.Context, r agent.RegisterRequest) (agent.OnPremConfig, error) {
	var last error
	for range 50 {
		c, err := agent.Register(ctx, r)
		if err == nil {
			return c, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return agent.OnPremConfig{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return agent.OnPremConfig{}, last
}

// Credentials returns the dev key as an SDK credentials provider.
func (e *Env) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(e.AccessKey, e.SecretKey, "")
}

// Errors reports failures of the server or agents.
func (e *Env) Errors() <-chan error { return e.errs }

// Close stops everything it started: the agents (which end their running
// hooks), whatever the hooks left running in the background (the demo's
// web servers), the server, the bucket endpoint, and the temporary data
// directory if Start made it.
func (e *Env) Close() error {
	e.cancel()
	e.wg.Wait()
	var errs []error
	if err := killSession(e.session, 3*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("stop hook processes: %w", err))
	}
	if e.Server != nil {
		errs = append(errs, e.Server.Close())
	}
	if e.removeDir {
		errs = append(errs, os.RemoveAll(e.DataDir))
	}
	return errors.Join(errs...)
}

// hookBaseEnv is the environment local agents give their hooks: the
// process environment without the dev server's credentials.
func hookBaseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "CUTOVER_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
