package devenv

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block after the heading in README.md.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no heading %q", heading)
	}
	s = s[i:]
	start := strings.Index(s, "\n```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after %q", heading)
	}
	s = s[start+len("\n```sh\n"):]
	end := strings.Index(s, "\n```")
	if end < 0 {
		t.Fatalf("unterminated sh block after %q", heading)
	}
	return s[:end+1]
}

// TestREADMEBlueGreenDemo runs the README's blue/green session, as written,
// with aws-cli against a dev environment: a deployment to dev-2, the
// reroute, the termination wait ended by hand, `cutover fleet`, then a
// deployment back to dev-1 stopped with a rollback. Only what cannot be
// shared with other runs is changed: the demo's state directory and how
// the cutover binary is invoked.
func TestREADMEBlueGreenDemo(t *testing.T) {
	for _, tool := range []string{"aws", "bash", "curl", "python3", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING README DEMO: %s is not on PATH", tool)
		}
	}
	script := readmeBlock(t, "## Blue/green with live traffic against `cutover dev`")
	demo := filepath.Join(t.TempDir(), "demo")
	bin := filepath.Join(t.TempDir(), "cutover")
	build := exec.Command("go", "build", "-o", bin, "./cmd/cutover")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for old, repl := range map[string]string{"/tmp/cutover-demo": demo, "go run ./cmd/cutover": bin} {
		if !strings.Contains(script, old) {
			t.Fatalf("the README block no longer contains %q; update this test", old)
		}
		script = strings.ReplaceAll(script, old, repl)
	}
	t.Cleanup(func() { killDemoServers(t, demo) })

	ctx := context.Background()
	env, err := Start(ctx, Options{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: freeAddr(t),
		Agents: 2, AppBasePort: 19181, Minute: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	cfg := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "CUTOVER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The export lines `cutover dev` prints, and an aws-cli isolated from
	// the user's configuration.
	cmd.Env = append(cmd.Env,
		"AWS_ENDPOINT_URL="+env.URL, "AWS_ENDPOINT_URL_S3="+env.S3URL,
		"AWS_ACCESS_KEY_ID="+env.AccessKey, "AWS_SECRET_ACCESS_KEY="+env.SecretKey,
		"AWS_REGION="+env.Region, "AWS_DEFAULT_REGION="+env.Region,
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(cfg, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(cfg, "credentials"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("README blue/green session: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("README blue/green session took %v", time.Since(start).Round(time.Second))

	out := stdout.String()
	for _, want := range []string{"INSTANCES", "dev-2", "RETIRED", "dev-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("cutover fleet output lacks %q:\n%s", want, out)
		}
	}
	// The rollback routed the traffic back to dev-2.
	deadline := time.Now().Add(15 * time.Second)
	for {
		body, err := get(env.WebURL)
		if err == nil && strings.HasPrefix(body, "dev-2 serving") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer answers %q (%v), want dev-2 after the rollback", body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr is a loopback address with a port free right now: Env.WebURL
// names the configured address, so port 0 would not do.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return string(b), err
}

// killDemoServers stops the web servers the demo's hooks left running: the
// ones whose pid files are still in the demo directory.
func killDemoServers(t *testing.T, demo string) {
	pids, _ := filepath.Glob(filepath.Join(demo, "*.pid"))
	for _, p := range pids {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
				t.Logf("stopped demo web server %d (%s)", pid, filepath.Base(p))
			}
		}
	}
}
