package api_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestServerOnPostgres runs the API against PostgreSQL, and checks the
// data is still there after a restart on the same database.
func TestServerOnPostgres(t *testing.T) {
	url := pgtest.Start(t)
	env := servertest.Start(t, servertest.WithDatabase(url))
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("pg-app")}); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("pg-app")})
	servertest.WantError(t, err, "ApplicationAlreadyExistsException")
	env.Stop()

	env2 := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(env.Config.DataDir))
	got, err := env2.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("pg-app")})
	if err != nil || *got.Application.ApplicationName != "pg-app" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
}
