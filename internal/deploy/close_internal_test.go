package deploy

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// TestCloseJoinsGoroutines: every goroutine the runner's parts start (the
// change router, the executor's scheduler and lease renewal, the
// reconciler's lease loop) has ended when Close returns.
func TestCloseJoinsGoroutines(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := runtime.NumGoroutine()
	r := New(Config{Store: st, Exclusive: true})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine(); n <= base {
		t.Fatalf("%d goroutines after Start, %d before: the runner started none", n, base)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Close joined its goroutines; the store's may take a moment to settle.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}
