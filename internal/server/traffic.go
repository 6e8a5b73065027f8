package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/keys"

	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy"
)

// TrafficFile is the --traffic-config file: the target groups that
// deployment groups' loadBalancerInfo names refer to.
//
//	targetGroups:
//	  - name: web
//	    account: "111111111111"  # owner; default the root account
//	    region: us-east-1        # optional: only this region of the account
//	    driver: builtin          # or haproxy
//	    listen: 0.0.0.0:8080     # builtin listener (haproxy: its frontend, for reference)
//	    port: 8081               # port the application listens on, on each host
//	    healthCheck: {path: /healthz, interval: 2s, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2}
//	    deregistrationDelay: 10s
//	    haproxy: {socket: /run/haproxy/admin.sock, backend: web}
//	    stickyCookie: CUTOVER_STICKY   # optional: keep each client on one backend during a shift
type TrafficFile struct {
	TargetGroups []TargetGroupYAML `yaml:"targetGroups"`
}

// TargetGroupYAML is one target group of a TrafficFile.
type TargetGroupYAML struct {
	Name        string `yaml:"name"`
	Account     string `yaml:"account"`
	Region      string `yaml:"region"`
	Driver      string `yaml:"driver"`
	Listen      string `yaml:"listen"`
	Mode        string `yaml:"mode"`
	Port        int    `yaml:"port"`
	HealthCheck struct {
		Path               string        `yaml:"path"`
		Interval           time.Duration `yaml:"interval"`
		Timeout            time.Duration `yaml:"timeout"`
		HealthyThreshold   int           `yaml:"healthyThreshold"`
		UnhealthyThreshold int           `yaml:"unhealthyThreshold"`
	} `yaml:"healthCheck"`
	DeregistrationDelay time.Duration `yaml:"deregistrationDelay"`
	HAProxy             struct {
		Socket  string `yaml:"socket"`
		Backend string `yaml:"backend"`
	} `yaml:"haproxy"`
	StickyCookie string `yaml:"stickyCookie"`
}

// Config converts the YAML form.
func (t TargetGroupYAML) Config() traffic.TargetGroupConfig {
	return traffic.TargetGroupConfig{
		Name: t.Name, Account: t.Account, Region: t.Region, Driver: t.Driver, Listen: t.Listen, Mode: t.Mode, Port: t.Port,
		HealthCheck: traffic.HealthCheck{Path: t.HealthCheck.Path, Interval: t.HealthCheck.Interval, Timeout: t.HealthCheck.Timeout,
			HealthyThreshold: t.HealthCheck.HealthyThreshold, UnhealthyThreshold: t.HealthCheck.UnhealthyThreshold},
		DeregistrationDelay: t.DeregistrationDelay,
		HAProxy:             traffic.HAProxyConfig{Socket: t.HAProxy.Socket, Backend: t.HAProxy.Backend},
		StickyCookie:        t.StickyCookie,
	}
}

// LoadTrafficFile reads a traffic configuration file.
func LoadTrafficFile(path string) ([]traffic.TargetGroupConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("traffic config: %w", err)
	}
	var f TrafficFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("traffic config %s: %w", path, err)
	}
	var out []traffic.TargetGroupConfig
	for _, t := range f.TargetGroups {
		out = append(out, t.Config())
	}
	return out, nil
}

// checkTargetGroups refuses target groups the caller may not name in a
// deployment group: another account's (or region's), and, for a key
// limited to applications, any configured one (target groups are shared
// by the account, like deployment configs; see README, Tenancy). Names not
// configured stay accepted (their traffic events are no-ops).
func (s *Server) checkTargetGroups(ctx context.Context, names []string) error {
	c, _ := awsjson.CallerFrom(ctx)
	for _, n := range names {
		tg, ok := s.targetGroups[n]
		if !ok {
			continue
		}
		if !tg.OwnedBy(c.Account, c.Region) {
			return awsjson.Errorf("InvalidLoadBalancerInfoException", "The target group %s is not a target group of account %s in %s.", n, c.Account, c.Region)
		}
		k, err := s.callerKey(ctx, c.AccessKeyID)
		if err != nil && !(errors.Is(err, keys.ErrNotFound) && s.cfg.Open) {
			return err
		}
		if err == nil && len(k.Applications) > 0 {
			return awsjson.Errorf("InvalidLoadBalancerInfoException", "A key limited to applications cannot name target group %s: target groups are shared by the account; ask an administrator to set the deployment group's load balancer info.", n)
		}
	}
	return nil
}

