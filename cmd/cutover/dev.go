package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cutoverhq/cutover/internal/devenv"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := newSettings("dev")
	dataDir := s.fs.String("data-dir", "", "data directory (default: a new temporary directory)")
	listen := s.fs.String("listen", "127.0.0.1:8443", "API address")
	s3Listen := s.fs.String("s3-listen", "127.0.0.1:9000", "S3-compatible bucket endpoint address")
	webListen := s.fs.String("web-listen", "127.0.0.1:8080", "builtin load balancer address")
	agents := s.fs.Int("agents", 2, "local agents to start (instances dev-1 … dev-N)")
	minute := s.fs.Duration("minute", 5*time.Second, "length of one API minute (dev default: 5s)")
	logLevel := s.fs.String("log-level", "warn", "debug, info, warn or error")
	if err := s.parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		d, err := os.MkdirTemp("", "cutover-dev-")
		if err != nil {
			return err
		}
		*dataDir = d
	}
	env, err := devenv.Start(ctx, devenv.Options{
		DataDir: *dataDir, Listen: *listen, S3Listen: *s3Listen, WebListen: *webListen, Agents: *agents, Minute: *minute,
		Logger:      newLogger(stderr, *logLevel),
		AccessKeyID: os.Getenv("CUTOVER_ROOT_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("CUTOVER_ROOT_SECRET_ACCESS_KEY"),
	})
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintf(stdout, `# Cutover dev is running (data in %s). Paste into another shell:
export AWS_ENDPOINT_URL=%s
export AWS_ENDPOINT_URL_S3=%s
export AWS_ACCESS_KEY_ID=%s
export AWS_SECRET_ACCESS_KEY=%s
export AWS_REGION=%s
export AWS_DEFAULT_REGION=%s
# Local agents: %v (tag env=dev; each also tagged fleet=<its name>).
# Bucket: s3://%s   Load balancer (target group %s): %s
# One API minute lasts %s.
`, *dataDir, env.URL, env.S3URL, env.AccessKey, env.SecretKey, env.Region, env.Region, env.Instances, devenv.Bucket, devenv.TargetGroup, env.WebURL, *minute)
	select {
	case <-ctx.Done():
		return nil
	case err := <-env.Errors():
		return err
	}
}
