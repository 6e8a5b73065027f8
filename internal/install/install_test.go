package install

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cutoverhq/cutover/internal/appspec"
)

type env struct {
	archive, dest, instr string
}

// newEnv builds an archive with a directory tree and a single file.
func newEnv(t *testing.T) env {
	t.Helper()
	root := t.TempDir()
	e := env{archive: filepath.Join(root, "archive"), dest: filepath.Join(root, "dest"), instr: filepath.Join(root, "instructions")}
	files := map[string]os.FileMode{
		"app/bin/run.sh":    0o755,
		"app/conf/app.conf": 0o640,
		"app/.hidden":       0o600,
		"single.txt":        0o604,
	}
	for p, m := range files {
		full := filepath.Join(e.archive, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p), m); err != nil {
			t.Fatal(err)
		}
		os.Chmod(full, m)
	}
	return e
}

func (e env) req(spec *appspec.Spec) Request {
	return Request{ArchiveDir: e.archive, Spec: spec, InstructionsDir: e.instr, DeploymentGroupID: "dg-1"}
}

func mode(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

func owner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

func TestInstallFiles(t *testing.T) {
	e := newEnv(t)
	spec := &appspec.Spec{Files: []appspec.File{
		{Source: "app", Destination: e.dest + "/www"},
		{Source: "/single.txt", Destination: e.dest + "/etc/one"},
	}}
	if err := Install(context.Background(), e.req(spec)); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{
		"www/bin/run.sh":     0o755,
		"www/conf/app.conf":  0o640,
		"www/.hidden":        0o600,
		"etc/one/single.txt": 0o604, // destination is always a directory
	}
	for p, m := range want {
		full := filepath.Join(e.dest, p)
		if got := mode(t, full); got != m {
			t.Errorf("%s mode %o, want %o", p, got, m)
		}
	}
	b, err := os.ReadFile(filepath.Join(e.dest, "www/bin/run.sh"))
	if err != nil || string(b) != "app/bin/run.sh" {
		t.Errorf("content %q %v", b, err)
	}
	cleanup, err := os.ReadFile(filepath.Join(e.instr, "dg-1-cleanup"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(cleanup), "\n"), "\n")
	// dest itself was missing, so it is an mkdir ancestor and recorded first.
	if lines[0] != e.dest || !slices.Contains(lines, filepath.Join(e.dest, "etc/one/single.txt")) {
		t.Errorf("cleanup:\n%s", cleanup)
	}
	var plan struct {
		Instructions []map[string]any `json:"instructions"`
	}
	data, _ := os.ReadFile(filepath.Join(e.instr, "dg-1-install.json"))
	if err := json.Unmarshal(data, &plan); err != nil || len(plan.Instructions) != len(lines) {
		t.Errorf("install.json %d instructions, cleanup %d lines: %v", len(plan.Instructions), len(lines), err)
	}
}

func TestFileExistsBehavior(t *testing.T) {
	tests := []struct {
		name            string
		specBehavior    string
		requestBehavior string
		wantErr         string
		wantContent     string
		wantRecorded    bool
	}{
		{name: "default disallow", wantErr: "already exists at this location", wantContent: "old"},
		{name: "overwrite from deployment", requestBehavior: "OVERWRITE", wantContent: "single.txt", wantRecorded: true},
		{name: "retain keeps and does not record", requestBehavior: "RETAIN", wantContent: "old"},
		{name: "appspec wins over deployment", specBehavior: "RETAIN", requestBehavior: "OVERWRITE", wantContent: "old"},
		{name: "appspec disallow wins", specBehavior: "DISALLOW", requestBehavior: "OVERWRITE", wantErr: "already exists", wantContent: "old"},
		{name: "invalid deployment value", requestBehavior: "MERGE", wantErr: "invalid option", wantContent: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			os.MkdirAll(filepath.Join(e.dest, "conf"), 0o755)
			existing := filepath.Join(e.dest, "single.txt")
			os.WriteFile(existing, []byte("old"), 0o644)
			spec := &appspec.Spec{FileExistsBehavior: tt.specBehavior, Files: []appspec.File{
				{Source: "app", Destination: e.dest + "/new"}, // planned first, must not be copied on conflict
				{Source: "single.txt", Destination: e.dest},
			}}
			r := e.req(spec)
			r.FileExistsBehavior = tt.requestBehavior
			err := Install(context.Background(), r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(e.dest, "new")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("files copied before the conflict was detected")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(existing); string(b) != tt.wantContent {
				t.Errorf("content %q, want %q", b, tt.wantContent)
			}
			cleanup, _ := os.ReadFile(filepath.Join(e.instr, "dg-1-cleanup"))
			if got := strings.Contains(string(cleanup), existing+"\n"); got != tt.wantRecorded {
				t.Errorf("recorded in cleanup = %v, want %v:\n%s", got, tt.wantRecorded, cleanup)
			}
		})
	}
}

func TestSecondInstallRemovesFirst(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(e.dest, 0o755)
	first := &appspec.Spec{Files: []appspec.File{{Source: "app", Destination: e.dest + "/v1"}}}
	if err := Install(context.Background(), e.req(first)); err != nil {
		t.Fatal(err)
	}
	// A file a hook dropped into an installed directory keeps that directory alive.
	os.WriteFile(filepath.Join(e.dest, "v1/conf/local.conf"), []byte("mine"), 0o644)
	// A half-written last line (crash) is ignored.
	f, _ := os.OpenFile(filepath.Join(e.instr, "dg-1-cleanup"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(filepath.Join(e.dest, "v1/conf/local.conf"))
	f.Close()

	second := &appspec.Spec{Files: []appspec.File{{Source: "app/bin", Destination: e.dest + "/v1/bin"}}}
	if err := Install(context.Background(), e.req(second)); err != nil {
		t.Fatalf("second install (DISALLOW) conflicts with the first: %v", err)
	}
	for _, gone := range []string{"v1/.hidden", "v1/conf/app.conf"} {
		if _, err := os.Lstat(filepath.Join(e.dest, gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s not cleaned up", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dest, "v1/conf/local.conf")); err != nil {
		t.Errorf("hook-created file removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dest, "v1/bin/run.sh")); err != nil {
		t.Errorf("second install's file missing: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	e := newEnv(t)
	for _, p := range []string{"app/bin/tool.sh", "app/bin/skip.sh", "app/bin/readme.txt", "app/bin/sub/deep.sh"} {
		os.MkdirAll(filepath.Join(e.archive, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(e.archive, p), []byte("x"), 0o600)
	}
	www := e.dest + "/www"
	spec := &appspec.Spec{
		Files: []appspec.File{{Source: "app", Destination: www}, {Source: "single.txt", Destination: e.dest + "/one"}},
		Permissions: []appspec.Permission{
			// Direct children of bin matching *.sh, except skip.sh, files only.
			{Object: www + "/bin", Pattern: "*.sh", Except: []string{"skip*"}, Mode: "750", Owner: "nobody", Group: "nogroup", Type: []string{"file"}},
			// Directories only, every descendant of www.
			{Object: www, Pattern: "**", Mode: "711", Type: []string{"directory"}},
			// A file object.
			{Object: e.dest + "/one/single.txt", Pattern: "**", Mode: "400", Type: []string{"file", "directory"}},
			// An object that is neither copied nor a directory: ignored.
			{Object: e.dest + "/nothing", Pattern: "**", Mode: "777", Type: []string{"file"}},
		},
	}
	if err := Install(context.Background(), e.req(spec)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"www/bin/tool.sh", 0o750, 65534, 65534},
		{"www/bin/run.sh", 0o750, 65534, 65534},
		{"www/bin/skip.sh", 0o600, 0, 0},
		{"www/bin/readme.txt", 0o600, 0, 0},
		{"www/bin/sub/deep.sh", 0o600, 0, 0}, // not a direct child
		{"www/bin", 0o711, 0, 0},
		{"www/bin/sub", 0o711, 0, 0},
		{"one/single.txt", 0o400, 0, 0},
	}
	for _, tt := range tests {
		p := filepath.Join(e.dest, tt.path)
		if m := mode(t, p); m != tt.mode {
			t.Errorf("%s mode %o, want %o", tt.path, m, tt.mode)
		}
		if u, g := owner(t, p); u != tt.uid || g != tt.gid {
			t.Errorf("%s owner %d:%d, want %d:%d", tt.path, u, g, tt.uid, tt.gid)
		}
	}
	// object itself (www) is never changed, even though it was created here.
	if m := mode(t, www); m == 0o711 {
		t.Errorf("object itself was changed")
	}
}

func TestPermissionErrors(t *testing.T) {
	tests := []struct {
		name  string
		perms func(dest string) []appspec.Permission
		want  string
	}{
		{"overlap", func(d string) []appspec.Permission {
			return []appspec.Permission{
				{Object: d + "/www", Pattern: "**", Mode: "644", Type: []string{"file"}},
				{Object: d + "/www/bin", Pattern: "*.sh", Mode: "755", Type: []string{"file"}},
			}
		}, "more than once"},
		{"pattern on a file object", func(d string) []appspec.Permission {
			return []appspec.Permission{{Object: d + "/www/bin/run.sh", Pattern: "*.sh", Type: []string{"file"}}}
		}, "pattern and except"},
		{"unknown owner", func(d string) []appspec.Permission {
			return []appspec.Permission{{Object: d + "/www", Pattern: "**", Owner: "no-such-user-xyz", Type: []string{"file"}}}
		}, "no-such-user-xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			spec := &appspec.Spec{Files: []appspec.File{{Source: "app", Destination: e.dest + "/www"}}, Permissions: tt.perms(e.dest)}
			err := Install(context.Background(), e.req(spec))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(e.dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("files copied before the plan failed")
			}
		})
	}
}

func TestPlanConflicts(t *testing.T) {
	e := newEnv(t)
	spec := &appspec.Spec{Files: []appspec.File{
		{Source: "single.txt", Destination: e.dest},
		{Source: "single.txt", Destination: e.dest},
	}}
	if err := Install(context.Background(), e.req(spec)); err == nil || !strings.Contains(err.Error(), "Duplicate copy") {
		t.Fatalf("err = %v", err)
	}
}

func TestSymlinkCopiedAsSymlink(t *testing.T) {
	e := newEnv(t)
	os.Symlink("bin/run.sh", filepath.Join(e.archive, "app/run"))
	spec := &appspec.Spec{Files: []appspec.File{{Source: "app", Destination: e.dest}}}
	if err := Install(context.Background(), e.req(spec)); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(e.dest, "run")); err != nil || l != "bin/run.sh" {
		t.Errorf("readlink = %q, %v", l, err)
	}
}

func TestSimpleGlob(t *testing.T) {
	tests := []struct {
		name, pattern string
		want          bool
	}{
		{"a.sh", "*.sh", true},
		{"a.sh", "*", true},
		{"a.sh", "a*", true},
		{"a.sh", "*a*s*", true},
		{"a.sh", "b*", false},
		{"a.sh", "a.sh", true},
		{"a/b.sh", "*", false},
		{"a.shx", "*.sh", false},
		{"", "*", true},
	}
	for _, tt := range tests {
		if got := simpleGlob(tt.name, tt.pattern); got != tt.want {
			t.Errorf("simpleGlob(%q, %q) = %v", tt.name, tt.pattern, got)
		}
	}
}

// TestSourceOutsideArchiveRefused: a files source that leads out of the
// archive, by ".." or through a symlink, fails the Install before anything
// is copied (the official agent copies it); "/" and symlinks that stay
// inside keep working.
func TestSourceOutsideArchiveRefused(t *testing.T) {
	tests := []struct {
		name   string
		source string
		setup  func(t *testing.T, e env)
		ok     bool
	}{
		{name: "dotdot dotdot", source: "../.."},
		{name: "dotdot", source: ".."},
		{name: "dotdot file", source: "../secret"},
		{name: "rooted dotdot", source: "/../secret"},
		{name: "symlinked directory", source: "up", setup: func(t *testing.T, e env) {
			os.Symlink("..", filepath.Join(e.archive, "up"))
		}},
		{name: "symlinked directory below", source: "app", setup: func(t *testing.T, e env) {
			os.Symlink(filepath.Dir(e.archive), filepath.Join(e.archive, "app", "up"))
		}},
		{name: "symlinked file", source: "passwd", setup: func(t *testing.T, e env) {
			os.Symlink("../secret", filepath.Join(e.archive, "passwd"))
		}},
		{name: "root", source: "/", ok: true},
		{name: "symlink inside", source: "conf", ok: true, setup: func(t *testing.T, e env) {
			os.Symlink("app/conf", filepath.Join(e.archive, "conf"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			secret := filepath.Join(filepath.Dir(e.archive), "secret")
			if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, e)
			}
			spec := &appspec.Spec{Files: []appspec.File{{Source: tt.source, Destination: e.dest}}}
			err := Install(context.Background(), e.req(spec))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "outside the deployment archive") {
				t.Fatalf("err = %v", err)
			}
			if _, err := os.Stat(e.dest); err == nil {
				t.Errorf("something was installed")
			}
		})
	}
}
