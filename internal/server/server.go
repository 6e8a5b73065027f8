// Package server assembles a Cutover server: store, keys, SigV4
// authentication, the CodeDeploy API, the agent command protocol, the
// deployment runner and the traffic routers, behind one HTTP listener.
package server

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/alarm"
	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/dashboard"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/metrics"
	"github.com/cutoverhq/cutover/internal/revstore"
	"github.com/cutoverhq/cutover/internal/secretbox"
	"github.com/cutoverhq/cutover/internal/sigv4"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
	"github.com/cutoverhq/cutover/internal/sts"
	"github.com/cutoverhq/cutover/internal/tlsca"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// Target prefixes served on the one listener.
const (
	PrefixCodeDeploy       = "CodeDeploy_20141006"
	PrefixCommands         = "CodeDeployCommandService_v20141006"
	PrefixCommandsSecure   = "CodeDeployCommandService"
	PrefixAdmin            = "CutoverAdmin_20261122"
	SigningCodeDeploy      = "codedeploy"
	SigningCommands        = "codedeploy-commands"
	SigningCommandsSecured = "codedeploy-commands-secure"
)

// Config configures a server.
type Config struct {
	Listen   string // host:port; default 127.0.0.1:8443
	DataDir  string // SQLite database, server key, spec-signing certificate
	Database string // postgres://… to use PostgreSQL instead of SQLite
	// DatabaseMaxConns bounds this replica's PostgreSQL connections;
	// default postgres.MaxConns.
	DatabaseMaxConns int
	// TLSCert and TLSKey serve HTTPS with a certificate of your own.
	// Without them the server serves HTTPS with a certificate from its own
	// CA, kept in DataDir (see internal/tlsca), unless InsecureHTTP.
	TLSCert string
	TLSKey  string
	// Advertise lists further host names and IP addresses clients reach
	// the server under, for the generated certificate.
	Advertise []string
	// InsecureHTTP serves plain HTTP: for tests and loopback development.
	InsecureHTTP bool

	// RootAccessKeyID and RootSecretAccessKey, when set, are ensured to exist
	// as an administrator key of RootAccount (default 000000000000).
	RootAccessKeyID     string
	RootSecretAccessKey string
	RootAccount         string
	// Open accepts requests signed with any unknown access key id as
	// RootAccount's administrator (see open.go). Only `cutover dev` sets it.
	Open bool

	Logger *slog.Logger
	Now    func() time.Time

	// Minute is the length of an API minute (blue/green waits); default 1m.
	Minute time.Duration
	// PickupTimeout fails an event no agent acknowledged in time; default 5m.
	PickupTimeout time.Duration
	// EventTimeout fails an acknowledged event not completed in time;
	// default 65m (the 3600 s hook maximum plus margin).
	EventTimeout time.Duration
	// PollWait bounds PollHostCommand's long poll; default 40s.
	PollWait time.Duration
	// TrafficConfig is a YAML file of target groups; TargetGroups adds more.
	TrafficConfig string
	TargetGroups  []traffic.TargetGroupConfig
	// TeardownCommand and TeardownWebhook are called when blue/green
	// retires original instances.
	TeardownCommand string
	TeardownWebhook string
	// SpecFormat is "PKCS7/JSON" (default; the official agent needs it) or
	// "TEXT/JSON".
	SpecFormat string
	// SpecCert and SpecKey sign the specifications (PEM); default: a
	// self-signed pair created once and kept (key sealed) in the database,
	// shared by every replica.
	SpecCert, SpecKey string
	// S3Disabled turns off the embedded revision store (S3 protocol on the
	// same listener, objects in DataDir/revisions).
	S3Disabled bool
	// S3MaxObjectSize bounds one uploaded object or part; default 5 GiB.
	S3MaxObjectSize int64
	// S3AutoBucket creates buckets on first use (cutover dev).
	S3AutoBucket bool
	// AuditRetention is how long audit entries are kept; default 90 days.
	AuditRetention time.Duration
	// DeliveryRetention is how long trigger deliveries that ended
	// (Delivered or Failed) are kept; default 30 days.
	DeliveryRetention time.Duration

	// TriggersConfig maps SNS topic ARNs to webhooks (trigger.File);
	// AlarmsConfig defines alarms (alarm.File). AlarmPollInterval, when
	// set, overrides the file's pollInterval; TriggerBackoff the delivery
	// retry schedule (tests).
	TriggersConfig    string
	AlarmsConfig      string
	AlarmPollInterval time.Duration
	TriggerBackoff    func(attempt int) time.Duration

	// Bounds on clients; zero values take the defaults.
	// ReadHeaderTimeout bounds the TLS handshake and the request headers
	// (DefaultReadHeaderTimeout); BodyTimeout bounds a request body
	// (awsjson.DefaultBodyTimeout); MaxConnections bounds open connections
	// (DefaultMaxConnections).
	ReadHeaderTimeout time.Duration
	BodyTimeout       time.Duration
	MaxConnections    int
	// ReplicaID names this replica in deployment leases; default random.
	ReplicaID string
	// HookLogRetention is how long hook output is kept; default 7 days.
	HookLogRetention time.Duration
}

