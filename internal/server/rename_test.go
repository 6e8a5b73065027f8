package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestRenameKeepsDeployments: after UpdateApplication and
// UpdateDeploymentGroup rename, ListDeployments by the new names lists the
// deployments made before, and keys limited to applications are checked
// against the new names (the old name no longer grants anything).
func TestRenameKeepsDeployments(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	env.SetupGroup(t, "shop", "web", "CodeDeployDefault.AllAtOnce", "role", "nobody")
	out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("web"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
			Bucket: aws.String("b"), Key: aws.String("k.tgz"), BundleType: types.BundleTypeTarGZip}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)
	env.WaitStatus(t, id, 30*time.Second, types.DeploymentStatusFailed, types.DeploymentStatusSucceeded)

	if _, err := env.Client.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("shop"), NewApplicationName: aws.String("store")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("store"),
		CurrentDeploymentGroupName: aws.String("web"), NewDeploymentGroupName: aws.String("www")}); err != nil {
		t.Fatal(err)
	}
	list, err := env.Client.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("store"), DeploymentGroupName: aws.String("www")})
	if err != nil || !slices.Contains(list.Deployments, id) {
		t.Fatalf("ListDeployments by the new names: %v %v, want %s", list, err, id)
	}

	for _, tc := range []struct {
		apps    []string
		allowed bool
	}{
		{[]string{"store"}, true},
		{[]string{"store/www"}, true},
		{[]string{"store/web"}, false},
		{[]string{"shop"}, false},
	} {
		k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "narrow", Grant: access.Grant{Role: access.ReadOnly, Applications: tc.apps}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.NewClient(k.AccessKeyID, k.SecretAccessKey, env.Region).GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
		if tc.allowed && err != nil {
			t.Errorf("key limited to %v: GetDeployment of the renamed group's deployment: %v", tc.apps, err)
		}
		if !tc.allowed {
			wantDenied(t, err, "key limited to the old names")
		}
	}
}
