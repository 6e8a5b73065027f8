package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// TestBlueGreenReadyTriggersAndAlarm: a blue/green deployment waiting in
// Ready sends DeploymentReady and InstanceReady; an HTTP alarm going
// unhealthy during the wait stops it with ALARM_ACTIVE, the group's
// DEPLOYMENT_STOP_ON_ALARM rolls it back, and traffic stays on blue.
func TestBlueGreenReadyTriggersAndAlarm(t *testing.T) {
	const topic = "arn:aws:sns:us-east-1:000000000000:bg"
	var mu sync.Mutex
	var events []string // "event:deploymentId"
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env trigger.Envelope
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &env); err != nil {
			w.WriteHeader(400)
			return
		}
		var msg struct{ DeploymentID, Status, InstanceStatus string }
		_ = json.Unmarshal([]byte(env.Message), &msg)
		mu.Lock()
		events = append(events, fmt.Sprintf("%s%s:%s", msg.Status, msg.InstanceStatus, msg.DeploymentID))
		mu.Unlock()
	}))
	defer rcv.Close()
	var unhealthy atomic.Bool
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unhealthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer health.Close()
	dir := t.TempDir()
	triggers, alarms := filepath.Join(dir, "triggers.yaml"), filepath.Join(dir, "alarms.yaml")
	if err := os.WriteFile(triggers, []byte("triggers:\n  - topicArn: "+topic+"\n    url: "+rcv.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alarms, []byte("pollInterval: 200ms\nalarms:\n  - name: health\n    http: "+health.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newBG(t, bgOptions{
		serverOpts:   []servertest.Option{func(c *server.Config) { c.TriggersConfig, c.AlarmsConfig = triggers, alarms }},
		autoRollback: &types.AutoRollbackConfiguration{Enabled: true, Events: []types.AutoRollbackEvent{types.AutoRollbackEventDeploymentStopOnAlarm}},
	})
	_, err := f.Env.Client.UpdateDeploymentGroup(context.Background(), &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName: aws.String(bgApp), CurrentDeploymentGroupName: aws.String(bgGroup),
		TriggerConfigurations: []types.TriggerConfig{{TriggerName: aws.String("bg"), TriggerTargetArn: aws.String(topic),
			TriggerEvents: []types.TriggerEventType{"DeploymentReady", "InstanceReady", "DeploymentStop", "DeploymentRollback"}}},
		AlarmConfiguration: &types.AlarmConfiguration{Enabled: true, Alarms: []types.Alarm{{Name: aws.String("health")}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	id := f.Deploy(t, "green")
	if info := f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status != types.DeploymentStatusReady {
		t.Fatalf("deployment %s: %s (%s), want Ready", id, info.Status, bgErr(info))
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(events))
	}
	waitUntil(t, "the Ready notifications", func() bool { return len(got()) >= 3 })
	if want := []string{"Ready:" + id, "Ready:" + id, "Ready:" + id}; !slices.Equal(got(), want) {
		t.Fatalf("notifications %v, want DeploymentReady and one InstanceReady per green host: %v", got(), want)
	}

	unhealthy.Store(true)
	info := f.WaitDone(t, id, types.DeploymentStatusStopped)
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeAlarmActive {
		t.Fatalf("error %s, want ALARM_ACTIVE", bgErr(info))
	}
	if info.RollbackInfo == nil || info.RollbackInfo.RollbackDeploymentId == nil {
		t.Fatalf("no rollback: %+v", info.RollbackInfo)
	}
	f.WaitDone(t, aws.ToString(info.RollbackInfo.RollbackDeploymentId), types.DeploymentStatusSucceeded)
	f.ExpectOnly(t, f.Blue, 20)
	waitUntil(t, "the stop notifications", func() bool { return len(got()) >= 5 })
	if g := got(); !slices.Contains(g, "Stopped:"+id) || len(g) != 5 {
		t.Fatalf("notifications %v: want DeploymentStop and DeploymentRollback (status Stopped) for %s", g, id)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
