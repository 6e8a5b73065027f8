package trigger_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/trigger"
)

const (
	topicAll   = "arn:aws:sns:us-east-1:000000000000:deployments"
	topicSlack = "arn:aws:sns:us-east-1:000000000000:chat"
	secret     = "hook-secret"
)

// receiver is a real HTTP endpoint recording what it is sent; while down it
// answers 503.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	down bool
	got  []received
}

type received struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.got = append(r.got, received{req.URL.Path, req.Header.Clone(), b})
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.received(); len(got) >= n {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("received %d notifications, want %d", len(r.received()), n)
	return nil
}

func writeConfig(t *testing.T, url string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "triggers.yaml")
	body := "triggers:\n" +
		"  - topicArn: " + topicAll + "\n    url: " + url + "/sns\n    secret: " + secret + "\n" +
		"  - topicArn: " + topicSlack + "\n    url: " + url + "/slack\n    format: slack\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var allEvents = []string{"DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop", "DeploymentRollback",
	"DeploymentReady", "InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady"}

func withTriggers(path string) servertest.Option {
	return func(c *server.Config) {
		c.TriggersConfig = path
		// Quick, but the 12 attempts span ~17 s, so a slow machine does
		// not exhaust them before the restart test restarts the server.
		c.TriggerBackoff = func(n int) time.Duration { return min(100*time.Millisecond<<min(n-1, 10), 2*time.Second) }
	}
}

func triggers() []cdtypes.TriggerConfig {
	return []cdtypes.TriggerConfig{
		{TriggerName: aws.String("all"), TriggerTargetArn: aws.String(topicAll), TriggerEvents: toEvents(allEvents)},
		{TriggerName: aws.String("chat"), TriggerTargetArn: aws.String(topicSlack), TriggerEvents: []cdtypes.TriggerEventType{"DeploymentSuccess"}},
	}
}

func toEvents(ss []string) []cdtypes.TriggerEventType {
	out := make([]cdtypes.TriggerEventType, len(ss))
	for i, s := range ss {
		out[i] = cdtypes.TriggerEventType(s)
	}
	return out
}

func deployOnce(t *testing.T, env *servertest.Env, s3 *servertest.S3) string {
	t.Helper()
	rev := s3.UploadRevision(t, "bundles", "app.tgz", servertest.HookBundle(t, map[string]string{"AfterInstall": "true\n"}))
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)
	if info := env.WaitStatus(t, id, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed); info.Status != cdtypes.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s", info.Status)
	}
	return id
}

