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

// TestLambdaAndECSAreMetadata: Lambda and ECS applications and groups are
// accepted as AWS accepts them (and refused where AWS refuses them); a
// deployment to them is created and has failed at once with an error
// saying this server deploys only to servers, leaving the group free for
// the next one.
func TestLambdaAndECSAreMetadata(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0")}}
	ecsGroup := func(in *codedeploy.CreateDeploymentGroupInput) {
		in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithTrafficControl}
		in.EcsServices = []types.ECSService{{ServiceName: aws.String("svc"), ClusterName: aws.String("cl")}}
		in.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupPairInfoList: []types.TargetGroupPairInfo{{
			TargetGroups:     []types.TargetGroupInfo{{Name: aws.String("blue")}, {Name: aws.String("green")}},
			ProdTrafficRoute: &types.TrafficRoute{ListenerArns: []string{"arn:aws:elasticloadbalancing:us-east-1:000000000000:listener/app/lb/1/2"}},
		}}}
	}
	for _, tc := range []struct {
		platform types.ComputePlatform
		config   string // the group's default
		code     string
		group    func(*codedeploy.CreateDeploymentGroupInput)
		refused  []func(*codedeploy.CreateDeploymentGroupInput) // AWS refuses these groups
	}{
		{types.ComputePlatformLambda, "CodeDeployDefault.LambdaAllAtOnce", "INVALID_LAMBDA_CONFIGURATION", func(*codedeploy.CreateDeploymentGroupInput) {},
			[]func(*codedeploy.CreateDeploymentGroupInput){
				func(in *codedeploy.CreateDeploymentGroupInput) {
					in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeInPlace, DeploymentOption: types.DeploymentOptionWithoutTrafficControl}
				},
				func(in *codedeploy.CreateDeploymentGroupInput) {
					in.DeploymentConfigName = aws.String("CodeDeployDefault.OneAtATime")
				},
			}},
		{types.ComputePlatformEcs, "CodeDeployDefault.ECSAllAtOnce", "INVALID_ECS_SERVICE", ecsGroup,
			[]func(*codedeploy.CreateDeploymentGroupInput){
				func(in *codedeploy.CreateDeploymentGroupInput) { ecsGroup(in); in.EcsServices = nil },
				func(in *codedeploy.CreateDeploymentGroupInput) { ecsGroup(in); in.LoadBalancerInfo = nil },
				func(in *codedeploy.CreateDeploymentGroupInput) {
					ecsGroup(in)
					in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeInPlace}
				},
			}},
	} {
		t.Run(string(tc.platform), func(t *testing.T) {
			app := "app-" + strings.ToLower(string(tc.platform))
			if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(app), ComputePlatform: tc.platform}); err != nil {
				t.Fatalf("CreateApplication: %v", err)
			}
			input := func(name string) *codedeploy.CreateDeploymentGroupInput {
				return &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(name),
					ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/r")}
			}
			for i, bad := range tc.refused {
				in := input("bad")
				bad(in)
				if _, err := c.CreateDeploymentGroup(ctx, in); err == nil {
					t.Errorf("refused group %d was accepted", i)
				}
			}
			in := input("g")
			tc.group(in)
			if _, err := c.CreateDeploymentGroup(ctx, in); err != nil {
				t.Fatalf("CreateDeploymentGroup: %v", err)
			}
			g, err := c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g")})
			if err != nil {
				t.Fatal(err)
			}
			if gi := g.DeploymentGroupInfo; gi.ComputePlatform != tc.platform || aws.ToString(gi.DeploymentConfigName) != tc.config ||
				gi.DeploymentStyle == nil || gi.DeploymentStyle.DeploymentType != types.DeploymentTypeBlueGreen {
				t.Errorf("group %+v", gi)
			}
			for range 2 { // the first leaves the group free for the second
				d, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g"), Revision: rev})
				if err != nil {
					t.Fatalf("CreateDeployment: %v", err)
				}
				got, err := c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: d.DeploymentId})
				if err != nil {
					t.Fatal(err)
				}
				di := got.DeploymentInfo
				if di.Status != types.DeploymentStatusFailed || di.ErrorInformation == nil || string(di.ErrorInformation.Code) != tc.code ||
					!strings.Contains(aws.ToString(di.ErrorInformation.Message), "deploys only to the Server compute platform") ||
					di.ComputePlatform != tc.platform || di.CompleteTime == nil {
					t.Errorf("deployment %s %+v %+v", di.Status, di.ErrorInformation, di)
				}
			}
			deps, err := c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g"),
				IncludeOnlyStatuses: []types.DeploymentStatus{types.DeploymentStatusFailed}})
			if err != nil || len(deps.Deployments) != 2 {
				t.Errorf("failed deployments listed: %v %v", deps, err)
			}
		})
	}
	// AWS's own Lambda checks come first.
	_, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app-lambda"),
		DeploymentGroupName: aws.String("g"), Revision: rev, UpdateOutdatedInstancesOnly: true})
	servertest.WantError(t, err, "InvalidUpdateOutdatedInstancesOnlyValueException")
	// An AppSpec file bundle is for Lambda and ECS only.
	if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("srv")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("srv"), DeploymentGroupName: aws.String("g"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3,
			S3Location: &types.S3Location{Bucket: aws.String("b"), Key: aws.String("appspec.yaml"), BundleType: types.BundleTypeYaml}}})
	servertest.WantError(t, err, "InvalidRevisionException")
}
