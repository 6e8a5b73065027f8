package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/eventually"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestMetricsAfterDeployment scrapes /metrics over HTTP around a real
// deployment (Go SDK, in-process agent) and checks each family moved as the
// deployment did.
func TestMetricsAfterDeployment(t *testing.T) {
	env := servertest.Start(t)
	s3 := servertest.StartS3(t, "bundles")
	env.StartAgent(t, "web-1", map[string]string{"role": "web"}, s3.URL)
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	ctx := context.Background()

	waitFor(t, "the agent to long-poll", func() bool {
		s := get(t, env.URL)
		return s.value("cutover_agents_polling") == 1 && s.value("cutover_agents_connected") == 1
	})
	before := get(t, env.URL)
	if v := before.value("cutover_deployments_completed_total", "status", "Succeeded", "error_code", ""); v != -1 {
		t.Fatalf("a completed deployment counted before any ran: %v", v)
	}

	rev := s3.UploadRevision(t, "bundles", "app.tgz", servertest.HookBundle(t, map[string]string{"AfterInstall": "sleep 0.2\n"}))
	out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)
	if info := env.WaitStatus(t, id, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed); info.Status != cdtypes.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s", info.Status)
	}
	// A refused call, to see the error label.
	_, err = env.Client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String("d-NOTTHERE1")})
	servertest.WantError(t, err, "DeploymentDoesNotExistException")

	after := get(t, env.URL)
	for _, c := range []struct {
		name   string
		labels []string
		check  func(v float64) bool
		want   string
	}{
		{"cutover_deployments_completed_total", []string{"status", "Succeeded", "error_code", ""}, eq(1), "1"},
		{"cutover_deployments", []string{"status", "InProgress"}, eq(0), "0 (none active)"},
		{"cutover_instance_status_changes_total", []string{"status", "Succeeded"}, eq(1), "1"},
		{"cutover_instance_status_changes_total", []string{"status", "InProgress"}, eq(1), "1"},
		{"cutover_lifecycle_event_duration_seconds", []string{"event", "AfterInstall", "status", "Succeeded"}, eq(1), "1 observation"},
		{"cutover_lifecycle_event_duration_seconds", []string{"event", "Install", "status", "Succeeded"}, eq(1), "1 observation"},
		{"cutover_api_requests_total", []string{"service", "codedeploy", "operation", "CreateDeployment", "error", ""}, eq(1), "1"},
		{"cutover_api_requests_total", []string{"service", "codedeploy", "operation", "GetDeployment", "error", "DeploymentDoesNotExistException"}, eq(1), "1"},
		{"cutover_api_requests_total", []string{"service", "commands", "operation", "PutHostCommandComplete", "error", ""}, atLeast(7), ">= 7 (one per event)"},
		{"cutover_api_request_duration_seconds", []string{"service", "codedeploy", "operation", "CreateDeployment"}, eq(1), "1 observation"},
		{"cutover_agents_connected", nil, eq(1), "1"},
		{"cutover_leases_held", nil, eq(0), "0"},
	} {
		if v := after.value(c.name, c.labels...); !c.check(v) {
			t.Errorf("%s%v = %v, want %s; series: %s", c.name, c.labels, v, c.want, after.series(c.name))
		}
	}
	// The AfterInstall hook sleeps 0.2 s: its duration is in the sum.
	for _, m := range after.families["cutover_lifecycle_event_duration_seconds"].Metric {
		for _, l := range m.Label {
			if l.GetName() == "event" && l.GetValue() == "AfterInstall" && m.Histogram.GetSampleSum() < 0.2 {
				t.Errorf("AfterInstall took %v s, want >= 0.2", m.Histogram.GetSampleSum())
			}
		}
	}
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventually.True(t, time.Minute, what, cond)
}
