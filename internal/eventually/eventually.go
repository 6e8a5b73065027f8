// Package eventually is the tests' one way to wait for something that
// happens asynchronously (a server coming up, a deployment reaching a
// status, a file appearing), instead of hand-rolled loops and fixed
// sleeps. Conditions are polled often, so a passing test waits only as
// long as it must, against a generous deadline, so that a loaded machine
// does not fail it. Only tests import it.
package eventually

import (
	"testing"
	"time"
)

// Poll is how often conditions are checked.
const Poll = 25 * time.Millisecond

// True waits until cond reports true, failing t after timeout with what
// it was waiting for.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	NoError(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

type notYet struct{}

func (notYet) Error() string { return "condition not met" }

var errNotYet error = notYet{}

// NoError waits until f returns nil, failing t after timeout with what it
// was waiting for and f's last error.
func NoError(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(Poll)
	}
}
