package dashboard_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// nextEvent is the stream's next event ("" when it ended).
func nextEvent(t *testing.T, events <-chan string) string {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
		return ""
	}
}

// TestListStreamSeesOnlyItsAccount: account B's deployment list stream is
// not woken by account A's deployments, and it ends as soon as B's key
// is revoked. A's change is made before the revocation, so on a stream
// that wakes for every account "deployments" would come first.
func TestListStreamSeesOnlyItsAccount(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t)
	b, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "bob", Account: "222222222222", Grant: access.Grant{Role: access.ReadOnly}})
	if err != nil {
		t.Fatal(err)
	}
	c := newUIClient(t, env.URL)
	if st := c.login(b.AccessKeyID, b.SecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	events := c.events(t, env.URL+"/ui/events")
	if ev := nextEvent(t, events); ev != "deployments" {
		t.Fatalf("first event %q", ev)
	}
	registerHost(t, env, "h1", map[string]string{"role": "web"})
	env.SetupGroup(t, "app", "grp", "", "role", "web")
	createDeployment(t, env, "app", "grp") // account A's (the root key's)
	if err := env.Server.Keys.Revoke(ctx, b.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev != "failure" {
		t.Fatalf("after A's deployment and B's revocation B's stream sent %q, want failure", ev)
	}
	if ev := nextEvent(t, events); ev != "" {
		t.Fatalf("the stream of a revoked key goes on: %q", ev)
	}
}

// TestStreamCapsPerKey: one key's streams are capped (16), and that key
// at its cap locks out neither another account nor another key.
func TestStreamCapsPerKey(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t)
	b, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "bob", Account: "222222222222", Grant: access.Grant{Role: access.ReadOnly}})
	if err != nil {
		t.Fatal(err)
	}
	cb := newUIClient(t, env.URL)
	if st := cb.login(b.AccessKeyID, b.SecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	for range 16 {
		cb.events(t, env.URL+"/ui/events")
	}
	req, _ := http.NewRequest("GET", env.URL+"/ui/events", nil)
	resp, err := cb.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("17th stream of one key: %s", resp.Status)
	}
	ca := newUIClient(t, env.URL)
	if st := ca.login(env.AccessKey, env.SecretKey); st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	if ev := nextEvent(t, ca.events(t, env.URL+"/ui/events")); ev != "deployments" {
		t.Fatalf("A's stream while B's key is at its cap: %q", ev)
	}
}
