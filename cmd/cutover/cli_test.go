package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpTouchesNothing: -h and --help on every command print its usage,
// exit 0 and create nothing (cutover keys -h used to create the database
// and a server key in the default data directory).
func TestHelpTouchesNothing(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"help"},
		{"server", "-h"}, {"server", "--help"}, {"server", "--listen", "127.0.0.1:1", "-h"},
		{"dev", "-h"}, {"dev", "--help"},
		{"agent", "-h"}, {"agent", "register", "-h"}, {"agent", "register", "--instance-name", "x", "--help"},
		{"keys", "-h"}, {"keys", "--help"}, {"keys", "create", "-h"}, {"keys", "list", "--help"},
		{"keys", "revoke", "-h"}, {"keys", "revoke", "AKIAEXAMPLE000000000", "-h"},
		{"keys", "--data-dir", "/nonexistent/x", "-h"}, {"keys", "--data-dir", "/nonexistent/x", "list", "-h"},
		{"agent", "--onprem-config", "/nonexistent/x.yml", "register", "-h"},
		{"github-token", "-h"}, {"github-token", "add", "-h"},
		{"audit", "-h"}, {"audit", "--key", "AKIAEXAMPLE000000000", "--help"},
		{"version", "-h"},
		{"watch", "-h"}, {"watch", "d-X", "--help"}, {"logs", "-h"}, {"logs", "d-X", "--follow", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			onprem := filepath.Join(dir, "onprem.yml")
			r := runBin(t, []string{"CUTOVER_DATA_DIR=" + data, "CUTOVER_ONPREM_CONFIG=" + onprem, "HOME=" + dir}, args...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
			if out := r.stdout + r.stderr; !strings.Contains(out, "Usage") {
				t.Fatalf("no usage printed: %q", out)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Fatalf("-h created %v in %s", entries, dir)
			}
			if out := r.stdout + r.stderr; args[0] == "server" && !strings.Contains(out, "keys create --user admin --role admin") {
				t.Fatalf("server usage does not say where the first admin key comes from: %q", out)
			}
		})
	}
}

