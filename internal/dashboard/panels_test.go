package dashboard_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/chromedp/chromedp"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/trigger"
)

const hookTopic = "arn:aws:sns:us-east-1:000000000000:deployments"

// webhook is a real HTTP endpoint the server delivers trigger
// notifications to.
// While down it answers 503.
type webhook struct {
	srv  *httptest.Server
	got  atomic.Int64
	down atomic.Bool
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.down.Load() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.got.Add(1)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// config writes the server's triggers configuration naming the webhook.
func (w *webhook) config(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "triggers.yaml")
	if err := os.WriteFile(p, []byte("triggers:\n  - topicArn: "+hookTopic+"\n    url: "+w.srv.URL+"/sns\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// subscribe adds a trigger on the blue/green group's deployment events.
func (w *webhook) subscribe(t *testing.T, env *servertest.Env) {
	_, err := env.Client.UpdateDeploymentGroup(context.Background(), &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName: aws.String(servertest.BGApp), CurrentDeploymentGroupName: aws.String(servertest.BGGroup),
		TriggerConfigurations: []cdtypes.TriggerConfig{{TriggerName: aws.String("ops"), TriggerTargetArn: aws.String(hookTopic),
			TriggerEvents: []cdtypes.TriggerEventType{"DeploymentStart", "DeploymentReady", "DeploymentSuccess", "DeploymentStop", "InstanceSuccess"}}},
	})
	if err != nil {
		t.Fatalf("UpdateDeploymentGroup with a trigger: %v", err)
	}
}

// load is a client sending requests through the builtin router until the
// test ends.
type load struct{ ok atomic.Int64 }

func (l *load) count() int64 { return l.ok.Load() }

func driveTraffic(t *testing.T, url string) *load {
	l := &load{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(100 * time.Millisecond) // 10 req/s: enough for a rate, little load
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if resp, err := hc.Get(url); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					l.ok.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	return l
}

// rateOf is a JavaScript expression: the request rate the rates panel
// shows for a target-group member (0 without a row).
func rateOf(member string) string {
	return `+((document.querySelector('#rates tr[data-member="` + member + `"] .req-rate') || {}).textContent || 0)`
}

func evalNumber(t *testing.T, ctx context.Context, expr string) float64 {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](expr))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkDeliveries reads the delivery log page data as keys of different
// reach: what the store holds for the deployment, to whoever may read it.
func checkDeliveries(t *testing.T, f *servertest.BlueGreen, id string) {
	t.Helper()
	ctx := context.Background()
	want, err := trigger.Deliveries(ctx, f.Env.Server.Store, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(user string, g access.Grant) *uiClient {
		k, err := f.Env.Server.Keys.CreateKey(ctx, keys.Spec{User: user, Grant: g})
		if err != nil {
			t.Fatal(err)
		}
		c := newUIClient(t, f.Env.URL)
		if st := c.login(k.AccessKeyID, k.SecretAccessKey); st != http.StatusOK {
			t.Fatalf("sign-in as %v: %d", g, st)
		}
		return c
	}
	reader := mk("ui-shop", access.Grant{Role: access.ReadOnly, Applications: []string{servertest.BGApp}})
	st, m, _ := reader.do("GET", "/ui/triggers?deployment="+id, "", nil)
	got, _ := m["deliveries"].([]any)
	if st != http.StatusOK || len(got) != len(want) || len(want) == 0 {
		t.Fatalf("delivery log as a reader of %s: %d, %d deliveries, the store has %d: %v", servertest.BGApp, st, len(got), len(want), m)
	}
	for i, g := range got {
		d := g.(map[string]any)
		if d["event"] != want[i].Event || d["status"] != want[i].Status || d["topicArn"] != hookTopic || d["attempts"] != float64(want[i].Attempts) {
			t.Errorf("delivery %d: %v, stored %+v", i, d, want[i])
		}
	}
	other := mk("ui-other", access.Grant{Role: access.ReadOnly, Applications: []string{"other-app"}})
	// A key limited to applications is refused a deployment that does not
	// exist (it cannot be placed in an application): ask as an unlimited one.
	all := mk("ui-all", access.Grant{Role: access.ReadOnly})
	for _, tc := range []struct {
		c    *uiClient
		path string
		typ  string
	}{
		{other, "/ui/triggers?deployment=" + id, "AccessDeniedException"},
		{all, "/ui/triggers?deployment=d-NOSUCH000", "DeploymentDoesNotExistException"},
		{all, "/ui/triggers", ""},
	} {
		st, m, _ := tc.c.do("GET", tc.path, "", nil)
		if _, listed := m["deliveries"]; st == http.StatusOK || listed || (tc.typ != "" && m["__type"] != tc.typ) {
			t.Errorf("GET %s: %d %v, want %s", tc.path, st, m, tc.typ)
		}
	}
}

// registerHost registers an on-premises instance whose agent never runs:
// its deployments start and wait.
func registerHost(t *testing.T, env *servertest.Env, name string, tags map[string]string) {
	t.Helper()
	if _, err := agent.Register(context.Background(), agent.RegisterRequest{Endpoint: env.URL, Region: env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""), InstanceName: name,
		Tags: tags}); err != nil {
		t.Fatal(err)
	}
}

// createDeployment starts a deployment of a revision nobody downloads.
func createDeployment(t *testing.T, env *servertest.Env, app, group string) string {
	t.Helper()
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group),
		Revision: &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3, S3Location: &cdtypes.S3Location{
			Bucket: aws.String("bundles"), Key: aws.String("app.tar"), BundleType: cdtypes.BundleTypeTar}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.DeploymentId)
}

// events opens an event stream with the client's session and returns the
// names of the events it sends; the stream is closed when the test ends.
func (c *uiClient) events(t *testing.T, url string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("stream %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				select {
				case events <- ev:
				default: // a test that stopped reading
				}
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close(); <-done })
	return events
}
