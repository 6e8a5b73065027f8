package dashboard_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestReplicasShareSessionsAndEvents: two replicas on one PostgreSQL
// database. A session signed in at one is valid at the other (sessions
// are store records), and the other's event streams hear of a deployment
// written by the first through the change feed (LISTEN/NOTIFY).
func TestReplicasShareSessionsAndEvents(t *testing.T) {
	url := pgtest.Start(t)
	dir := t.TempDir() // one server key for both replicas
	a := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(dir))
	b := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(dir))
	// A registered host (no agent needs to run: only the deployment's
	// creation matters here).
	registerHost(t, a, "h1", map[string]string{"role": "web"})
	a.SetupGroup(t, "app", "grp", "", "role", "web")

	c := newUIClient(t, a.URL)
	if st := c.login(a.AccessKey, a.SecretKey); st != http.StatusOK {
		t.Fatalf("sign-in at replica A: %d", st)
	}
	c.base = b.URL
	if st, m, _ := c.do("POST", "/ui/api/ListApplications", "{}", map[string]string{"X-Cutover-Csrf": c.csrf}); st != http.StatusOK {
		t.Fatalf("A's session at replica B: %d %v", st, m)
	}

	events := c.events(t, b.URL+"/ui/events")
	next := func(timeout time.Duration) (string, bool) {
		select {
		case ev, ok := <-events:
			return ev, ok
		case <-time.After(timeout):
			return "", false
		}
	}
	if ev, ok := next(5 * time.Second); !ok || ev != "deployments" {
		t.Fatalf("first event %q %v", ev, ok)
	}
	// Quiet until something changes: nothing polls.
	if ev, ok := next(500 * time.Millisecond); ok {
		t.Fatalf("event %q without a change", ev)
	}
	createDeployment(t, a, "app", "grp")
	if ev, ok := next(5 * time.Second); !ok || ev != "deployments" {
		t.Fatalf("B's stream after a deployment created at A: %q %v", ev, ok)
	}
}
