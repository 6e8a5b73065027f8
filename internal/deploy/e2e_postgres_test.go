package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestE2EOnPostgres runs an in-place deployment with the server on
// PostgreSQL, then restarts the server on the same database and reads it.
func TestE2EOnPostgres(t *testing.T) {
	url := pgtest.Start(t)
	env := servertest.Start(t, servertest.WithDatabase(url))
	env.StartAgent(t, "pg-1", map[string]string{"role": "web"}, "")
	env.StartAgent(t, "pg-2", map[string]string{"role": "web"}, "")
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.HalfAtATime", "role", "web")
	out, err := env.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
			AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	info := env.WaitStatus(t, *out.DeploymentId, 30*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed)
	if info.Status != types.DeploymentStatusSucceeded || info.DeploymentOverview.Succeeded != 2 {
		t.Fatalf("%s %+v %+v", info.Status, info.DeploymentOverview, info.ErrorInformation)
	}
	env.Stop()
	env2 := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(env.Config.DataDir))
	got, err := env2.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: out.DeploymentId})
	if err != nil || got.DeploymentInfo.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("after restart: %+v %v", got, err)
	}
}
