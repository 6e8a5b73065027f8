package dashboard_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
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
	if _, err := agent.Register(context.Background(), agent.RegisterRequest{Endpoint: a.URL, Region: a.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(a.AccessKey, a.SecretKey, ""), InstanceName: "h1",
		Tags: map[string]string{"role": "web"}}); err != nil {
		t.Fatal(err)
	}
	a.SetupGroup(t, "app", "grp", "", "role", "web")

	c := newUIClient(t, a.URL)
	if st := c.login(a.AccessKey, a.SecretKey); st != http.StatusOK {
		t.Fatalf("sign-in at replica A: %d", st)
	}
	c.base = b.URL
	if st, m, _ := c.do("POST", "/ui/api/ListApplications", "{}", map[string]string{"X-Cutover-Csrf": c.csrf}); st != http.StatusOK {
		t.Fatalf("A's session at replica B: %d %v", st, m)
	}

	req, _ := http.NewRequest("GET", b.URL+"/ui/events", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream at B: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 64)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events <- ev
			}
		}
	}()
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
	if _, err := a.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("grp"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
			Bucket: aws.String("bundles"), Key: aws.String("app.tar"), BundleType: types.BundleTypeTar}},
	}); err != nil {
		t.Fatal(err)
	}
	if ev, ok := next(5 * time.Second); !ok || ev != "deployments" {
		t.Fatalf("B's stream after a deployment created at A: %q %v", ev, ok)
	}
}
