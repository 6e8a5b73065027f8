package bundle

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type entry struct {
	name     string
	typ      byte // tar type flag; 0 = regular
	body     string
	mode     int64
	linkname string
	uname    string
	uid      int
}

func writeTar(t *testing.T, path string, gz bool, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: e.typ, Linkname: e.linkname, Uname: e.uname, Uid: e.uid, ModTime: time.Unix(1_600_000_000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write(data)
		zw.Close()
		data = zb.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := fs.FileMode(e.mode)
		switch e.typ {
		case tar.TypeDir:
			mode |= fs.ModeDir
		case tar.TypeSymlink:
			mode |= fs.ModeSymlink | 0o777
			e.body = e.linkname
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t *testing.T, p string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

func TestUnpackFormats(t *testing.T) {
	entries := []entry{
		{name: "appspec.yml", body: "version: 0.0\n"},
		{name: "scripts/", typ: tar.TypeDir, mode: 0o750},
		{name: "scripts/start.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755},
		{name: "deep/a/b/c.txt", body: "nested", mode: 0o600},
		{name: "link", typ: tar.TypeSymlink, linkname: "scripts/start.sh"},
	}
	tests := []struct {
		name, bundleType string
		write            func(t *testing.T, p string)
	}{
		{"tar", "tar", func(t *testing.T, p string) { writeTar(t, p, false, entries) }},
		{"tgz", "tgz", func(t *testing.T, p string) { writeTar(t, p, true, entries) }},
		{"tar autodetects gzip", "tar", func(t *testing.T, p string) { writeTar(t, p, true, entries) }},
		{"unknown type is tar", "YAML", func(t *testing.T, p string) { writeTar(t, p, false, entries) }},
		{"zip", "zip", func(t *testing.T, p string) { writeZip(t, p, entries) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive, dest := filepath.Join(dir, "bundle.tar"), filepath.Join(dir, "deployment-archive")
			tt.write(t, archive)
			// A stale archive from an earlier attempt is replaced.
			os.MkdirAll(filepath.Join(dest, "stale"), 0o755)
			if err := Unpack(context.Background(), archive, tt.bundleType, dest, Limits{}); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if got := readFile(t, filepath.Join(dest, "scripts/start.sh")); got != "#!/bin/sh\necho hi\n" {
				t.Errorf("content %q", got)
			}
			if got := readFile(t, filepath.Join(dest, "deep/a/b/c.txt")); got != "nested" {
				t.Errorf("nested content %q", got)
			}
			if m := perm(t, filepath.Join(dest, "scripts/start.sh")); m != 0o755 {
				t.Errorf("start.sh mode %o", m)
			}
			if m := perm(t, filepath.Join(dest, "deep/a/b/c.txt")); m != 0o600 {
				t.Errorf("c.txt mode %o", m)
			}
			if m := perm(t, filepath.Join(dest, "scripts")); m != 0o750 {
				t.Errorf("scripts dir mode %o", m)
			}
			if l, err := os.Readlink(filepath.Join(dest, "link")); err != nil || l != "scripts/start.sh" {
				t.Errorf("link = %q, %v", l, err)
			}
			if _, err := os.Stat(filepath.Join(dest, "stale")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stale content survived: %v", err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*unpack*"))
			if len(left) != 0 {
				t.Errorf("staging left behind: %v", left)
			}
		})
	}
}

func TestUnpackOwnerAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	archive, dest := filepath.Join(dir, "b.tar"), filepath.Join(dir, "out")
	writeTar(t, archive, false, []entry{
		{name: "byname", body: "x", uname: "nobody", uid: 12345},
		{name: "bynumber", body: "x", uname: "no-such-user-here", uid: 4242},
		{name: "suid", body: "x", mode: 0o4755, uid: 0},
	})
	if err := Unpack(context.Background(), archive, "tar", dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	uid := func(p string) uint32 {
		var st syscall.Stat_t
		syscall.Stat(filepath.Join(dest, p), &st)
		return st.Uid
	}
	if uid("byname") != 65534 {
		t.Errorf("byname uid %d, want nobody (name wins over number)", uid("byname"))
	}
	if uid("bynumber") != 4242 {
		t.Errorf("bynumber uid %d", uid("bynumber"))
	}
	if m := perm(t, filepath.Join(dest, "suid")); m != 0o4755 {
		t.Errorf("suid mode %o", m)
	}
}

func TestUnpackWrapperDir(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string // a path that must exist under dest
	}{
		{"github style wrapper stripped", []entry{
			{name: "repo-abc123/", typ: tar.TypeDir, mode: 0o755},
			{name: "repo-abc123/AppSpec.yml", body: "x"},
			{name: "repo-abc123/src/main.go", body: "x"},
		}, "src/main.go"},
		{"wrapper without appspec kept", []entry{
			{name: "app/", typ: tar.TypeDir, mode: 0o755},
			{name: "app/main.go", body: "x"},
		}, "app/main.go"},
		{"two root entries kept", []entry{
			{name: "app/appspec.yml", body: "x"},
			{name: "README", body: "x"},
		}, "app/appspec.yml"},
		{"single file root kept", []entry{{name: "appspec.yml", body: "x"}}, "appspec.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive, dest := filepath.Join(dir, "b.tar"), filepath.Join(dir, "out")
			writeTar(t, archive, true, tt.entries)
			if err := Unpack(context.Background(), archive, "tar", dest, Limits{}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dest, tt.want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUnpackRejectsEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"dotdot", []entry{{name: "../x", body: "evil"}}},
		{"dotdot inside", []entry{{name: "a/../../x", body: "evil"}}},
		{"absolute", []entry{{name: "/tmp/evil", body: "evil"}}},
		{"symlink outside", []entry{{name: "etc", typ: tar.TypeSymlink, linkname: "../../etc"}}},
		{"symlink absolute", []entry{{name: "passwd", typ: tar.TypeSymlink, linkname: "/etc/passwd"}}},
		{"symlink dotdot after a name", []entry{
			{name: "here", typ: tar.TypeSymlink, linkname: "."},
			{name: "up", typ: tar.TypeSymlink, linkname: "here/.."},
		}},
		{"hardlink outside", []entry{{name: "h", typ: tar.TypeLink, linkname: "../../etc/passwd"}}},
		{"hardlink absolute", []entry{{name: "h", typ: tar.TypeLink, linkname: "/etc/passwd"}}},
		{"write through earlier symlink", []entry{
			{name: "d", typ: tar.TypeDir, mode: 0o755},
			{name: "l", typ: tar.TypeSymlink, linkname: "d"},
			{name: "l/x", body: "through"},
		}},
		{"hardlink through symlink", []entry{
			{name: "d/f", body: "x"},
			{name: "l", typ: tar.TypeSymlink, linkname: "d"},
			{name: "h", typ: tar.TypeLink, linkname: "l/f"},
		}},
		{"device node", []entry{{name: "null", typ: tar.TypeChar}}},
	}
	for _, tt := range tests {
		for _, kind := range []string{"tar", "zip"} {
			if kind == "zip" && (tt.entries[len(tt.entries)-1].typ == tar.TypeLink || tt.entries[len(tt.entries)-1].typ == tar.TypeChar) {
				continue // zip has no hard links or devices
			}
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				archive, dest := filepath.Join(dir, "b."+kind), filepath.Join(dir, "sub", "out")
				os.Mkdir(filepath.Join(dir, "sub"), 0o755)
				if kind == "zip" {
					writeZip(t, archive, tt.entries)
				} else {
					writeTar(t, archive, false, tt.entries)
				}
				err := Unpack(context.Background(), archive, kind, dest, Limits{})
				if !errors.Is(err, ErrUnsafe) {
					t.Fatalf("err = %v, want ErrUnsafe", err)
				}
				if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("dest exists after a failed unpack")
				}
				if m, _ := filepath.Glob(filepath.Join(dir, "*", "x")); len(m) > 0 {
					t.Errorf("escaped file written: %v", m)
				}
				if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
					t.Errorf("escaped file written")
				}
				left, _ := filepath.Glob(filepath.Join(dir, "sub", ".*"))
				if len(left) != 0 {
					t.Errorf("staging left behind: %v", left)
				}
			})
		}
	}
}