// OpenStore opens the configured database: PostgreSQL for a postgres URL,
// else SQLite in the data directory.
func OpenStore(ctx context.Context, dataDir, database string) (store.Store, error) {
	if isPostgres(database) {
		db, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, err
		}
		// Every writer announces its changes, `cutover keys` included, so
		// that every replica's caches hear of them.
		db.NotifyChanges(watchedKinds(), nil)
		return db, nil
	}
	if database != "" {
		return nil, fmt.Errorf("unsupported --database %q: give a postgres:// URL, or leave it empty for SQLite in --data-dir", database)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(dataDir, "cutover.db"))
}

// OpenSealer returns the box sealing secrets at rest: the key comes from
// CUTOVER_SERVER_KEY (hex; needed when several replicas share PostgreSQL)
// or from the data directory's server.key, created on first start.
func OpenSealer(dataDir string) (*secretbox.Box, error) {
	if key, ok, err := secretbox.KeyFromEnv("CUTOVER_SERVER_KEY"); err != nil {
		return nil, err
	} else if ok {
		return secretbox.NewBox(key)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	return secretbox.LoadOrCreateKey(filepath.Join(dataDir, "server.key"))
}

// OpenCheckedSealer returns the box sealing st's secrets, as OpenSealer
// finds it, after checking that it opens what st already holds. The
// server and the offline tools (`cutover keys`, `github-token`) share it,
// so that no tool seals a secret the server cannot open: with the database
// already in use and neither CUTOVER_SERVER_KEY nor dataDir/server.key
// present, it refuses rather than creating a key of its own (as happens
// when the server's unit file sets CUTOVER_SERVER_KEY and a shell does not).
func OpenCheckedSealer(ctx context.Context, st store.Store, dataDir string) (*secretbox.Box, error) {
	source := "CUTOVER_SERVER_KEY"
	if os.Getenv("CUTOVER_SERVER_KEY") == "" {
		path := filepath.Join(dataDir, "server.key")
		source = path
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			if _, err := store.Get(ctx, st, "meta", sealCheckKey); err == nil {
				return nil, fmt.Errorf("this database's secrets are sealed with a server key that is not here: %s does not exist and CUTOVER_SERVER_KEY is not set; set CUTOVER_SERVER_KEY to the server's key (as its unit file or environment does) or give the --data-dir holding its server.key", path)
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
	}
	box, err := OpenSealer(dataDir)
	if err != nil {
		return nil, err
	}
	if err := checkSealer(ctx, st, box); err != nil {
		return nil, fmt.Errorf("server key from %s: %w", source, err)
	}
	return box, nil
}

// Server is a running Cutover server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	Store   store.Store
	Keys    *keys.Manager
	API     *api.Server
	Runner  *deploy.Runner
	Traffic *traffic.Mux
	// targetGroups are the configured target groups by name.
	targetGroups map[string]traffic.TargetGroupConfig
	// Revisions is the embedded revision store; nil when disabled.
	Revisions *revstore.Store
	// Changes reports the store's changes (every replica's on PostgreSQL).
	Changes *changefeed.Feed
	// HookLogs keeps the hook output agents stream.
	HookLogs *hooklog.Service
	ui       *dashboard.Handler
	sealer   *secretbox.Box
	ca       *tlsca.Authority
	tls      bool
	handler  http.Handler
	http     *http.Server
	listener net.Listener
	closers  []func() error

	Metrics   *metrics.Metrics
	Triggers  *trigger.Notifier // nil without TriggersConfig
	Alarms    *alarm.Monitor    // nil without AlarmsConfig
	alarmFile *alarm.File
}

// New opens the store and builds the server; Start begins serving.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8443"
	}
	if cfg.RootAccount == "" {
		cfg.RootAccount = keys.DefaultAccount
	}
	if err := keys.ValidAccount(cfg.RootAccount); err != nil {
		return nil, fmt.Errorf("root account: %w", err)
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	st, err := OpenStore(ctx, cfg.DataDir, cfg.Database)
	if err != nil {
		return nil, err
	}
	if pg, ok := st.(*postgres.DB); ok && cfg.DatabaseMaxConns > 0 {
		pg.SetMaxConns(cfg.DatabaseMaxConns)
	}
	sealer, err := OpenCheckedSealer(ctx, st, cfg.DataDir)
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, Store: st, sealer: sealer}
	s.closers = append(s.closers, st.Close)
	if err := s.openFeed(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.Keys = &keys.Manager{Store: st, Sealer: sealer, Now: cfg.Now, CacheFor: keyCacheFor, Version: keyVersion(st)}
	if err := s.initKeys(ctx); err != nil {
		s.Close()
		return nil, err
	}
	pageKey, err := s.pageKey(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if cfg.TLSCert == "" && cfg.TLSKey == "" && !cfg.InsecureHTTP {
		if s.ca, err = s.sharedCA(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.API = api.New(st, sealer, cfg.Logger)
	s.API.Version = keyVersion(st)
	s.API.Now = cfg.Now
	s.API.PageKey = pageKey
	if err := s.observability(); err != nil {
		s.Close()
		return nil, err
	}
	s.followCaches()

	if err := s.startRunner(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.startPruner()
	s.startObservers(ctx)

	verifier := &sigv4.Verifier{
		Keys:     sigv4.KeyLookupFunc(s.keyLookup()),
		Services: []string{SigningCodeDeploy, SigningCommands, SigningCommandsSecured},
		Now:      cfg.Now,
	}
	hookLogs := s.startHookLogs()
	h := &awsjson.Handler{
		Auth:        authenticator{verifier},
		Logger:      cfg.Logger,
		BodyTimeout: cfg.BodyTimeout,
		Routes: []awsjson.Route{
			{Prefix: PrefixCodeDeploy, SigningNames: []string{SigningCodeDeploy}, Service: s.instrument("codedeploy", s.guard(access.CodeDeploy, s.API.Serve))},
			{Prefix: PrefixAdmin, SigningNames: []string{SigningCodeDeploy}, Service: s.guard(access.AdminAPI, s.serveAdmin)},
			{Prefix: PrefixCommands, SigningNames: []string{SigningCommands, SigningCommandsSecured}, Service: s.instrument("commands", s.guard(access.Agent, s.Runner.ServeCommands))},
			{Prefix: PrefixCommandsSecure, SigningNames: []string{SigningCommandsSecured, SigningCommands}, Service: s.instrument("commands", s.guard(access.Agent, s.Runner.ServeCommands))},
			hookLogs,
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	// The CA certificate is public; clients check it against the
	// fingerprint the operator gives them (cutover agent register).
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, r *http.Request) {
		if s.ca == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.ca.PEM)
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	// Unsigned: Prometheus scrapes without credentials. The revision store
	// leaves unsigned /metrics to the server (revstore.IsS3Request).
	mux.Handle("GET /metrics", s.Metrics.Handler())
	s.ui = s.newDashboard(authenticator{verifier})
	mux.Handle("/ui", s.ui)
	mux.Handle("/ui/", s.ui)
	// The official agent's start-up check does GET / over TLS and accepts
	// any status; STS's query protocol is told apart by its signing scope
	// or form (sts.IsRequest); everything else is the JSON protocol.
	mux.Handle("/", withKeyMemo(s.withSTS(h)))
	if err := s.openRevisions(); err != nil {
		s.Close()
		return nil, err
	}
	s.handler = s.withRevisions(mux)
	return s, nil
}

func (s *Server) startRunner(ctx context.Context) error {
	cfg := s.cfg
	tgs := append([]traffic.TargetGroupConfig{}, cfg.TargetGroups...)
	if cfg.TrafficConfig != "" {
		more, err := LoadTrafficFile(cfg.TrafficConfig)
		if err != nil {
			return err
		}
		tgs = append(tgs, more...)
	}
	var mux *traffic.Mux
	var byName map[string]traffic.TargetGroupConfig
	if len(tgs) > 0 {
		var err error
		mux, byName, err = buildRouters(tgs, cfg.RootAccount, s.log, s.Metrics)
		if err != nil {
			return fmt.Errorf("traffic: %w", err)
		}
		s.Traffic = mux
		s.closers = append(s.closers, mux.Close)
	}
	var signer deploy.SpecSigner = deploy.TextSigner{}
	switch cfg.SpecFormat {
	case "TEXT/JSON":
	case "", "PKCS7/JSON":
		var p *deploy.PKCS7Signer
		var err error
		if cfg.SpecCert != "" || cfg.SpecKey != "" {
			p, err = deploy.LoadSpecSigner(cfg.SpecCert, cfg.SpecKey)
		} else {
			p, err = sharedSpecSigner(ctx, s.Store, s.sealer, cfg.DataDir)
		}
		if err != nil {
			return err
		}
		signer = p
	default:
		return fmt.Errorf("unknown spec format %q: use PKCS7/JSON or TEXT/JSON", cfg.SpecFormat)
	}
	ecfg := engine.Config{Minute: cfg.Minute, PickupTimeout: cfg.PickupTimeout, EventTimeout: cfg.EventTimeout,
		StartFailureDelay: time.Second}
	if ecfg.Minute <= 0 {
		ecfg.Minute = time.Minute
	}
	if ecfg.PickupTimeout <= 0 {
		ecfg.PickupTimeout = 5 * time.Minute
	}
	if ecfg.EventTimeout <= 0 {
		ecfg.EventTimeout = 65 * time.Minute
	}
	s.targetGroups = byName
	s.Runner = deploy.New(deploy.Config{
		Store: s.Store, Logger: s.log, Now: cfg.Now, Engine: ecfg,
		Traffic: mux, TargetGroups: byName, PollWait: cfg.PollWait,
		Pager: s.API, Spec: signer, Sealer: s.sealer,
		InstanceOf:   s.API.InstanceOfCaller,
		Teardown:     teardown(cfg.TeardownCommand, cfg.TeardownWebhook, s.log),
		Observer:     s.observer(),
		Destinations: destinations{s},
		Changes:      s.Changes, ReplicaID: cfg.ReplicaID,
		// One process per SQLite file: leases of an earlier run are stale.
		Exclusive: !isPostgres(cfg.Database),
	})
	s.API.Deployments = s.Runner
	s.API.TargetGroups = s.checkTargetGroups
	s.API.OnDeleteApplication = s.Runner.DeleteApplicationDeployments
	s.API.OnRename = s.Runner.RenameDeployments
	if err := s.Runner.Start(ctx); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Runner.Close)
	return nil
}

// pageKey returns the key that signs pagination tokens, kept in the store
// so tokens stay valid across restarts and replicas.
func (s *Server) pageKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, "meta", "page-key")
		if err == nil {
			key, err = hex.DecodeString(string(b))
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		key = make([]byte, 32)
		if _, err := randRead(key); err != nil {
			return err
		}
		return tx.Put(ctx, "meta", "page-key", []byte(hex.EncodeToString(key)))
	})
	return key, err
}

func (s *Server) lookupKey(ctx context.Context, id string) (sigv4.Credentials, error) {
	k, secret, err := s.Keys.Lookup(ctx, id)
	if errors.Is(err, keys.ErrUnopenable) {
		// The caller cannot tell this key from an unknown one (a 500
		// would tell it the key exists); the operator learns why here.
		s.log.ErrorContext(ctx, "access key refused: its secret was sealed under another server key; create it again with the server's key (CUTOVER_SERVER_KEY or the data directory's server.key)",
			"accessKeyId", id, "err", err)
	}
	if errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrUnopenable) {
		return sigv4.Credentials{}, fmt.Errorf("%w: %w", sigv4.ErrUnknownKey, err)
	}
	if err != nil {
		return sigv4.Credentials{}, err
	}
	rememberKey(ctx, k)
	return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: secret, Account: k.Account, PrincipalARN: k.Arn}, nil
}