// buildRouters starts the routers of the configured target groups; one
// without an account belongs to owner (the root account).
func buildRouters(tgs []traffic.TargetGroupConfig, owner string, log *slog.Logger, obs builtin.RequestObserver) (*traffic.Mux, map[string]traffic.TargetGroupConfig, error) {
	mux := traffic.NewMux()
	byName := map[string]traffic.TargetGroupConfig{}
	var builtins, haproxies []traffic.TargetGroupConfig
	for _, tg := range tgs {
		tg = tg.WithDefaults()
		if tg.Account == "" {
			tg.Account = owner
		}
		if err := tg.Validate(); err != nil {
			return nil, nil, err
		}
		if _, dup := byName[tg.Name]; dup {
			return nil, nil, fmt.Errorf("target group %q defined twice", tg.Name)
		}
		byName[tg.Name] = tg
		switch tg.Driver {
		case traffic.DriverHAProxy:
			haproxies = append(haproxies, tg)
		default:
			builtins = append(builtins, tg)
		}
	}
	if len(builtins) > 0 {
		r, err := builtin.New(builtins, builtin.Options{Logger: log, Observer: obs})
		if err != nil {
			return nil, nil, err
		}
		if err := mux.Handle(r, names(builtins)...); err != nil {
			return nil, nil, err
		}
	}
	if len(haproxies) > 0 {
		r, err := haproxy.New(haproxies, haproxy.Options{Logger: log})
		if err != nil {
			mux.Close()
			return nil, nil, err
		}
		if err := mux.Handle(r, names(haproxies)...); err != nil {
			return nil, nil, err
		}
	}
	return mux, byName, nil
}

func names(tgs []traffic.TargetGroupConfig) []string {
	var out []string
	for _, t := range tgs {
		out = append(out, t.Name)
	}
	return out
}

// teardown builds the hook run when blue/green retires original hosts.
func teardown(command, webhook string, log *slog.Logger) func(context.Context, deploy.TeardownEvent) error {
	if command == "" && webhook == "" {
		return func(_ context.Context, ev deploy.TeardownEvent) error {
			log.Info("original instances left the fleet (no --teardown-command or --teardown-webhook configured)", "deployment", ev.DeploymentID, "instances", ev.Instances, "terminate", ev.Terminate)
			return nil
		}
	}
	return func(ctx context.Context, ev deploy.TeardownEvent) error {
		body, _ := json.Marshal(ev)
		if command != "" {
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
			// Not the server's environment: it holds CUTOVER_SERVER_KEY,
			// the root key's secret and the database URL.
			cmd.Env = append(teardownEnv(os.Getenv),
				"CUTOVER_ACCOUNT="+ev.Account,
				"CUTOVER_REGION="+ev.Region,
				"CUTOVER_DEPLOYMENT_ID="+ev.DeploymentID,
				"CUTOVER_APPLICATION_NAME="+ev.ApplicationName,
				"CUTOVER_DEPLOYMENT_GROUP_NAME="+ev.DeploymentGroup,
				"CUTOVER_INSTANCES="+strings.Join(ev.Instances, " "),
				fmt.Sprintf("CUTOVER_TERMINATE=%t", ev.Terminate))
			cmd.Stdin = bytes.NewReader(body)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("teardown command: %w: %s", err, out)
			}
		}
		if webhook != "" {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("teardown webhook: %w", err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				return fmt.Errorf("teardown webhook: HTTP %d", resp.StatusCode)
			}
		}
		return nil
	}
}

// teardownKept are the server's environment variables a teardown command
// inherits: what a shell needs to find programs and files, nothing else.
var teardownKept = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// teardownEnv is the base environment of a teardown command.
func teardownEnv(getenv func(string) string) []string {
	var env []string
	for _, k := range teardownKept {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
