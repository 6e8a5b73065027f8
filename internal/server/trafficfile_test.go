package server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadTrafficFileStickyCookie(t *testing.T) {
	p := filepath.Join(t.TempDir(), "traffic.yml")
	if err := os.WriteFile(p, []byte("targetGroups:\n  - name: web\n    listen: 127.0.0.1:0\n    stickyCookie: CUTOVER_STICKY\n  - name: api\n    listen: 127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tgs, err := LoadTrafficFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(tgs) != 2 || tgs[0].StickyCookie != "CUTOVER_STICKY" || tgs[1].StickyCookie != "" {
		t.Fatalf("LoadTrafficFile = %+v", tgs)
	}
}
