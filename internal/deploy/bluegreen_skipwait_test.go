//lint:file-ignore SA1019 this file tests the deprecated operation on purpose.

package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestSkipWaitTimeForInstanceTermination drives the deprecated operation:
// refused while the deployment waits to reroute, it ends the termination
// wait at once afterwards, like ContinueDeployment(TERMINATION_WAIT).
func TestSkipWaitTimeForInstanceTermination(t *testing.T) {
	f := newBG(t, bgOptions{blue: 1, green: 1})
	ctx := context.Background()
	id := f.Deploy(t, "green")
	f.Env.WaitStatus(t, id, 60*time.Second, types.DeploymentStatusReady)
	_, err := f.Env.Client.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: &id})
	servertest.WantError(t, err, "DeploymentNotStartedException")
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	f.WaitTerminationWait(t, id)
	if _, err := f.Env.Client.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: &id}); err != nil {
		t.Fatal(err)
	}
	f.WaitDone(t, id, types.DeploymentStatusSucceeded)
	_, err = f.Env.Client.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: &id})
	servertest.WantError(t, err, "DeploymentAlreadyCompletedException")
	_, err = f.Env.Client.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: aws.String("d-NOTADEPLO")})
	servertest.WantError(t, err, "DeploymentDoesNotExistException")
	_, err = f.Env.Client.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: aws.String("bogus")})
	servertest.WantError(t, err, "InvalidDeploymentIdException")
}
