// Command cutover is the Cutover server, host agent and tooling.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/store/postgres"
)

const usage = `cutover — self-hosted deployments that speak the AWS CodeDeploy API

Usage:
  cutover server [flags]         serve the CodeDeploy API, the agent protocol and traffic
  cutover dev [flags]            a server on an embedded default with a local agent, bucket and load balancer
  cutover agent [flags]          run the host agent
  cutover agent register [flags] create a key for this host, register and tag it, write the agent config
  cutover keys create --user NAME --role ROLE [--applications A,A/G] [--regions R,R] [--account ID]
                                 roles: admin, deployer, read-only, host (host: --instance NAME --region R)
  cutover keys list
  cutover keys revoke ACCESS_KEY_ID
  cutover audit [--since T] [--until T] [--key ID] [--operation OP] [--outcome CODE] [--limit N] [--json]
  cutover watch DEPLOYMENT_ID | --group APP/GROUP   follow a deployment live; exit 0 when it succeeds
  cutover logs DEPLOYMENT_ID [--instance NAME] [--follow]   print its hooks' output
  cutover github-token add --name NAME --token TOKEN [--account ID] [--region R]
  cutover fleet APPLICATION/GROUP  the instances a deployment group deploys to now
  cutover deliveries [DEPLOYMENT_ID] [--limit N]   trigger notification delivery log
  cutover version                print the version, commit and build time

Flags may come before or after arguments. Every flag can also be set as
CUTOVER_<FLAG> in the environment or in a YAML --config file.
Run 'cutover <command> -h' for a command's flags; -h never changes anything.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutover:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	// The short-lived commands log only warnings, in the text format the
	// long-running ones default to; those replace this with their own.
	if _, err := processLogger(stderr, "warn", "text"); err != nil {
		return err
	}
	switch args[0] {
	case "server":
		return runServer(ctx, args[1:], stderr)
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "agent":
		// register may follow flags, as any argument may.
		if i, _ := findSubcommand(args[1:]); i >= 0 && args[i+1] == "register" {
			return runAgentRegister(ctx, slices.Concat(args[1:i+1], args[i+2:]), stdout, stderr)
		}
		return runAgent(ctx, args[1:], stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout)
	case "audit":
		return runAudit(ctx, args[1:], stdout)
	case "deliveries":
		return runDeliveries(ctx, args[1:], stdout)
	case "watch":
		return runWatch(ctx, args[1:], stdout, stderr)
	case "logs":
		return runLogs(ctx, args[1:], stdout, stderr)
	case "github-token":
		return runGitHubToken(ctx, args[1:], stdout)
	case "fleet":
		return runFleet(ctx, args[1:], stdout)
	case "version":
		return runVersion(args[1:], stdout)
	case "--version", "-v":
		return runVersion(nil, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// serverFlags declares the flags shared by server and dev.
type serverFlags struct {
	listen, dataDir, database, tlsCert, tlsKey, logLevel string
	trafficConfig, teardownCommand, teardownWebhook      string
	specFormat, specCert, specKey                        string
	minute, pickupTimeout, eventTimeout, pollWait        time.Duration
	logFormat                                            string
	rootAccount                                          string
	s3                                                   s3Flags
	observe                                              observeFlags
	tls                                                  tlsFlags
	hookLogRetention, auditRetention, deliveryRetention  time.Duration
	databaseMaxConns                                     int
}

func (f *serverFlags) declare(fs *flag.FlagSet, listenDefault, dataDirDefault string) {
	fs.StringVar(&f.listen, "listen", listenDefault, "address to listen on")
	fs.StringVar(&f.dataDir, "data-dir", dataDirDefault, "directory for the SQLite database, the server key and the spec-signing certificate")
	fs.StringVar(&f.database, "database", "", "postgres://… URL to use PostgreSQL instead of SQLite")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS; agents on other hosts need it)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log line format: text or json")
	fs.StringVar(&f.rootAccount, "root-account", keys.DefaultAccount, "12-digit account of the root key (CUTOVER_ROOT_ACCESS_KEY_ID)")
	fs.StringVar(&f.trafficConfig, "traffic-config", "", "YAML file defining target groups and their router drivers")
	fs.StringVar(&f.teardownCommand, "teardown-command", "", "command run (with CUTOVER_INSTANCES set) when blue/green terminates original instances")
	fs.StringVar(&f.teardownWebhook, "teardown-webhook", "", "URL POSTed a JSON list of instances when blue/green terminates original instances")
	fs.StringVar(&f.specFormat, "spec-format", "PKCS7/JSON", "deployment specification envelope: PKCS7/JSON (the official agent needs it) or TEXT/JSON")
	fs.StringVar(&f.specCert, "spec-cert", "", "PEM certificate signing deployment specifications (default: self-signed, in --data-dir)")
	fs.StringVar(&f.specKey, "spec-key", "", "PEM private key of --spec-cert")
	fs.DurationVar(&f.minute, "minute", time.Minute, "length of one API minute (blue/green waits); shorten it for tests and demos")
	fs.DurationVar(&f.pickupTimeout, "pickup-timeout", 5*time.Minute, "fail a lifecycle event no agent picked up within this time")
	fs.DurationVar(&f.eventTimeout, "event-timeout", 65*time.Minute, "fail a lifecycle event not completed this long after the agent acknowledged it")
	fs.DurationVar(&f.pollWait, "poll-wait", 40*time.Second, "longest PollHostCommand long-poll (agents time out at 80 s)")
	f.s3.declare(fs)
	f.observe.declare(fs)
	f.tls.declare(fs)
	fs.DurationVar(&f.hookLogRetention, "hook-log-retention", 7*24*time.Hour, "how long the hook output agents stream is kept")
	fs.DurationVar(&f.auditRetention, "audit-retention", 90*24*time.Hour, "how long audit log entries are kept")
	fs.DurationVar(&f.deliveryRetention, "delivery-retention", 30*24*time.Hour, "how long trigger deliveries that ended are kept")
	fs.IntVar(&f.databaseMaxConns, "database-max-conns", postgres.MaxConns, "most connections this replica opens to PostgreSQL")
}

func (f *serverFlags) config(logger *slog.Logger) server.Config {
	c := server.Config{
		Listen:              f.listen,
		DataDir:             f.dataDir,
		Database:            f.database,
		DatabaseMaxConns:    f.databaseMaxConns,
		AuditRetention:      f.auditRetention,
		DeliveryRetention:   f.deliveryRetention,
		TLSCert:             f.tlsCert,
		TLSKey:              f.tlsKey,
		RootAccessKeyID:     os.Getenv("CUTOVER_ROOT_ACCESS_KEY_ID"),
		RootSecretAccessKey: os.Getenv("CUTOVER_ROOT_SECRET_ACCESS_KEY"),
		RootAccount:         f.rootAccount,
		Logger:              logger,
		Minute:              f.minute,
		PickupTimeout:       f.pickupTimeout,
		EventTimeout:        f.eventTimeout,
		PollWait:            f.pollWait,
		TrafficConfig:       f.trafficConfig,
		TeardownCommand:     f.teardownCommand,
		TeardownWebhook:     f.teardownWebhook,
		SpecFormat:          f.specFormat,
		SpecCert:            f.specCert,
		SpecKey:             f.specKey,
		Advertise:           f.tls.advertiseList(),
		InsecureHTTP:        f.tls.insecureHTTP,
		ReadHeaderTimeout:   f.tls.readHeaderTimeout,
		BodyTimeout:         f.tls.bodyTimeout,
		MaxConnections:      f.tls.maxConnections,
		HookLogRetention:    f.hookLogRetention,
	}
	f.s3.apply(&c)
	f.observe.apply(&c)
	return c
}

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	s := newSettings("server")
	s.about = serverAbout
	var f serverFlags
	f.declare(s.fs, "127.0.0.1:8443", "/var/lib/cutover")
	if err := s.parse(args); err != nil {
		return err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.tls.insecureHTTP && f.tlsCert != "" {
		return errors.New("--insecure-http and --tls-cert exclude each other")
	}
	logger, err := processLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, f.config(logger))
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Serve(ctx)
}

// storeFlags are the flags of the offline tools (keys, github-token), which
// open the same database as the server, while it runs.
func storeFlags(fs *flag.FlagSet) (dataDir, database *string) {
	dataDir = fs.String("data-dir", "/var/lib/cutover", "the server's data directory")
	database = fs.String("database", "", "postgres://… URL when the server uses PostgreSQL")
	return dataDir, database
}

func openKeys(ctx context.Context, dataDir, database string) (*keys.Manager, func() error, error) {
	st, err := server.OpenStore(ctx, dataDir, database)
	if err != nil {
		return nil, nil, err
	}
	sealer, err := server.OpenCheckedSealer(ctx, st, dataDir)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return &keys.Manager{Store: st, Sealer: sealer}, st.Close, nil
}

const keysUsage = `Usage:
  cutover keys create --user NAME --role ROLE [--applications A,A/G] [--regions R,R] [--account ID] [flags]
  cutover keys list [flags]
  cutover keys revoke ACCESS_KEY_ID [flags]

