package deploy_test

// Every error of the ContinueDeployment seed page, triggered the way a user
// triggers it, through aws-sdk-go-v2 and through the AWS CLI, plus the
// success path (HTTP 200 with an empty body).

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// seedContinue calls ContinueDeployment through the SDK and the CLI and
// checks both fail with exception (id nil: the field is left out).
func seedContinue(t *testing.T, env *servertest.Env, exception string, id *string, wait string) {
	t.Helper()
	_, err := env.Client.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: id, DeploymentWaitType: types.DeploymentWaitType(wait)})
	servertest.WantError(t, err, exception)
	args := []string{"deploy", "continue-deployment"}
	if id != nil {
		args = append(args, "--deployment-id", *id)
	}
	if wait != "" {
		args = append(args, "--deployment-wait-type", wait)
	}
	bgCLIWantError(t, env, exception, args...)
}

func TestSeedContinueDeployment(t *testing.T) {
	f := newBG(t, bgOptions{})
	env := f.Env
	ctx := context.Background()

	t.Run("DeploymentIdRequiredException", func(t *testing.T) {
		seedContinue(t, env, "DeploymentIdRequiredException", aws.String(""), "READY_WAIT")
		seedContinue(t, env, "DeploymentIdRequiredException", nil, "READY_WAIT") // the model marks it optional
	})
	t.Run("InvalidDeploymentIdException", func(t *testing.T) {
		seedContinue(t, env, "InvalidDeploymentIdException", aws.String("not-a-deployment"), "READY_WAIT")
		seedContinue(t, env, "InvalidDeploymentIdException", aws.String("d-abc"), "")
	})
	t.Run("DeploymentDoesNotExistException", func(t *testing.T) {
		seedContinue(t, env, "DeploymentDoesNotExistException", aws.String("d-AAAAAAAAA"), "READY_WAIT")
	})

	// A deployment still installing its replacement instances.
	g1 := f.Green[0]
	g1.Hold(t, "BeforeInstall")
	id := f.Deploy(t, "green")
	g1.WaitAt(t, "BeforeInstall", 30*time.Second)

	t.Run("InvalidDeploymentWaitTypeException", func(t *testing.T) {
		// The Go SDK and botocore send an unknown enum value as is.
		seedContinue(t, env, "InvalidDeploymentWaitTypeException", &id, "BOGUS_WAIT")
		seedContinue(t, env, "InvalidDeploymentWaitTypeException", &id, "ready_wait")
	})
	t.Run("DeploymentIsNotInReadyStateException/installing", func(t *testing.T) {
		seedContinue(t, env, "DeploymentIsNotInReadyStateException", &id, "READY_WAIT")
		seedContinue(t, env, "DeploymentIsNotInReadyStateException", &id, "") // wait type omitted = READY_WAIT
		// Not reached the reroute yet: no termination wait either.
		seedContinue(t, env, "DeploymentIsNotInReadyStateException", &id, "TERMINATION_WAIT")
	})
	g1.Release("BeforeInstall")
	if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed, types.DeploymentStatusStopped); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s: %s (%s)", id, info.Status, bgErr(info))
	}

	t.Run("success/READY_WAIT via aws-cli: HTTP 200, empty body", func(t *testing.T) {
		out, errOut, code := bgCLI(t, env, "deploy", "continue-deployment", "--deployment-id", id, "--deployment-wait-type", "READY_WAIT")
		if code != 0 || out != "" {
			t.Fatalf("continue-deployment: exit %d stdout %q stderr %q, want 0 and no output", code, out, errOut)
		}
	})
	f.WaitTerminationWait(t, id)
	t.Run("DeploymentIsNotInReadyStateException/after reroute", func(t *testing.T) {
		seedContinue(t, env, "DeploymentIsNotInReadyStateException", &id, "READY_WAIT")
	})
	t.Run("success/TERMINATION_WAIT via SDK", func(t *testing.T) {
		out, err := env.Client.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeTerminationWait})
		if err != nil {
			t.Fatal(err)
		}
		if out == nil {
			t.Fatal("no output")
		}
		f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	})
	t.Run("DeploymentAlreadyCompletedException", func(t *testing.T) {
		seedContinue(t, env, "DeploymentAlreadyCompletedException", &id, "READY_WAIT")
		seedContinue(t, env, "DeploymentAlreadyCompletedException", &id, "TERMINATION_WAIT")
	})

	t.Run("UnsupportedActionForDeploymentTypeException", func(t *testing.T) {
		// An in-place deployment (still running, so not merely completed).
		h := f.startHost(t, "inplace-1", "inplace")
		env.SetupGroup(t, bgApp, "inplace", "CodeDeployDefault.AllAtOnce", "color", "inplace")
		h.Hold(t, "BeforeInstall")
		out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(bgApp), DeploymentGroupName: aws.String("inplace"), Revision: f.Rev})
		if err != nil {
			t.Fatal(err)
		}
		h.WaitAt(t, "BeforeInstall", 30*time.Second)
		seedContinue(t, env, "UnsupportedActionForDeploymentTypeException", out.DeploymentId, "READY_WAIT")
		seedContinue(t, env, "UnsupportedActionForDeploymentTypeException", out.DeploymentId, "TERMINATION_WAIT")
		h.Release("BeforeInstall")
		f.WaitDone(t, *out.DeploymentId, types.DeploymentStatusSucceeded)
	})
}

// TestSeedContinueDeploymentKeepAlive: with KEEP_ALIVE there is no
// termination wait, so TERMINATION_WAIT after the reroute is refused with
// InvalidDeploymentStatusException.
func TestSeedContinueDeploymentKeepAlive(t *testing.T) {
	f := newBG(t, bgOptions{termAction: types.InstanceActionKeepAlive})
	env := f.Env
	b1 := f.Blue[0]
	b1.Hold(t, "AfterBlockTraffic")
	id := f.Deploy(t, "green")
	if info := env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s: %s (%s)", id, info.Status, bgErr(info))
	}
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	b1.WaitAt(t, "AfterBlockTraffic", 30*time.Second) // traffic is rerouted; originals are leaving
	seedContinue(t, env, "InvalidDeploymentStatusException", &id, "TERMINATION_WAIT")
	seedContinue(t, env, "DeploymentIsNotInReadyStateException", &id, "READY_WAIT")
	b1.Release("AfterBlockTraffic")
	info := f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	if info.InstanceTerminationWaitTimeStarted {
		t.Errorf("KEEP_ALIVE deployment reports instanceTerminationWaitTimeStarted")
	}
	f.WaitServing(t, f.Green, 10*time.Second)
	seedContinue(t, env, "DeploymentAlreadyCompletedException", &id, "TERMINATION_WAIT")
}
