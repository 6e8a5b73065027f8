package deploy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestUnsupportedComputePlatforms: Lambda and ECS applications can be
// created, but their groups and deployments are refused with a modeled
// error that says this server does not run that platform, and nothing is
// stored.
func TestUnsupportedComputePlatforms(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0")}}
	for _, tc := range []struct {
		platform types.ComputePlatform
		group    func(*codedeploy.CreateDeploymentGroupInput)
	}{
		{types.ComputePlatformLambda, func(*codedeploy.CreateDeploymentGroupInput) {}},
		{types.ComputePlatformEcs, func(in *codedeploy.CreateDeploymentGroupInput) {
			// A group AWS would accept, so only the platform is refused.
			in.EcsServices = []types.ECSService{{ServiceName: aws.String("svc"), ClusterName: aws.String("cl")}}
			in.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupPairInfoList: []types.TargetGroupPairInfo{{
				TargetGroups:     []types.TargetGroupInfo{{Name: aws.String("blue")}, {Name: aws.String("green")}},
				ProdTrafficRoute: &types.TrafficRoute{ListenerArns: []string{"arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/lb/1/2"}},
			}}}
		}},
	} {
		t.Run(string(tc.platform), func(t *testing.T) {
			app := "app-" + strings.ToLower(string(tc.platform))
			want := "does not run the " + string(tc.platform) + " compute platform"
			if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(app), ComputePlatform: tc.platform}); err != nil {
				t.Fatalf("CreateApplication: %v", err)
			}
			in := &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g"),
				ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/r")}
			tc.group(in)
			_, err := c.CreateDeploymentGroup(ctx, in)
			servertest.WantError(t, err, "InvalidDeploymentConfigNameException")
			if !strings.Contains(err.Error(), want) {
				t.Errorf("CreateDeploymentGroup message: %v", err)
			}
			_, err = c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g"), Revision: rev})
			servertest.WantError(t, err, "InvalidDeploymentConfigNameException")
			if !strings.Contains(err.Error(), want) {
				t.Errorf("CreateDeployment message: %v", err)
			}
			groups, err := c.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String(app)})
			if err != nil || len(groups.DeploymentGroups) != 0 {
				t.Errorf("groups stored: %v %v", groups, err)
			}
			deps, err := c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g")})
			if err == nil && len(deps.Deployments) != 0 {
				t.Errorf("deployments stored: %v", deps.Deployments)
			}
		})
	}
	// AWS's own Lambda checks still come first.
	_, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app-lambda"),
		DeploymentGroupName: aws.String("g"), Revision: rev, UpdateOutdatedInstancesOnly: true})
	servertest.WantError(t, err, "InvalidUpdateOutdatedInstancesOnlyValueException")
}
