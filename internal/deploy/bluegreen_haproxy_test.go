package deploy_test

import (
	"testing"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// TestBlueGreenHAProxyCutoverAndRollback is the main blue/green flow behind
// a real HAProxy driven over its runtime API (skipped loudly when the
// haproxy binary is missing).
func TestBlueGreenHAProxyCutoverAndRollback(t *testing.T) {
	bgMainFlow(t, traffic.DriverHAProxy)
}