// TestFlagsAnywhere: flags are honoured after positional arguments, the
// flag beats the environment, and unknown flags or stray arguments are
// errors that touch nothing.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	data, other := filepath.Join(dir, "data"), filepath.Join(dir, "other")
	env := []string{"CUTOVER_DATA_DIR=" + other}

	r := runBin(t, env, "keys", "create", "--user", "ci", "--data-dir", data, "--role", "deployer", "--account", "123456789012")
	if r.code != 0 {
		t.Fatalf("keys create: %d %s", r.code, r.stderr)
	}
	var k struct{ AccessKeyId, Arn string }
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.Arn != "arn:aws:iam::123456789012:user/ci" {
		t.Fatalf("keys create printed %q: %v", r.stdout, err)
	}
	if r := runBin(t, env, "keys", "revoke", k.AccessKeyId, "--data-dir", data); r.code != 0 {
		t.Fatalf("keys revoke ID --data-dir: %d %s", r.code, r.stderr)
	}
	r = runBin(t, env, "keys", "list", "--data-dir="+data)
	if r.code != 0 || !strings.Contains(r.stdout, k.AccessKeyId) || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("keys list after revoke: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Flags before the subcommand too.
	r = runBin(t, env, "keys", "--data-dir", data, "create", "--user", "early", "--role=read-only")
	if r.code != 0 || !strings.Contains(r.stdout, "user/early") {
		t.Fatalf("keys --data-dir D create: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, env, "keys", "--data-dir="+data, "list")
	if r.code != 0 || !strings.Contains(r.stdout, "early") {
		t.Fatalf("keys --data-dir=D list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// A host key of an instance registered with an IAM session ARN.
	const session = "arn:aws:sts::000000000000:assumed-role/CodeDeployHost/web-7"
	r = runBin(t, env, "keys", "create", "--data-dir", data, "--user", "web-7", "--role", "host", "--instance", "web-7", "--region", "us-east-1", "--session-arn", session)
	if r.code != 0 || !strings.Contains(r.stdout, `"Arn": "`+session+`"`) {
		t.Fatalf("keys create --session-arn: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := runBin(t, env, "keys", "create", "--data-dir", data, "--user", "x", "--role", "deployer", "--session-arn", session); r.code == 0 || !strings.Contains(r.stderr, "only host keys") {
		t.Fatalf("a deployer key with --session-arn: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("the environment's data dir was used although --data-dir was given: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"keys", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"keys", "revoke", "--data-dir", data}, "give one access key id"},
		{[]string{"keys", "revoke", "A", "B", "--data-dir", data}, "give one access key id"},
		{[]string{"keys", "rotate"}, `unknown subcommand "rotate"`},
		{[]string{"keys"}, "give create, list, revoke"},
		{[]string{"keys", "--data-dir", data}, "give create, list, revoke"},
		{[]string{"keys", "--data-dir", data, "rotate"}, `unknown subcommand "rotate"`},
		// register after the agent's flags is register: its own flag is
		// accepted, and it fails for want of an endpoint, not as the agent.
		{[]string{"agent", "--onprem-config", filepath.Join(dir, "none.yml"), "register", "--instance-name", "x"}, "agent register needs --instance-name and --endpoint"},
		{[]string{"server", "--data-dir", other, "--open"}, "flag provided but not defined: -open"},
		{[]string{"server", "--data-dir", other, "--log-format", "xml"}, `log format "xml"`},
		{[]string{"server", "--data-dir", other, "--log-level", "loud"}, `log level "loud"`},
		{[]string{"server", "--data-dir", other, "--root-account", "42"}, `invalid account id "42"`},
		{[]string{"server", "stray", "--data-dir", other}, `unexpected argument "stray"`},
		{[]string{"dev", "--data-dir", other, "--log-format", "yaml"}, `log format "yaml"`},
		{[]string{"agent", "--onprem-config", filepath.Join(dir, "none.yml"), "--log-format", "yaml"}, `log format "yaml"`},
		{[]string{"version", "--short"}, "flag provided but not defined: -short"},
	} {
		r := runBin(t, nil, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("cutover %s: exit %d, stderr %q; want an error containing %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("a refused command created %s: %v", other, err)
	}
}

// TestVersion: `cutover version` reports what the Go toolchain embedded in
// the binary (read independently with `go version -m`), and a release
// build's -ldflags -X main.version wins over the module version.
func TestVersion(t *testing.T) {
	r := runBin(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "cutover ") || strings.HasPrefix(r.stdout, "cutover dev") {
		t.Fatalf("version: %d %q %s", r.code, r.stdout, r.stderr)
	}
	out, err := exec.Command("go", "version", "-m", cutoverBin).Output()
	if err != nil {
		t.Fatal(err)
	}
	embedded := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "mod":
			embedded["mod"] = f[2]
		case len(f) >= 2 && f[0] == "build":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				embedded[k] = v
			}
		}
	}
	want := []string{"cutover " + embedded["mod"] + " "}
	if rev := embedded["vcs.revision"]; rev != "" {
		want = append(want, "revision "+rev, "committed "+embedded["vcs.time"])
		if embedded["vcs.modified"] == "true" {
			want = append(want, "modified")
		}
	} else {
		t.Log("the test binary has no VCS information (git unavailable to go build); checked the module version only")
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("version %q lacks %q (go version -m: %v)", r.stdout, w, embedded)
		}
	}
	if r2 := runBin(t, nil, "--version"); r2.stdout != r.stdout {
		t.Errorf("--version %q, version %q", r2.stdout, r.stdout)
	}

	release := filepath.Join(t.TempDir(), "cutover")
	if err := goBuild(release, "-ldflags", "-X main.version=v1.2.3"); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(release, "version").Output()
	if err != nil || !strings.HasPrefix(string(got), "cutover v1.2.3 (") {
		t.Fatalf("release build version %q: %v", got, err)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	// ParseBuildInfo leaves GoVersion empty; ReadBuildInfo fills it.
	const stamped = "path\tgithub.com/cutoverhq/cutover/cmd/cutover\nmod\tgithub.com/cutoverhq/cutover\tv0.3.1\t\n" +
		"build\tvcs=git\nbuild\tvcs.revision=5d65543aa54730f44d68536713bd2be206348247\nbuild\tvcs.time=2026-11-29T23:07:26Z\nbuild\tvcs.modified=true\n"
	bi, err := debug.ParseBuildInfo(stamped)
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = "go1.26.8"
	plain, err := debug.ParseBuildInfo("path\tgithub.com/cutoverhq/cutover/cmd/cutover\nmod\tgithub.com/cutoverhq/cutover\t(devel)\t\n")
	if err != nil {
		t.Fatal(err)
	}
	plain.GoVersion = "go1.26.8"
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"stamped", bi, "", "cutover v0.3.1 (revision 5d65543aa54730f44d68536713bd2be206348247, committed 2026-11-29T23:07:26Z, modified, go1.26.8)"},
		{"release override", bi, "v1.0.0", "cutover v1.0.0 (revision 5d65543aa54730f44d68536713bd2be206348247, committed 2026-11-29T23:07:26Z, modified, go1.26.8)"},
		{"no vcs", plain, "", "cutover (devel) (go1.26.8)"},
		{"no build info", nil, "", "cutover (devel)"},
	} {
		if got := fromBuildInfo(tc.bi, tc.override).String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
