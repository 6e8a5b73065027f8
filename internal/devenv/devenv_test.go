package devenv

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestDevEnvironmentDeploys is the README's first session against
// `cutover dev`: upload a bundle to the dev bucket, create an application
// and a group targeting the dev agents, deploy, and see it succeed on both.
func TestDevEnvironmentDeploys(t *testing.T) {
	ctx := context.Background()
	env, err := Start(ctx, Options{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
		Agents: 2, AppBasePort: 19081, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if len(env.Instances) != 2 {
		t.Fatalf("instances %v", env.Instances)
	}
	info := deployBundle(t, env, helloBundle)
	if info.DeploymentOverview.Succeeded != 2 {
		t.Fatalf("overview %+v", info.DeploymentOverview)
	}
}

// deployBundle deploys files to the dev agents (tag env=dev) with the dev
// key and waits for the deployment to succeed.
func deployBundle(t *testing.T, env *Env, files []servertest.File) *types.DeploymentInfo {
	t.Helper()
	ctx := context.Background()
	s3c := s3.New(s3.Options{Region: env.Region, BaseEndpoint: aws.String(env.S3URL), UsePathStyle: true, Credentials: env.Credentials()})
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(Bucket), Key: aws.String("app.tgz"), Body: bytes.NewReader(servertest.TarGz(t, files...))}); err != nil {
		t.Fatal(err)
	}
	cd := codedeploy.New(codedeploy.Options{Region: env.Region, BaseEndpoint: aws.String(env.URL), Credentials: env.Credentials()})
	if _, err := cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cd.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("dev"),
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/cutover"),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("env"), Value: aws.String("dev"), Type: types.TagFilterTypeKeyAndValue}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := cd.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("dev"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3,
			S3Location: &types.S3Location{Bucket: aws.String(Bucket), Key: aws.String("app.tgz"), BundleType: types.BundleTypeTarGZip}},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: out.DeploymentId})
		if err != nil {
			t.Fatal(err)
		}
		info := got.DeploymentInfo
		if info.Status == types.DeploymentStatusSucceeded {
			return info
		}
		if info.Status == types.DeploymentStatusFailed || info.Status == types.DeploymentStatusStopped || time.Now().After(deadline) {
			t.Fatalf("deployment %s: %+v", info.Status, info.ErrorInformation)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var helloBundle = []servertest.File{
	{Name: "appspec.yml", Body: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: hello.sh\n"},
	{Name: "hello.sh", Body: "#!/bin/sh\necho \"hello from $CUTOVER_INSTANCE on port $PORT\"\n", Mode: 0o755},
}
