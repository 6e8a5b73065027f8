package trigger

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/engine"
)

func TestOccurrences(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Second)
	inst := func(status string, changed bool) *engine.Instance {
		in := &engine.Instance{Name: "h", Status: status, LastUpdated: t0}
		if changed {
			in.LastUpdated = t1
		}
		return in
	}
	for _, tc := range []struct {
		name       string
		before     engine.Status
		instBefore []string
		e          engine.Deployment
		want       []string
	}{
		{"start", engine.StatusCreated, []string{engine.Pending},
			engine.Deployment{Status: engine.StatusInProgress, Started: t1, Instances: []*engine.Instance{inst(engine.InProgress, true)}},
			[]string{DeploymentStart, InstanceStart}},
		{"progress within an instance is no event", engine.StatusInProgress, []string{engine.InProgress},
			engine.Deployment{Status: engine.StatusInProgress, Started: t0, Instances: []*engine.Instance{inst(engine.InProgress, true)}},
			nil},
		{"success", engine.StatusInProgress, []string{engine.InProgress},
			engine.Deployment{Status: engine.StatusSucceeded, Started: t0, Instances: []*engine.Instance{inst(engine.Succeeded, true)}},
			[]string{DeploymentSuccess, InstanceSuccess}},
		{"failure with rollback", engine.StatusInProgress, []string{engine.InProgress, engine.Pending},
			engine.Deployment{Status: engine.StatusFailed, Started: t0, RollbackWanted: true,
				Instances: []*engine.Instance{inst(engine.Failed, true), inst(engine.Skipped, true)}},
			[]string{DeploymentFailure, DeploymentRollback, InstanceFailure}},
		{"stop", engine.StatusInProgress, []string{engine.InProgress},
			engine.Deployment{Status: engine.StatusStopped, Started: t0, Instances: []*engine.Instance{inst(engine.Failed, true)}},
			[]string{DeploymentStop, InstanceFailure}},
		{"ready", engine.StatusInProgress, []string{engine.InProgress, engine.Pending},
			engine.Deployment{Status: engine.StatusReady, Started: t0, Instances: []*engine.Instance{inst(engine.Ready, true), inst(engine.Pending, false)}},
			[]string{DeploymentReady, InstanceReady}},
		{"started and finished in one step", engine.StatusInProgress, []string{engine.Pending},
			engine.Deployment{Status: engine.StatusInProgress, Started: t0, Instances: []*engine.Instance{inst(engine.Succeeded, true)}},
			[]string{InstanceStart, InstanceSuccess}},
		{"skipped never started", engine.StatusInProgress, []string{engine.Pending},
			engine.Deployment{Status: engine.StatusInProgress, Started: t0, Instances: []*engine.Instance{inst(engine.Skipped, true)}},
			nil},
		{"unchanged instance is not reported", engine.StatusInProgress, []string{engine.Pending},
			engine.Deployment{Status: engine.StatusInProgress, Started: t0, Instances: []*engine.Instance{inst(engine.Succeeded, false)}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			st := deploy.Step{Record: &deploy.Record{Engine: &e}, Before: tc.before, BeforeInstances: tc.instBefore, Now: t1}
			var got []string
			for _, o := range occurrences(st) {
				got = append(got, o.Event)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Setenv("HOOK_SECRET", "from-env")
	for _, tc := range []struct {
		name, body string
		wantErr    bool
	}{
		{"sns default", "triggers:\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: https://h/x\n", false},
		{"json", `{"triggers":[{"topicArn":"arn:aws:sns:us-east-1:000000000000:t","url":"http://h/x","format":"slack","secretEnv":"HOOK_SECRET"}]}`, false},
		{"not a topic", "triggers:\n  - topicArn: arn:aws:sqs:us-east-1:000000000000:t\n    url: https://h/x\n", true},
		{"bad url", "triggers:\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: ftp://h/x\n", true},
		{"bad format", "triggers:\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: https://h/x\n    format: teams\n", true},
		{"twice", "triggers:\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: https://h/x\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: https://h/y\n", true},
		{"missing env", "triggers:\n  - topicArn: arn:aws:sns:us-east-1:000000000000:t\n    url: https://h/x\n    secretEnv: NOPE_NOT_SET\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := t.TempDir() + "/t.yaml"
			if err := writeFile(p, tc.body); err != nil {
				t.Fatal(err)
			}
			eps, err := Load(p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (eps[0].Format == "" || (tc.name == "json" && eps[0].Secret != "from-env")) {
				t.Fatalf("endpoint %+v", eps[0])
			}
		})
	}
}

func writeFile(p, body string) error { return os.WriteFile(p, []byte(body), 0o600) }