Run 'cutover keys <subcommand> -h' for its flags. The keys commands open the
server's database: run them where --data-dir is, or give --database.
`

// subcommand finds which of subs args names, wherever it stands among the
// flags, and returns it with the other arguments. For -h, --help or help
// before it, it prints usage and returns flag.ErrHelp, so that nothing runs.
func subcommand(cmd string, args []string, subs []string, usage string, w io.Writer) (string, []string, error) {
	i, help := findSubcommand(args)
	switch {
	case help:
		fmt.Fprint(w, usage)
		return "", nil, flag.ErrHelp
	case i >= 0 && slices.Contains(subs, args[i]):
		return args[i], slices.Concat(args[:i], args[i+1:]), nil
	case i >= 0:
		return "", nil, fmt.Errorf("%s: unknown subcommand %q: give %s", cmd, args[i], strings.Join(subs, ", "))
	}
	return "", nil, fmt.Errorf("%s: give %s", cmd, strings.Join(subs, ", "))
}

// findSubcommand returns the index of the first argument that is not a
// flag or a flag's value (one of subs, or a mistake), or -1; help reports
// -h, --help or help before it. Every flag of the commands with subcommands takes a value
// (--flag value or --flag=value), which is how a value is told from a
// subcommand; a boolean flag there would have to be written --flag=true.
func findSubcommand(args []string) (i int, help bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return -1, false
		case a == "-h" || a == "-help" || a == "--help" || a == "help":
			return -1, true
		case strings.HasPrefix(a, "-"):
			if !strings.Contains(a, "=") {
				i++ // its value
			}
		default:
			return i, false
		}
	}
	return -1, false
}

func runKeys(ctx context.Context, args []string, stdout io.Writer) error {
	sub, args, err := subcommand("keys", args, []string{"create", "list", "revoke"}, keysUsage, stdout)
	if err != nil {
		return err
	}
	s := newSettings("keys " + sub)
	dataDir, database := storeFlags(s.fs)
	var user, account, session *string
	var grant grantOptions
	switch sub {
	case "create":
		user = s.fs.String("user", "", "user name")
		account = s.fs.String("account", keys.DefaultAccount, "12-digit account id")
		session = s.fs.String("session-arn", "", "--role host: sign as this IAM session (the instance's iamSessionArn) instead of as user --user")
		grant = grantFlags(s.fs)
	case "revoke":
		s.args = "ACCESS_KEY_ID"
	}
	if err := s.parse(args); err != nil {
		return err
	}
	if sub == "revoke" && len(s.pos) != 1 {
		return errors.New("keys revoke: give one access key id")
	}
	m, closeFn, err := openKeys(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer closeFn()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	switch sub {
	case "create":
		if *user == "" {
			return errors.New("keys create: --user is required")
		}
		g, err := grant.grant()
		if err != nil {
			return err
		}
		c, err := m.CreateKey(ctx, keys.Spec{User: *user, Account: *account, Grant: g, SessionArn: *session})
		auditLocal(ctx, m.Store, "CreateAccessKey", []string{"user:" + *user, "role:" + string(g.Role)}, err)
		if err != nil {
			return err
		}
		return enc.Encode(c)
	case "list":
		list, err := m.List(ctx)
		if err != nil {
			return err
		}
		return listKeys(stdout, list)
	case "revoke":
		err := m.Revoke(ctx, s.pos[0])
		auditLocal(ctx, m.Store, "RevokeAccessKey", []string{"key:" + s.pos[0]}, err)
		return err
	}
	return fmt.Errorf("keys: unknown subcommand %q", sub)
}

func runGitHubToken(ctx context.Context, args []string, stdout io.Writer) error {
	_, args, err := subcommand("github-token", args, []string{"add"}, "Usage:\n  cutover github-token add --name NAME --token TOKEN [flags]\n", stdout)
	if err != nil {
		return err
	}
	s := newSettings("github-token add")
	dataDir, database := storeFlags(s.fs)
	name := s.fs.String("name", "", "token name, as CodeDeploy's gitHubAccountName / tokenName")
	token := s.fs.String("token", "", "the GitHub token (or env CUTOVER_TOKEN)")
	account := s.fs.String("account", keys.DefaultAccount, "account id")
	region := s.fs.String("region", "us-east-1", "region")
	if err := s.parse(args); err != nil {
		return err
	}
	st, err := server.OpenStore(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer st.Close()
	sealer, err := server.OpenCheckedSealer(ctx, st, *dataDir)
	if err != nil {
		return err
	}
	if err := api.AddGitHubToken(ctx, st, sealer, *account, *region, *name, *token); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added GitHub token %q\n", *name)
	return nil
}

// serverAbout answers the first question after start-up: where the first
// administrator key comes from.
const serverAbout = `The first administrator key: on this host, while or before the server runs,
  cutover keys create --user admin --role admin --data-dir DIR   (SQLite in DIR)
  cutover keys create --user admin --role admin --database URL   (PostgreSQL, from anywhere)
prints a new key once. Or set CUTOVER_ROOT_ACCESS_KEY_ID and CUTOVER_ROOT_SECRET_ACCESS_KEY:
that key is created as an admin of --root-account when absent (never re-created once revoked).`
