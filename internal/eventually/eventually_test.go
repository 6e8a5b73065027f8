package eventually

import (
	"errors"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping the
// test, so that the helper's own failure can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestTrue(t *testing.T) {
	start := time.Now()
	True(t, time.Minute, "the third check", func() bool { return time.Since(start) > 3*Poll })

	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		NoError(r, 2*Poll, "never", func() error { return errors.New("still down") })
	}()
	if r.failed == "" {
		t.Fatal("a condition never met did not fail the test")
	}
}
