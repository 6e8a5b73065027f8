package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestDeliveriesListing: `cutover deliveries` reads the delivery log from
// the server's data directory (the receiver answers 503, so the
// notification is still owed and shows its last error).
func TestDeliveriesListing(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer rcv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "triggers.yaml")
	const topic = "arn:aws:sns:us-east-1:000000000000:t"
	if err := os.WriteFile(cfg, []byte("triggers:\n  - topicArn: "+topic+"\n    url: "+rcv.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, servertest.WithDataDir(dir), func(c *server.Config) { c.TriggersConfig = cfg })
	s3 := servertest.StartS3(t, "b")
	agent := env.StartAgent(t, "h1", map[string]string{"r": "x"}, s3.URL)
	env.SetupGroup(t, "app", "g", "", "r", "x", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = []cdtypes.TriggerConfig{{TriggerName: aws.String("done"), TriggerTargetArn: aws.String(topic),
			TriggerEvents: []cdtypes.TriggerEventType{"DeploymentSuccess"}}}
	})
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("g"),
		Revision: s3.UploadRevision(t, "b", "r.tgz", servertest.HookBundle(t, nil))})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)
	env.WaitStatus(t, id, 30*time.Second, cdtypes.DeploymentStatusSucceeded)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := runOut(t, "deliveries", "--data-dir", dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "503") {
			if !strings.Contains(got, id) || !strings.Contains(got, "DeploymentSuccess") || !strings.Contains(got, "Pending") {
				t.Fatalf("listing:\n%s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt listed:\n%s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	agent.Stop()
	env.Stop()
}
