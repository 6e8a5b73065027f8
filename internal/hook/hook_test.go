package hook

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/appspec"
)

// setup writes scripts (name -> body, mode) into a fresh archive and returns a
// request for them.
func setup(t *testing.T, scripts ...script) Request {
	t.Helper()
	root := t.TempDir()
	archive := filepath.Join(root, "deployment-archive")
	r := Request{
		Event:         "AfterInstall",
		ArchiveDir:    archive,
		LogPath:       filepath.Join(root, "logs", "scripts.log"),
		DeploymentLog: filepath.Join(root, "deployment-logs", "codedeploy-agent-deployments.log"),
		DeploymentID:  "d-TEST12345",
		KillGrace:     time.Second,
	}
	for _, s := range scripts {
		if s.body != "" {
			p := filepath.Join(archive, s.loc)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(s.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, s.mode); err != nil {
				t.Fatal(err)
			}
		}
		timeout := s.timeout
		if timeout == 0 {
			timeout = 20 * time.Second
		}
		r.Scripts = append(r.Scripts, appspec.Script{Location: s.loc, Timeout: timeout, RunAs: s.runas})
		if s.runas != "" {
			// The other user must be able to reach the script through t.TempDir's 0700 dirs.
			for d := archive; d != "/" && d != filepath.Clean(os.TempDir()); d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return r
}

type script struct {
	loc, body string
	mode      os.FileMode
	timeout   time.Duration
	runas     string
}

func TestRun(t *testing.T) {
	out := func(r Request) string { return filepath.Join(filepath.Dir(r.ArchiveDir), "out") }
	tests := []struct {
		name    string
		scripts []script
		env     []string
		ctx     func() (context.Context, context.CancelFunc)
		code    int
		msg     string // regexp
		tail    string // substring of LogTail
		maxTime time.Duration
		check   func(t *testing.T, r Request)
	}{
		{name: "success", scripts: []script{{loc: "a.sh", body: "#!/bin/sh\necho hello\necho oops >&2\n", mode: 0o755}},
			code: Success, check: func(t *testing.T, r Request) {
				log, _ := os.ReadFile(r.LogPath)
				for _, want := range []string{" LifecycleEvent - AfterInstall\n", " Script - a.sh\n", " [stdout]hello\n", " [stderr]oops\n"} {
					if !strings.Contains(string(log), want) {
						t.Errorf("scripts.log lacks %q:\n%s", want, log)
					}
				}
				if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[stdout\]hello$`).Match(log) {
					t.Errorf("scripts.log format:\n%s", log)
				}
				dl, _ := os.ReadFile(r.DeploymentLog)
				if !regexp.MustCompile(`(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[d-TEST12345\]\[stdout\]hello$`).Match(dl) {
					t.Errorf("deployments log format:\n%s", dl)
				}
			}},
		{name: "non-zero exit", scripts: []script{{loc: "ok.sh", body: "#!/bin/sh\necho first\n", mode: 0o755}, {loc: "bad.sh", body: "#!/bin/sh\necho broken\nexit 3\n", mode: 0o755}, {loc: "never.sh", body: "#!/bin/sh\ntouch never\n", mode: 0o755}},
			code: ScriptFailed, msg: `^Script at specified location: bad.sh failed with exit code 3$`,
			tail: "LifecycleEvent - AfterInstall\nScript - ok.sh\n[stdout]first\nScript - bad.sh\n[stdout]broken\n"},
		{name: "killed by signal has empty exit code", scripts: []script{{loc: "k.sh", body: "#!/bin/sh\nkill -9 $$\n", mode: 0o755}},
			code: ScriptFailed, msg: `failed with exit code $`},
		{name: "missing", scripts: []script{{loc: "scripts/nope.sh"}},
			code: ScriptMissing, msg: `^Script does not exist at specified location: /.*/deployment-archive/scripts/nope.sh$`},
		{name: "not executable is fixed", scripts: []script{{loc: "x.sh", body: "#!/bin/sh\nexit 0\n", mode: 0o644}},
			code: Success, check: func(t *testing.T, r Request) {
				fi, _ := os.Stat(filepath.Join(r.ArchiveDir, "x.sh"))
				if fi.Mode().Perm()&0o111 != 0o111 {
					t.Errorf("mode %v", fi.Mode())
				}
			}},
		{name: "no shebang runs under sh", scripts: []script{{loc: "plain", body: "echo from-sh\n", mode: 0o755}},
			code: Success},
		{name: "timeout", scripts: []script{{loc: "slow.sh", body: "#!/bin/sh\necho start\nsleep 30\n", mode: 0o755, timeout: 500 * time.Millisecond}},
			code: ScriptTimedOut, msg: `^Script at specified location: slow.sh failed to complete in 0.5 seconds$`, tail: "[stdout]start\n", maxTime: 3 * time.Second},
		{name: "sigterm ignored gets sigkill", scripts: []script{{loc: "stubborn.sh", body: "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n", mode: 0o755, timeout: 300 * time.Millisecond}},
			code: ScriptTimedOut, maxTime: 4 * time.Second},
		{name: "env visible", env: []string{"LIFECYCLE_EVENT=AfterInstall", "DEPLOYMENT_ID=d-TEST12345", "HOME"},
			scripts: []script{{loc: "env.sh", body: "#!/bin/sh\necho \"$LIFECYCLE_EVENT $DEPLOYMENT_ID ${HOME-unset} $PATH\" > \"$(dirname \"$0\")/../out\"\n", mode: 0o755}},
			code:    Success, check: func(t *testing.T, r Request) {
				b, _ := os.ReadFile(out(r))
				if !strings.HasPrefix(string(b), "AfterInstall d-TEST12345 unset /") {
					t.Errorf("script saw %q", b)
				}
			}},
		{name: "runas nobody", scripts: []script{{loc: "who.sh", body: "#!/bin/sh\n# rewritten by the test\n", mode: 0o755, runas: "nobody"}},
			code: Success},
		{name: "runas failing message", scripts: []script{{loc: "f.sh", body: "#!/bin/sh\nexit 2\n", mode: 0o755, runas: "nobody"}},
			code: ScriptFailed, msg: `^Script at specified location: f.sh run as user nobody failed with exit code 2$`},
		{name: "background child holds stdout", scripts: []script{{loc: "bg.sh", body: "#!/bin/sh\nsleep 4 &\necho parent done\n", mode: 0o755, timeout: time.Second}},
			code: OutputsLeftOpen, msg: `^Script at specified location: bg.sh failed to close STDOUT$`, maxTime: 4 * time.Second},
		{name: "background child redirected is fine", scripts: []script{{loc: "bg2.sh", body: "#!/bin/sh\nsleep 4 >/dev/null 2>&1 &\necho ok\n", mode: 0o755, timeout: 5 * time.Second}},
			code: Success, maxTime: 3 * time.Second},
		{name: "context cancelled", scripts: []script{{loc: "long.sh", body: "#!/bin/sh\nsleep 30\n", mode: 0o755}},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			code: UnknownError, msg: `shutting down`, maxTime: 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.scripts[0].runas != "" && os.Geteuid() != 0 {
				t.Skip("runas needs root")
			}
			r := setup(t, tt.scripts...)
			r.Env = tt.env
			var whoFile string
			if tt.name == "runas nobody" {
				// nobody cannot write into the test's 0700 temp dirs; use a file it may write.
				f, err := os.CreateTemp("", "whoami")
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				whoFile = f.Name()
				t.Cleanup(func() { os.Remove(whoFile) })
				os.Chmod(whoFile, 0o666)
				p := filepath.Join(r.ArchiveDir, "who.sh")
				if err := os.WriteFile(p, []byte(fmt.Sprintf("#!/bin/sh\nid -un > %s\n", whoFile)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			start := time.Now()
			res := Run(ctx, r)
			elapsed := time.Since(start)
			if res.Code != tt.code {
				t.Fatalf("code %d (%s), want %d; message %q; tail %q", res.Code, ErrorCodeName(res.Code), tt.code, res.Message, res.LogTail)
			}
			if tt.msg != "" && !regexp.MustCompile(tt.msg).MatchString(res.Message) {
				t.Errorf("message %q, want /%s/", res.Message, tt.msg)
			}
			if tt.tail != "" && !strings.Contains(res.LogTail, tt.tail) {
				t.Errorf("tail %q, want containing %q", res.LogTail, tt.tail)
			}
			if tt.code != Success && res.ScriptName == "" {
				t.Errorf("no script name")
			}
			if tt.code == Success && (res.LogTail != "" || res.Message != "") {
				t.Errorf("success carries %q / %q", res.Message, res.LogTail)
			}
			if tt.maxTime > 0 && elapsed > tt.maxTime {
				t.Errorf("took %v, want under %v", elapsed, tt.maxTime)
			}
			if _, err := os.Stat(filepath.Join(r.ArchiveDir, "never")); err == nil {
				t.Errorf("a script after the failing one ran")
			}
			if whoFile != "" {
				b, _ := os.ReadFile(whoFile)
				if strings.TrimSpace(string(b)) != "nobody" {
					t.Errorf("id -un = %q", b)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestNoScriptsIsNoop(t *testing.T) {
	r := setup(t)
	if res := Run(context.Background(), r); res.Code != Success {
		t.Fatal(res)
	}
	if _, err := os.Stat(r.LogPath); err == nil {
		t.Error("noop event wrote a log")
	}
}

func TestLogTail(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n"
	tests := []struct {
		name    string
		entries []string
		want    int // entries kept
	}{
		{"50 lines of 100 keep 20", repeat(line, 50), 20},
		{"small all kept", repeat("ab\n", 5), 5},
		{"huge single entry empties", []string{strings.Repeat("y", 2048)}, 0},
		{"just under", []string{strings.Repeat("y", 2047)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &logs{}
			for _, e := range tt.entries {
				l.add(e)
			}
			if len(l.tail) != tt.want {
				t.Errorf("kept %d entries, want %d", len(l.tail), tt.want)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestErrorCodeName(t *testing.T) {
	want := []string{"Success", "ScriptMissing", "ScriptNotExecutable", "ScriptTimedOut", "ScriptFailed", "UnknownError", "UnknownError", "UnknownError"}
	for code, w := range want {
		if got := ErrorCodeName(code); got != w {
			t.Errorf("ErrorCodeName(%d) = %s, want %s", code, got, w)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "C=3"}, []string{"B=20", "C", "D=4"})
	if strings.Join(got, ",") != "A=1,B=2,B=20,D=4" {
		t.Errorf("mergeEnv = %v", got)
	}
}

// TestRunRefusesScriptsOutsideArchive: a location that leads out of the
// deployment archive, by ".." or through a symlink, is never run (the
// official agent runs it); a symlink inside the archive still works.
func TestRunRefusesScriptsOutsideArchive(t *testing.T) {
	tests := []struct {
		name  string
		loc   string
		setup func(t *testing.T, archive string)
		code  int
	}{
		{name: "dotdot host binary", loc: "../../bin/sh", code: ScriptMissing},
		{name: "dotdot to a script beside the archive", loc: "../outside.sh", code: ScriptMissing},
		{name: "rooted dotdot", loc: "/../outside.sh", code: ScriptMissing},
		{name: "dotdot after a name", loc: "scripts/../../outside.sh", code: ScriptMissing},
		{name: "symlink to a script beside the archive", loc: "run.sh", code: ScriptMissing, setup: func(t *testing.T, archive string) {
			symlink(t, "../outside.sh", filepath.Join(archive, "run.sh"))
		}},
		{name: "symlinked directory out", loc: "up/outside.sh", code: ScriptMissing, setup: func(t *testing.T, archive string) {
			symlink(t, filepath.Dir(archive), filepath.Join(archive, "up"))
		}},
		{name: "symlink inside runs", loc: "run.sh", code: Success, setup: func(t *testing.T, archive string) {
			if err := os.MkdirAll(filepath.Join(archive, "scripts"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(archive, "scripts", "real.sh"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, "scripts/real.sh", filepath.Join(archive, "run.sh"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := setup(t, script{loc: tt.loc})
			if err := os.MkdirAll(r.ArchiveDir, 0o755); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(filepath.Dir(r.ArchiveDir), "ran")
			outside := filepath.Join(filepath.Dir(r.ArchiveDir), "outside.sh")
			if err := os.WriteFile(outside, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, r.ArchiveDir)
			}
			res := Run(context.Background(), r)
			if res.Code != tt.code {
				t.Fatalf("code %s, want %s: %q", ErrorCodeName(res.Code), ErrorCodeName(tt.code), res.Message)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the script outside the archive ran")
			}
			if tt.code == Success {
				return
			}
			want := "Script at specified location: " + tt.loc + " was not run: "
			if !strings.HasPrefix(res.Message, want) || !strings.Contains(res.Message, "outside the deployment archive") {
				t.Errorf("message %q", res.Message)
			}
			if res.ScriptName != tt.loc {
				t.Errorf("script name %q", res.ScriptName)
			}
		})
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