// TestTriggersDeliver runs a real deployment through the Go SDK and checks
// the SNS notifications a real HTTP receiver gets.
func TestTriggersDeliver(t *testing.T) {
	rcv := newReceiver(t)
	env := servertest.Start(t, withTriggers(writeConfig(t, rcv.srv.URL)))
	s3 := servertest.StartS3(t, "bundles")
	env.StartAgent(t, "web-1", map[string]string{"role": "web"}, s3.URL)
	ctx := context.Background()

	// An unknown topic is refused and nothing is created.
	env.SetupGroup(t, "app", "seed", "", "role", "none")
	_, err := env.Client.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("bad"),
		ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/cutover"),
		TriggerConfigurations: []cdtypes.TriggerConfig{{TriggerName: aws.String("x"),
			TriggerTargetArn: aws.String("arn:aws:sns:us-east-1:000000000000:unknown"), TriggerEvents: []cdtypes.TriggerEventType{"DeploymentSuccess"}}},
	})
	servertest.WantError(t, err, "InvalidTriggerConfigException")
	_, err = env.Client.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("bad")})
	servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")

	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = triggers()
	})
	// Updating to an unknown topic is refused too, and changes nothing.
	_, err = env.Client.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName: aws.String("app"), CurrentDeploymentGroupName: aws.String("web"),
		TriggerConfigurations: []cdtypes.TriggerConfig{{TriggerName: aws.String("x"),
			TriggerTargetArn: aws.String("arn:aws:sns:us-east-1:000000000000:unknown"), TriggerEvents: []cdtypes.TriggerEventType{"DeploymentSuccess"}}},
	})
	servertest.WantError(t, err, "InvalidTriggerConfigException")
	g, err := env.Client.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web")})
	if err != nil || len(g.DeploymentGroupInfo.TriggerConfigurations) != 2 {
		t.Fatalf("group after refused update: %v %+v", err, g)
	}

	id := deployOnce(t, env, s3)
	// all: DeploymentStart, InstanceStart, InstanceSuccess, DeploymentSuccess; chat: DeploymentSuccess.
	rcv.waitFor(t, 5)
	time.Sleep(300 * time.Millisecond)
	got := rcv.received()
	if len(got) != 5 {
		t.Fatalf("received %d notifications, want exactly 5", len(got))
	}
	events := map[string]map[string]any{}
	for _, r := range got {
		if r.path == "/slack" {
			var m struct{ Text string }
			if err := json.Unmarshal(r.body, &m); err != nil || m.Text == "" {
				t.Fatalf("slack body %s: %v", r.body, err)
			}
			continue
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(r.body)
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.header.Get(trigger.SignatureHeader) != want {
			t.Errorf("signature %q, want %q", r.header.Get(trigger.SignatureHeader), want)
		}
		if r.header.Get("x-amz-sns-message-type") != "Notification" || r.header.Get("x-amz-sns-topic-arn") != topicAll {
			t.Errorf("SNS headers %v", r.header)
		}
		var env trigger.Envelope
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type != "Notification" || env.TopicArn != topicAll || env.MessageID == "" || env.Subject == "" || env.SignatureVersion != "1" {
			t.Errorf("envelope %+v", env)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", env.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", env.Timestamp, err)
		}
		var msg map[string]any
		if err := json.Unmarshal([]byte(env.Message), &msg); err != nil {
			t.Fatalf("Message is not JSON: %v", err)
		}
		if msg["deploymentId"] != id || msg["eventTriggerName"] != "all" || msg["region"] != "us-east-1" || msg["accountId"] != "000000000000" {
			t.Errorf("message %v", msg)
		}
		kind := "deployment"
		if msg["instanceId"] != nil {
			kind = "instance"
		}
		events[kind+":"+str(msg["status"])+str(msg["instanceStatus"])] = msg
	}
	start, ok := events["deployment:InProgress"]
	if !ok {
		t.Fatalf("no DeploymentStart message; got %v", keys(events))
	}
	if start["applicationName"] != "app" || start["deploymentGroupName"] != "web" || start["createTime"] == "" {
		t.Errorf("start message %v", start)
	}
	done, ok := events["deployment:Succeeded"]
	if !ok {
		t.Fatalf("no DeploymentSuccess message; got %v", keys(events))
	}
	if ov, _ := done["deploymentOverview"].(map[string]any); ov["Succeeded"] != "1" || done["completeTime"] == nil {
		t.Errorf("success message %v", done)
	}
	inst, ok := events["instance:Succeeded"]
	if !ok {
		t.Fatalf("no InstanceSuccess message; got %v", keys(events))
	}
	if evs, _ := inst["lifecycleEvents"].([]any); len(evs) != 7 {
		t.Errorf("instance message lifecycleEvents %v", inst["lifecycleEvents"])
	}
	if _, ok := events["instance:InProgress"]; !ok {
		t.Fatalf("no InstanceStart message; got %v", keys(events))
	}

	log, err := env.Server.Triggers.Deliveries(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 {
		t.Fatalf("delivery log has %d records, want 5", len(log))
	}
	for _, d := range log {
		if d.Status != trigger.StatusDelivered || d.Attempts != 1 || d.LastHTTP != 200 {
			t.Errorf("delivery %+v", d)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestTriggersSurviveRestart: the receiver is down while the deployment
// runs; the server is restarted; the notifications land once it is up.
func TestTriggersSurviveRestart(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setDown(true)
	cfg := writeConfig(t, rcv.srv.URL)
	dir := t.TempDir()
	env := servertest.Start(t, withTriggers(cfg), servertest.WithDataDir(dir))
	s3 := servertest.StartS3(t, "bundles")
	agent := env.StartAgent(t, "web-1", map[string]string{"role": "web"}, s3.URL)
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = triggers()
	})
	id := deployOnce(t, env, s3)
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := env.Server.Triggers.Deliveries(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, d := range log {
			if d.Status == trigger.StatusPending && d.Attempts >= 1 && d.LastHTTP == 503 {
				failed++
			}
		}
		if len(log) == 5 && failed == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries never failed against the down receiver: %+v", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	agent.Stop()
	env.Stop()

	rcv.setDown(false)
	env2 := servertest.Start(t, withTriggers(cfg), servertest.WithDataDir(dir))
	rcv.waitFor(t, 5)
	time.Sleep(300 * time.Millisecond)
	got := rcv.received()
	if len(got) != 5 {
		t.Fatalf("received %d notifications after the restart, want exactly 5", len(got))
	}
	log, err := env2.Server.Triggers.Deliveries(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range log {
		if d.Status != trigger.StatusDelivered || d.Attempts < 2 {
			t.Errorf("delivery %+v: want Delivered after at least one failed attempt", d)
		}
	}
}

// TestTriggersOnFailure: a failing hook delivers DeploymentFailure with the
// error information and InstanceFailure with the failed event.
func TestTriggersOnFailure(t *testing.T) {
	rcv := newReceiver(t)
	env := servertest.Start(t, withTriggers(writeConfig(t, rcv.srv.URL)))
	s3 := servertest.StartS3(t, "bundles")
	env.StartAgent(t, "web-1", map[string]string{"role": "web"}, s3.URL)
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = []cdtypes.TriggerConfig{{TriggerName: aws.String("failures"), TriggerTargetArn: aws.String(topicAll),
			TriggerEvents: []cdtypes.TriggerEventType{"DeploymentFailure", "InstanceFailure"}}}
	})
	rev := s3.UploadRevision(t, "bundles", "bad.tgz", servertest.HookBundle(t, map[string]string{"AfterInstall": "echo broken >&2\nexit 3\n"}))
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	if info := env.WaitStatus(t, aws.ToString(out.DeploymentId), 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed); info.Status != cdtypes.DeploymentStatusFailed {
		t.Fatalf("deployment %s", info.Status)
	}
	rcv.waitFor(t, 2)
	time.Sleep(300 * time.Millisecond)
	got := rcv.received()
	if len(got) != 2 {
		t.Fatalf("received %d notifications, want 2", len(got))
	}
	seen := map[string]bool{}
	for _, r := range got {
		var env trigger.Envelope
		if err := json.Unmarshal(r.body, &env); err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Status           string
			InstanceStatus   string
			ErrorInformation *struct{ ErrorCode, ErrorMessage string }
			LifecycleEvents  []struct{ LifecycleEvent, LifecycleEventStatus string }
		}
		if err := json.Unmarshal([]byte(env.Message), &msg); err != nil {
			t.Fatal(err)
		}
		switch {
		case msg.Status == "Failed":
			seen["deployment"] = true
			if msg.ErrorInformation == nil || msg.ErrorInformation.ErrorCode == "" || msg.ErrorInformation.ErrorMessage == "" {
				t.Errorf("DeploymentFailure without errorInformation: %s", env.Message)
			}
		case msg.InstanceStatus == "Failed":
			seen["instance"] = true
			failed := ""
			for _, e := range msg.LifecycleEvents {
				if e.LifecycleEventStatus == "Failed" {
					failed = e.LifecycleEvent
				}
			}
			if failed != "AfterInstall" {
				t.Errorf("InstanceFailure's failed event %q, want AfterInstall: %s", failed, env.Message)
			}
		default:
			t.Errorf("unexpected message %s", env.Message)
		}
	}
	if !seen["deployment"] || !seen["instance"] {
		t.Fatalf("got %v", seen)
	}
}
