package devenv

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/servertest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestCloseStopsWhatItStarted: a hook that detaches a long-lived process
// from its process group and session (setsid, beyond the demo's nohup)
// does not outlive the environment, and the temporary data directory Start
// made is removed.
func TestCloseStopsWhatItStarted(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("SKIPPING: no /proc; cutover dev finds hook processes through it")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	env, err := Start(context.Background(), Options{Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
		Agents: 1, AppBasePort: 19181, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			env.Close()
		}
	}()
	if !strings.HasPrefix(env.DataDir, filepath.Join(tmp, "cutover-dev-")) {
		t.Fatalf("data dir %s not a new temporary directory", env.DataDir)
	}
	pidFile := filepath.Join(tmp, "pid")
	deployBundle(t, env, []servertest.File{
		{Name: "appspec.yml", Body: "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: start.sh\n"},
		{Name: "start.sh", Body: "#!/bin/sh\nsetsid sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > " + pidFile + "\n", Mode: 0o755},
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("the hook's background process %q is not running", b)
	}
	closed = true
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if running(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("pid %d outlived Close", pid)
	}
	if _, err := os.Stat(env.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s left behind: %v", env.DataDir, err)
	}
}

// running reports whether pid runs (a zombie left to an init that does
// not reap counts as gone).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// TestOpenMode: the dev environment in open mode takes any access key id
// as its account's administrator; without it, such keys are refused.
func TestOpenMode(t *testing.T) {
	ctx := context.Background()
	for _, open := range []bool{true, false} {
		env, err := Start(ctx, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
			Agents: 1, AppBasePort: 19281, Logger: quietLogger(), Open: open, RootAccount: "123456789012"})
		if err != nil {
			t.Fatal(err)
		}
		cd := codedeploy.New(codedeploy.Options{Region: env.Region, BaseEndpoint: aws.String(env.URL), Retryer: aws.NopRetryer{},
			Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
		list, err := cd.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
		switch {
		case open && (err != nil || len(list.InstanceNames) != 1 || list.InstanceNames[0] != "dev-1"):
			t.Errorf("open: test/test sees %v, %v; want the dev account's dev-1", list, err)
		case !open && (err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException")):
			t.Errorf("closed: test/test got %v", err)
		}
		if err := env.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
