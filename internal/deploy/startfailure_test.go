package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestStartFailurePassesThroughInProgress: a deployment that cannot start
// is Created or InProgress on the first GetDeployment after
// CreateDeployment, as on AWS, and fails afterwards with the same error as
// before.
func TestStartFailurePassesThroughInProgress(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	// Two registered instances no agent serves: with HOST_COUNT 2 the
	// deployment cannot start, and nothing is dispatched to them.
	for _, n := range []string{"idle-1", "idle-2"} {
		if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(n),
			IamUserArn: aws.String("arn:aws:iam::000000000000:user/" + n)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{n},
			Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("idle")}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("TwoHealthy"),
		MinimumHealthyHosts: &types.MinimumHealthyHosts{Type: types.MinimumHealthyHostsTypeHostCount, Value: 2}}); err != nil {
		t.Fatal(err)
	}
	env.SetupGroup(t, "app", "empty", "", "role", "nobody-has-this")
	env.SetupGroup(t, "app", "idle", "TwoHealthy", "role", "idle")
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}
	for _, tc := range []struct {
		group   string
		code    types.ErrorCode
		message string
	}{
		{"empty", types.ErrorCodeNoInstances, "no instances were found for your deployment group"},
		{"idle", types.ErrorCodeHealthConstraintsInvalid, "minimum number of healthy instances (2) is not less than the number of instances in the deployment (2)"},
	} {
		t.Run(tc.group, func(t *testing.T) {
			out, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"),
				DeploymentGroupName: aws.String(tc.group), Revision: rev})
			if err != nil {
				t.Fatal(err)
			}
			first, err := c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: out.DeploymentId})
			if err != nil {
				t.Fatal(err)
			}
			if s := first.DeploymentInfo.Status; (s != types.DeploymentStatusCreated && s != types.DeploymentStatusInProgress) || first.DeploymentInfo.ErrorInformation != nil {
				t.Fatalf("first read: status %s error %+v, want Created or InProgress without error", s, first.DeploymentInfo.ErrorInformation)
			}
			info := env.WaitStatus(t, *out.DeploymentId, 15*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped)
			if info.Status != types.DeploymentStatusFailed || info.ErrorInformation == nil || info.ErrorInformation.Code != tc.code ||
				!strings.Contains(aws.ToString(info.ErrorInformation.Message), tc.message) {
				t.Fatalf("ended %s %+v, want Failed %s", info.Status, info.ErrorInformation, tc.code)
			}
			if o := info.DeploymentOverview; o == nil || o.InProgress != 0 || o.Pending != 0 || o.Succeeded != 0 {
				t.Errorf("overview %+v", o)
			}
		})
	}
}