func TestUnpackAllowsInternalLinks(t *testing.T) {
	dir := t.TempDir()
	archive, dest := filepath.Join(dir, "b.tar"), filepath.Join(dir, "out")
	writeTar(t, archive, false, []entry{
		{name: "lib/v1/x.so", body: "so"},
		{name: "lib/cur", typ: tar.TypeSymlink, linkname: "v1"},
		{name: "bin/up", typ: tar.TypeSymlink, linkname: "../lib/v1/x.so"},
		{name: "hard", typ: tar.TypeLink, linkname: "lib/v1/x.so"},
	})
	if err := Unpack(context.Background(), archive, "tar", dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "bin/up")); got != "so" {
		t.Errorf("bin/up -> %q", got)
	}
	if got := readFile(t, filepath.Join(dest, "hard")); got != "so" {
		t.Errorf("hard -> %q", got)
	}
}

func TestUnpackLimits(t *testing.T) {
	many := []entry{{name: "a", body: "1"}, {name: "b", body: "2"}, {name: "c", body: "3"}}
	big := []entry{{name: "a", body: strings.Repeat("x", 600)}, {name: "b", body: strings.Repeat("y", 600)}}
	tests := []struct {
		name    string
		entries []entry
		lim     Limits
		wantErr bool
	}{
		{"files ok", many, Limits{MaxFiles: 3}, false},
		{"too many files", many, Limits{MaxFiles: 2}, true},
		{"file too big", big, Limits{MaxFileBytes: 500}, true},
		{"total too big", big, Limits{MaxTotalBytes: 1000}, true},
		{"total ok", big, Limits{MaxTotalBytes: 1200}, false},
		{"unlimited", big, Limits{MaxTotalBytes: -1, MaxFileBytes: -1, MaxFiles: -1}, false},
	}
	for _, tt := range tests {
		for _, kind := range []string{"tar", "zip"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				dir := t.TempDir()
				archive, dest := filepath.Join(dir, "b"), filepath.Join(dir, "out")
				if kind == "zip" {
					writeZip(t, archive, tt.entries)
				} else {
					writeTar(t, archive, false, tt.entries)
				}
				err := Unpack(context.Background(), archive, kind, dest, tt.lim)
				if tt.wantErr != errors.Is(err, ErrLimit) {
					t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
				}
			})
		}
	}
}

