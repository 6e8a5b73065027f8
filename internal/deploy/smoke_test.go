package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

func TestSmokeInPlaceInline(t *testing.T) {
	for _, format := range []string{"PKCS7/JSON", "TEXT/JSON"} {
		t.Run(format, func(t *testing.T) { smokeInPlace(t, format) })
	}
}

// smokeInPlace deploys an inline revision to two agents, with the
// deployment specification served in format.
func smokeInPlace(t *testing.T, format string) {
	env := servertest.Start(t, func(c *server.Config) { c.SpecFormat = format })
	env.StartAgent(t, "host-1", map[string]string{"role": "web"}, "")
	env.StartAgent(t, "host-2", map[string]string{"role": "web"}, "")
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	deployInline(t, env, 2)
}

// deployInline deploys an inline appspec to the "app"/"web" group and
// checks it succeeds on want instances; it returns the deployment id.
func deployInline(t *testing.T, env *servertest.Env, want int64) string {
	t.Helper()
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
			AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	info := env.WaitStatus(t, *out.DeploymentId, 30*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed)
	if info.Status != types.DeploymentStatusSucceeded || info.DeploymentOverview.Succeeded != want {
		t.Fatalf("%s %+v %+v", info.Status, info.DeploymentOverview, info.ErrorInformation)
	}
	return *out.DeploymentId
}

// TestDeleteApplicationRemovesDeployments checks DeleteApplication takes
// the application's deployment history with it.
func TestDeleteApplicationRemovesDeployments(t *testing.T) {
	env := servertest.Start(t)
	env.StartAgent(t, "host-1", map[string]string{"role": "web"}, "")
	env.SetupGroup(t, "app", "web", "", "role", "web")
	ctx := context.Background()
	id := deployInline(t, env, 1)
	if _, err := env.Client.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: &id})
	servertest.WantError(t, err, "DeploymentDoesNotExistException")
	list, err := env.Client.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{})
	if err != nil || len(list.Deployments) != 0 {
		t.Fatalf("deployments still listed: %v %v", list.Deployments, err)
	}
}
