package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestReleaseArchive runs scripts/release for this machine's platform and
// checks the archive: its files, and a binary that reports the version it
// was stamped with. The first run compiles everything with -trimpath (a
// minute or more); later runs hit the build cache.
func TestReleaseArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("release build skipped in -short mode")
	}
	out := t.TempDir()
	const version = "v0.0.0-releasetest"
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("../../scripts/release")
	cmd.Env = append(os.Environ(), "VERSION="+version, "PLATFORMS="+platform, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, b)
	}
	name := "cutover_" + version + "_" + runtime.GOOS + "_" + runtime.GOARCH
	f, err := os.Open(filepath.Join(out, name+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var files []string
	bin := filepath.Join(t.TempDir(), "cutover")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		files = append(files, h.Name)
		if h.Name == name+"/cutover" {
			if h.Mode&0o111 == 0 {
				t.Errorf("binary mode %o is not executable", h.Mode)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, want := range []string{"/cutover", "/README.md", "/systemd/cutover-server.service", "/systemd/cutover-agent.service"} {
		if !slices.Contains(files, name+want) {
			t.Errorf("archive lacks %s%s: %v", name, want, files)
		}
	}
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil || !strings.Contains(string(sums), name+".tar.gz") {
		t.Errorf("SHA256SUMS: %q %v", sums, err)
	}
	got, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), version) {
		t.Errorf("cutover version: %q %v, want %s", got, err, version)
	}
}
