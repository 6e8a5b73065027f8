package deploy_test

import (
	"context"
	"testing"

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
	id := deployInline(t, env, 2)
	env.Stop()
	env2 := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(env.Config.DataDir))
	got, err := env2.Client.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: &id})
	if err != nil || got.DeploymentInfo.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("after restart: %+v %v", got, err)
	}
}
