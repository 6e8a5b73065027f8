package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/bundle"
)

// envCredentials reads the standard AWS credential variables.
func envCredentials() (aws.CredentialsProvider, bool) {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return nil, false
	}
	return credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN")), true
}

func envRegion() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	if r := os.Getenv("AWS_DEFAULT_REGION"); r != "" {
		return r
	}
	return "us-east-1"
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	s := newSettings("agent")
	endpoint := s.fs.String("endpoint", "", "Cutover server URL (default: cutover_endpoint from the on-premises config, else AWS_ENDPOINT_URL)")
	rootDir := s.fs.String("root-dir", "/opt/cutover-agent/deployment-root", "deployment root directory")
	onprem := s.fs.String("onprem-config", agent.DefaultOnPremConfigPath, "on-premises config file in the official agent's format (used when it exists)")
	hostID := s.fs.String("host-identifier", "", "IAM ARN this host is registered with (default: from the on-premises config, else AWS_HOST_IDENTIFIER)")
	caFile := s.fs.String("ca-file", "", "PEM CA certificate, the only one trusted for the server (default: cutover_ca_file from the on-premises config, else AWS_CA_BUNDLE)")
	maxRevisions := s.fs.Int("max-revisions", agent.DefaultMaxRevisions, "deployment revisions kept on disk per deployment group")
	s3Endpoint := s.fs.String("s3-endpoint", "", "S3-compatible endpoint for revisions: a URL, or \"aws\" for AWS S3 (default AWS_ENDPOINT_URL_S3, else the server's embedded store at --endpoint)")
	specCert := s.fs.String("spec-cert", "", "pin the server's deployment-specification signing certificate (PEM)")
	grace := s.fs.Duration("shutdown-grace", agent.DefaultShutdownGrace, "time a running hook gets to finish on shutdown")
	var lf logFlags
	lf.declare(s.fs, "info")
	var lim bundle.Limits
	s.fs.Int64Var(&lim.MaxTotalBytes, "bundle-max-bytes", bundle.DefaultMaxTotalBytes, "most bytes one bundle may unpack to (-1: no limit)")
	s.fs.IntVar(&lim.MaxFiles, "bundle-max-files", bundle.DefaultMaxFiles, "most entries one bundle may hold (-1: no limit)")
	s.fs.Int64Var(&lim.MaxRatio, "bundle-max-ratio", bundle.DefaultMaxRatio, "most bytes unpacked per compressed byte once past 64 MiB (-1: no limit)")
	if err := s.parse(args); err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg := agent.Config{RootDir: *rootDir, MaxRevisions: *maxRevisions, S3Endpoint: *s3Endpoint, S3PathStyle: true,
		SpecCertFile: *specCert, ShutdownGrace: *grace, Logger: logger, Version: readBuildInfo().Version, BundleLimits: lim}
	if c, err := agent.LoadOnPremConfig(*onprem); err == nil {
		cfg.Endpoint, cfg.Region, cfg.Credentials, cfg.HostIdentifier = c.CutoverEndpoint, c.Region, c.CredentialsProvider(), c.HostIdentifier()
		if *caFile == "" {
			*caFile = c.CutoverCAFile
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if cfg.Credentials == nil {
		creds, ok := envCredentials()
		if !ok {
			return fmt.Errorf("no credentials: write %s with 'cutover agent register' or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", *onprem)
		}
		cfg.Credentials = creds
		cfg.Region = envRegion()
	}
	if *endpoint != "" {
		cfg.Endpoint = *endpoint
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if *hostID != "" {
		cfg.HostIdentifier = *hostID
	}
	if cfg.HostIdentifier == "" {
		cfg.HostIdentifier = os.Getenv("AWS_HOST_IDENTIFIER")
	}
	if cfg.Endpoint == "" || cfg.HostIdentifier == "" {
		return errors.New("agent needs --endpoint and a host identifier (from the on-premises config or --host-identifier)")
	}
	hc, err := httpClient(*caFile, cfg.Endpoint)
	if err != nil {
		return err
	}
	cfg.HTTPClient = hc
	// The agent idles on a long poll on every host of a fleet; what it
	// holds is mostly garbage from package initialisation. A tighter GC
	// target keeps its resident size down at the cost of a little CPU
	// during bundle work, which is I/O-bound anyway.
	debug.SetGCPercent(20)
	debug.FreeOSMemory()
	return agent.Run(ctx, cfg)
}

func runAgentRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := newSettings("agent register")
	endpoint := s.fs.String("endpoint", os.Getenv("AWS_ENDPOINT_URL"), "Cutover server URL")
	name := s.fs.String("instance-name", "", "name to register this host as")
	tags := s.fs.String("tags", "", "instance tags, k=v,k2=v2")
	out := s.fs.String("onprem-config", agent.DefaultOnPremConfigPath, "where to write the agent's on-premises config")
	caFile := s.fs.String("ca-file", "", "PEM CA certificate, the only one trusted for the server")
	caFingerprint := s.fs.String("ca-fingerprint", "", "SHA-256 fingerprint of the server's CA (printed by cutover server): fetch the CA, check it, pin it")
	official := s.fs.String("official-agent-config", "", "also write the official CodeDeploy agent's codedeployagent.yml here (e.g. "+agent.DefaultOfficialAgentConfigPath+"), pointing it at --endpoint for commands and revisions")
	caOut := s.fs.String("ca-out", "", "where --ca-fingerprint writes the CA (default: cutover-ca.pem next to --onprem-config)")
	if err := s.parse(args); err != nil {
		return err
	}
	if *name == "" || *endpoint == "" {
		return errors.New("agent register needs --instance-name and --endpoint")
	}
	admin, ok := envCredentials()
	if !ok {
		return errors.New("agent register needs administrator credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	tagMap := map[string]string{}
	if *tags != "" {
		for _, kv := range strings.Split(*tags, ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k == "" {
				return fmt.Errorf("bad tag %q: use k=v", kv)
			}
			tagMap[k] = v
		}
	}
	if *caFingerprint != "" {
		if *caFile != "" {
			return errors.New("give --ca-fingerprint or --ca-file, not both")
		}
		pem, err := fetchCA(ctx, *endpoint, *caFingerprint)
		if err != nil {
			return err
		}
		if *caOut == "" {
			*caOut = filepath.Join(filepath.Dir(*out), "cutover-ca.pem")
		}
		if err := agent.WriteCAFile(*caOut, pem); err != nil {
			return err
		}
		*caFile = *caOut
	}
	hc, err := httpClient(*caFile, *endpoint)
	if err != nil {
		return err
	}
	c, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: *endpoint, Region: envRegion(), AdminCredentials: admin, InstanceName: *name, Tags: tagMap, HTTPClient: hc})
	if err != nil {
		return err
	}
	c.CutoverEndpoint = *endpoint
	if *caFile != "" {
		if c.CutoverCAFile, err = filepath.Abs(*caFile); err != nil {
			return err
		}
	}
	if err := agent.WriteOnPremConfig(*out, c); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered %s as %s; agent config written to %s\n", *name, c.IAMUserARN, *out)
	if *official != "" {
		onprem, err := filepath.Abs(*out)
		if err != nil {
			return err
		}
		if err := agent.WriteOfficialAgentConfig(*official, agent.NewOfficialAgentConfig(*endpoint, onprem)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "official CodeDeploy agent config written to %s (:deploy_control_endpoint: and :s3_endpoint_override: %s).\n"+
			"Its hooks get no PORT or CUTOVER_INSTANCE; for blue/green, tag each instance cutover:address=HOST:PORT when\n"+
			"several agents share a host (otherwise traffic goes to the address the agent polls from).\n", *official, *endpoint)
	}
	if c.CutoverCAFile != "" {
		fmt.Fprintf(stdout, "cutover agent trusts only the CA in %s for %s.\n"+
			"For the official CodeDeploy agent, add it to the system store (update-ca-certificates), or export\n"+
			"SSL_CERT_FILE naming a bundle that holds it (e.g. in /etc/profile, which its service sources); an\n"+
			"AWS_CA_BUNDLE or AWS_SSL_CA_BUNDLE in its environment must hold it too (revision downloads read\n"+
			"AWS_CA_BUNDLE, polling AWS_SSL_CA_BUNDLE, each instead of SSL_CERT_FILE).\n", c.CutoverCAFile, *endpoint)
	}
	return nil
}
