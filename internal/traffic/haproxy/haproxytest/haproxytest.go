// Package haproxytest runs a real HAProxy for tests.
package haproxytest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy"
)

// SkipMessage is printed when the haproxy binary is missing.
const SkipMessage = "SKIPPING HAProxy tests: install Debian package haproxy (.ci/run does)"

// StartHAProxy runs haproxy serving tgs until the test ends and returns its
// runtime API socket. It skips the test loudly when haproxy is not installed.
func StartHAProxy(t testing.TB, tgs []traffic.TargetGroupConfig) (socket string) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Log(SkipMessage)
		t.Skip(SkipMessage)
	}
	// Unix socket paths are limited to 108 bytes; subtest TempDirs can be longer.
	dir := t.TempDir()
	if len(dir) > 80 {
		d, err := os.MkdirTemp("", "hap")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := haproxy.Start(ctx, dir, tgs)
	if err != nil {
		t.Fatalf("starting haproxy: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", p.Output())
		}
	})
	return p.Socket
}

// FreeAddr returns a loopback address with a port free right now, for
// HAProxy frontends, which cannot report a port chosen by the kernel.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
