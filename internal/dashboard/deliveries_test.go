package dashboard_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestDeliveryLogLive: a deployment's trigger delivery fails while the
// webhook is down; the dashboard's log shows it pending with its error,
// the deployment's event stream announces each attempt the worker
// records, and the log then shows it delivered.
func TestDeliveryLogLive(t *testing.T) {
	hook := newWebhook(t)
	hook.down.Store(true)
	env := servertest.Start(t, func(c *server.Config) {
		c.TriggersConfig = hook.config(t)
		c.TriggerBackoff = func(int) time.Duration { return 200 * time.Millisecond }
	})
	registerHost(t, env, "h1", map[string]string{"role": "web"})
	env.SetupGroup(t, "app", "grp", "", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = []types.TriggerConfig{{TriggerName: aws.String("ops"), TriggerTargetArn: aws.String(hookTopic),
			TriggerEvents: []types.TriggerEventType{types.TriggerEventTypeDeploymentStart}}}
	})
	id := createDeployment(t, env, "app", "grp")
	c := newUIClient(t, env.URL)
	if st := c.login(env.AccessKey, env.SecretKey); st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	log := func() []map[string]any {
		t.Helper()
		st, m, _ := c.do("GET", "/ui/triggers?deployment="+id, "", nil)
		if st != http.StatusOK {
			t.Fatalf("delivery log: %d %v", st, m)
		}
		var out []map[string]any
		for _, d := range m["deliveries"].([]any) {
			out = append(out, d.(map[string]any))
		}
		return out
	}
	waitLog := func(what string, ok func(d map[string]any) bool) map[string]any {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; {
			if ds := log(); len(ds) == 1 && ok(ds[0]) {
				return ds[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery log never showed %s: %v", what, log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	d := waitLog("a failed attempt", func(d map[string]any) bool { return d["status"] == "Pending" && d["attempts"].(float64) >= 1 })
	if d["event"] != "DeploymentStart" || d["trigger"] != "ops" || d["topicArn"] != hookTopic ||
		!strings.Contains(d["lastError"].(string), "503") || d["lastHttpStatus"] != float64(503) || d["nextAttempt"] == nil {
		t.Errorf("pending delivery %v: want DeploymentStart to the topic, HTTP 503 as its last error and a next attempt", d)
	}
	if _, has := d["message"]; has {
		t.Errorf("the log shows the message body: %v", d)
	}

	// The deployment's stream announces the worker's next attempts.
	events := c.events(t, env.URL+"/ui/events?deployment="+id)
	count := func(want string, n int, timeout time.Duration) {
		t.Helper()
		deadline := time.After(timeout)
		for got := 0; got < n; {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("stream ended before %d %q events", n, want)
				}
				if ev == want {
					got++
				}
			case <-deadline:
				t.Fatalf("fewer than %d %q events in %v", n, want, timeout)
			}
		}
	}
	count("deliveries", 1, 5*time.Second) // the first, on opening
	count("deliveries", 1, 5*time.Second) // an attempt recorded since
	hook.down.Store(false)
	waitLog("the delivery", func(d map[string]any) bool { return d["status"] == "Delivered" })
	if hook.got.Load() != 1 {
		t.Errorf("the webhook received %d notifications, want 1", hook.got.Load())
	}
}
