package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/devenv"
	"github.com/cutoverhq/cutover/internal/keys"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	s := newSettings("dev")
	dataDir := s.fs.String("data-dir", "", "data directory (default: a new temporary directory, removed on exit)")
	listen := s.fs.String("listen", "127.0.0.1:8443", "API address")
	webListen := s.fs.String("web-listen", "127.0.0.1:8080", "builtin load balancer address")
	appPort := s.fs.Int("app-port", 9081, "application port of the first local agent ($PORT in its hooks); agent i gets app-port+i-1")
	agents := s.fs.Int("agents", 2, "local agents to start (instances dev-1 … dev-N)")
	minute := s.fs.Duration("minute", 5*time.Second, "length of one API minute (dev default: 5s)")
	rootAccount := s.fs.String("root-account", keys.DefaultAccount, "12-digit account of the dev key and of open-mode callers")
	open := s.fs.Bool("open", true, "accept any access key id (test/test, …) as the dev account's administrator, without checking its signature")
	var lf logFlags
	lf.declare(s.fs, "warn")
	if err := s.parse(args); err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if *agents < 0 {
		return fmt.Errorf("dev: --agents %d: give 0 or more", *agents)
	}
	if *appPort <= 0 || *appPort+max(*agents, 1)-1 > 65535 {
		return fmt.Errorf("dev: --app-port %d with --agents %d is out of the port range", *appPort, *agents)
	}
	env, err := devenv.Start(ctx, devenv.Options{
		DataDir: *dataDir, Listen: *listen, WebListen: *webListen, AppBasePort: *appPort,
		Agents: *agents, Minute: *minute, Logger: logger, RootAccount: *rootAccount, Open: *open,
		AccessKeyID: os.Getenv("CUTOVER_ROOT_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("CUTOVER_ROOT_SECRET_ACCESS_KEY"),
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Close()) }()
	apps, instances := []string{"none"}, "none (register hosts with 'cutover agent register')"
	if len(env.Instances) > 0 {
		apps = make([]string, len(env.Instances))
		for i, name := range env.Instances {
			apps[i] = fmt.Sprintf("%s %d", name, env.AppPorts[i])
		}
		instances = fmt.Sprintf("%v (tag env=dev; each also tagged fleet=<its name>)", env.Instances)
	}
	openNote := "off: only the key above and keys made with 'cutover keys' are accepted"
	if *open {
		openNote = "on: any access key id (test/test …) is accepted as account " + *rootAccount + "'s administrator (--open=false to turn off)"
	}
	cleanup := "removed on exit"
	if *dataDir != "" {
		cleanup = "kept"
	}
	fmt.Fprintf(stdout, `# Cutover dev is running (data in %s, %s). Paste into another shell:
export AWS_ENDPOINT_URL=%s
export AWS_ENDPOINT_URL_S3=%s
export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export AWS_REGION=%s
export AWS_DEFAULT_REGION=%s
# Ports: API and S3 %s, load balancer %s, applications (hooks' $PORT): %s.
# Local agents: %s.
# Bucket: s3://%s   Load balancer (target group %s): %s
# Open mode %s.
# One API minute lasts %s. Ctrl-C stops everything started here, hooks' background processes included.
`, env.DataDir, cleanup, env.URL, env.S3URL, env.AccessKey, env.SecretKey, env.Region, env.Region,
		hostPort(env.URL), hostPort(env.WebURL), strings.Join(apps, ", "),
		instances, devenv.Bucket, devenv.TargetGroup, env.WebURL, openNote, *minute)
	select {
	case <-ctx.Done():
		return nil
	case err := <-env.Errors():
		return err
	}
}

func hostPort(url string) string {
	_, hp, _ := strings.Cut(url, "://")
	return hp
}