type authenticator struct{ v *sigv4.Verifier }

func (a authenticator) Authenticate(ctx context.Context, r *http.Request) (awsjson.BodyCheck, error) {
	p, err := a.v.Begin(ctx, r)
	if err != nil {
		return nil, authError(err)
	}
	return func(body []byte) (awsjson.Caller, error) {
		id, err := p.Finish(body)
		if err != nil {
			return awsjson.Caller{}, authError(err)
		}
		return awsjson.Caller{AccessKeyID: id.AccessKeyID, Account: id.Account, Region: id.Region, Principal: id.PrincipalARN, Service: id.Service}, nil
	}, nil
}

// authError answers a SigV4 failure as AWS does; other errors are internal.
func authError(err error) error {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &awsjson.Error{Type: se.Code, Message: se.Message, Status: se.Status}
	}
	return err
}

// withSTS sends STS requests (GetCallerIdentity) to their handler and the
// rest to h.
func (s *Server) withSTS(h http.Handler) http.Handler {
	st := sts.New(sigv4.KeyLookupFunc(s.keyLookup()), s.cfg.Now, s.log)
	st.BodyTimeout = s.cfg.BodyTimeout
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sts.IsRequest(r) {
			st.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Sealer returns the box sealing secrets at rest (the CLI's GitHub tokens).
func (s *Server) Sealer() *secretbox.Box { return s.sealer }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listener; Addr is valid afterwards.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	maxConns := s.cfg.MaxConnections
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	// The limit goes under TLS: net/http must see the *tls.Conn itself to
	// serve HTTP/2.
	ln = newLimitListener(ln, maxConns)
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	switch {
	case s.cfg.TLSCert != "" || s.cfg.TLSKey != "":
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tcfg.Certificates = []tls.Certificate{cert}
	case s.ca != nil:
		iss := &tlsca.Issuer{CA: s.ca, Hosts: tlsca.Hosts(s.cfg.Listen, s.cfg.Advertise), Now: s.cfg.Now}
		if _, err := iss.GetCertificate(nil); err != nil {
			ln.Close()
			return err
		}
		tcfg.GetCertificate = iss.GetCertificate
	default:
		s.listener = ln
		return nil
	}
	s.listener = tls.NewListener(ln, tcfg)
	s.tls = true
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the endpoint clients use.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.Addr()
}

// caRequest reports whether r is the unauthenticated download of the CA
// certificate, which would otherwise look like an anonymous S3 request for
// a bucket named ca.pem.
func caRequest(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/ca.pem" && r.Header.Get("Authorization") == ""
}

// CA returns the server's own certificate authority (PEM) and its SHA-256
// fingerprint, or nothing when the server does not use one (its own
// --tls-cert, or plain HTTP).
func (s *Server) CA() (pem []byte, fingerprint string) {
	if s.ca == nil {
		return nil, ""
	}
	return s.ca.PEM, s.ca.Fingerprint()
}

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	if s.listener == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	headerTimeout := s.cfg.ReadHeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = DefaultReadHeaderTimeout
	}
	// No ReadTimeout or WriteTimeout: they would cut PollHostCommand's long
	// poll. The awsjson handler bounds each body with its own deadline.
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(s.Runner.StopPolls)
	s.http.RegisterOnShutdown(s.ui.Shutdown)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.listener) }()
	if s.ca != nil {
		// Agents are registered with this fingerprint (cutover agent
		// register --ca-fingerprint).
		s.log.Info("cutover server listening", "url", s.URL(), "ca_file", s.ca.Path, "ca_sha256", s.ca.Fingerprint())
	} else {
		s.log.Info("cutover server listening", "url", s.URL())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	<-errc
	return err
}

// Close releases the store and background work.
func (s *Server) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
