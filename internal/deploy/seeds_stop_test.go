package deploy_test

// Every error of the StopDeployment seed page, triggered the way a user
// triggers it, through aws-sdk-go-v2 and through the AWS CLI, plus the
// success answers Pending (work in flight) and Succeeded.

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

const (
	seedMsgPending   = "Stopping Pending. Stopping to schedule commands in the deployment instances"
	seedMsgSucceeded = "No more commands will be scheduled for execution in the deployment instances"
)

func seedStopErr(t *testing.T, env *servertest.Env, exception, id string) {
	t.Helper()
	_, err := env.Client.StopDeployment(context.Background(), &codedeploy.StopDeploymentInput{DeploymentId: &id})
	servertest.WantError(t, err, exception)
	bgCLIWantError(t, env, exception, "deploy", "stop-deployment", "--deployment-id", id)
}

// seedStopCLI stops through the CLI and returns its JSON answer.
func seedStopCLI(t *testing.T, env *servertest.Env, args ...string) (status, message string) {
	t.Helper()
	out, errOut, code := bgCLI(t, env, append([]string{"deploy", "stop-deployment"}, args...)...)
	if code != 0 {
		t.Fatalf("stop-deployment %v: exit %d: %s", args, code, errOut)
	}
	var v struct{ Status, StatusMessage string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stop-deployment output %q: %v", out, err)
	}
	return v.Status, v.StatusMessage
}

func TestSeedStopDeployment(t *testing.T) {
	f := newBG(t, bgOptions{})
	env := f.Env
	ctx := context.Background()

	t.Run("DeploymentIdRequiredException", func(t *testing.T) {
		seedStopErr(t, env, "DeploymentIdRequiredException", "")
	})
	t.Run("InvalidDeploymentIdException", func(t *testing.T) {
		seedStopErr(t, env, "InvalidDeploymentIdException", "d-lowercase")
		seedStopErr(t, env, "InvalidDeploymentIdException", "12345")
	})
	t.Run("DeploymentDoesNotExistException", func(t *testing.T) {
		seedStopErr(t, env, "DeploymentDoesNotExistException", "d-ZZZZZZZZ9")
	})
	t.Run("DeploymentAlreadyCompletedException", func(t *testing.T) {
		// The bootstrap deployment succeeded.
		out, err := env.Client.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(bgApp), DeploymentGroupName: aws.String(bgGroup)})
		if err != nil || len(out.Deployments) != 1 {
			t.Fatalf("ListDeployments: %v %v", out, err)
		}
		seedStopErr(t, env, "DeploymentAlreadyCompletedException", out.Deployments[0])
	})

	t.Run("success/Pending then Succeeded", func(t *testing.T) {
		g1 := f.Green[0]
		g1.Hold(t, "BeforeInstall")
		id := f.Deploy(t, "green")
		g1.WaitAt(t, "BeforeInstall", 30*time.Second)
		out := f.Stop(t, id, nil)
		if out.Status != types.StopStatusPending || aws.ToString(out.StatusMessage) != seedMsgPending {
			t.Fatalf("StopDeployment with a hook running: %s %q, want Pending %q", out.Status, aws.ToString(out.StatusMessage), seedMsgPending)
		}
		if st, msg := seedStopCLI(t, env, "--deployment-id", id); st != "Pending" || msg != seedMsgPending {
			t.Fatalf("second stop while the hook runs: %s %q, want Pending", st, msg)
		}
		if info := f.Get(t, id); info.Status != types.DeploymentStatusInProgress {
			t.Fatalf("status while stopping: %s, want InProgress", info.Status)
		}
		g1.Release("BeforeInstall")
		info := f.WaitDone(t, id, types.DeploymentStatusStopped)
		if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeManualStop {
			t.Errorf("error information %s, want MANUAL_STOP", bgErr(info))
		}
		// Both replacement instances had started (AllAtOnce) and were
		// interrupted: Failed; the originals never started: Skipped.
		if ov := info.DeploymentOverview; ov.Failed != 2 || ov.Skipped != 2 || ov.Succeeded != 0 {
			t.Errorf("overview %+v, want Failed 2 (interrupted green) Skipped 2 (blue)", ov)
		}
		if got := g1.Hooks(t, id); len(got) != 1 || got[0] != "BeforeInstall" {
			t.Errorf("%s ran %v after the stop, want only the BeforeInstall that was running", g1.Name, got)
		}
		// Once the stop took effect the deployment is complete. (SERVICE-
		// SEMANTICS §5 says a later call returns Succeeded; this server, and
		// TestE2EStopDeployment, answer DeploymentAlreadyCompletedException.)
		seedStopErr(t, env, "DeploymentAlreadyCompletedException", id)
		f.WaitServing(t, f.Blue, 10*time.Second)
	})

	t.Run("success/Succeeded at once via aws-cli", func(t *testing.T) {
		id := f.Deploy(t, "green")
		if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
			t.Fatalf("%s (%s)", info.Status, bgErr(info))
		}
		if st, msg := seedStopCLI(t, env, "--deployment-id", id, "--no-auto-rollback-enabled"); st != "Succeeded" || msg != seedMsgSucceeded {
			t.Fatalf("stop with nothing in flight: %s %q, want Succeeded %q", st, msg, seedMsgSucceeded)
		}
		f.WaitDone(t, id, types.DeploymentStatusStopped)
		f.WaitServing(t, f.Blue, 10*time.Second)
	})

	t.Run("DeploymentGroupDoesNotExistException", func(t *testing.T) {
		id := f.Deploy(t, "green")
		if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
			t.Fatalf("%s (%s)", info.Status, bgErr(info))
		}
		if _, err := env.Client.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: aws.String(bgApp), DeploymentGroupName: aws.String(bgGroup)}); err != nil {
			t.Fatal(err)
		}
		seedStopErr(t, env, "DeploymentGroupDoesNotExistException", id)
		// A new group under the old name is not the deployment's group.
		env.SetupGroup(t, bgApp, bgGroup, "CodeDeployDefault.AllAtOnce", "fleet", "blue")
		seedStopErr(t, env, "DeploymentGroupDoesNotExistException", id)
	})

	t.Run("UnsupportedActionForDeploymentTypeException", func(t *testing.T) {
		t.Skip("not triggerable on Cutover: every deployment it runs (in-place or blue/green, user or rollback) can be stopped; " +
			"AWS raises it for deployments it cannot stop, e.g. ones driven by CloudFormation (SERVICE-SEMANTICS §5), and Cutover has no such deployments")
	})
}