func TestUnpackCancelled(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "b.tar")
	writeTar(t, archive, false, []entry{{name: "a", body: "x"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Unpack(ctx, archive, "tar", filepath.Join(dir, "out"), Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestUnpackRefusesCorruptGzipTrailer: the tar stream of these archives is
// complete, only the gzip trailer (CRC-32, then length) is damaged; GNU
// tar refuses them, and so does Unpack.
func TestUnpackRefusesCorruptGzipTrailer(t *testing.T) {
	entries := []entry{{name: "appspec.yml", body: "version: 0.0\n"}, {name: "scripts/start.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755}}
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"trailer truncated", func(b []byte) []byte { return b[:len(b)-4] }},
		{"trailer cut off", func(b []byte) []byte { return b[:len(b)-8] }},
		{"CRC flipped", func(b []byte) []byte { b[len(b)-8] ^= 0xff; return b }},
		{"length wrong", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, "bundle.tgz")
			writeTar(t, archive, true, entries)
			b, err := os.ReadFile(archive)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(archive, tt.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if tar, err := exec.LookPath("tar"); err == nil {
				if out, err := exec.Command(tar, "-xzf", archive, "-C", t.TempDir()).CombinedOutput(); err == nil {
					t.Fatalf("GNU tar accepts the damaged archive (the test's damage is wrong): %s", out)
				}
			}
			err = Unpack(context.Background(), archive, "tgz", filepath.Join(dir, "out"), Limits{})
			if err == nil {
				t.Fatal("Unpack accepted an archive with a damaged gzip trailer")
			}
		})
	}
	// The undamaged archive unpacks (the damage above is what is refused).
	dir := t.TempDir()
	archive := filepath.Join(dir, "bundle.tgz")
	writeTar(t, archive, true, entries)
	if err := Unpack(context.Background(), archive, "tgz", filepath.Join(dir, "out"), Limits{}); err != nil {
		t.Fatal(err)
	}
}
