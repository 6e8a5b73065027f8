package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/api"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

const testRole = "arn:aws:iam::000000000000:role/CodeDeployServiceRole"

func createApp(t *testing.T, c *codedeploy.Client, name string, platform types.ComputePlatform) {
	t.Helper()
	_, err := c.CreateApplication(context.Background(), &codedeploy.CreateApplicationInput{ApplicationName: aws.String(name), ComputePlatform: platform})
	if err != nil {
		t.Fatal(err)
	}
}

func groupInput(app, name string) *codedeploy.CreateDeploymentGroupInput {
	return &codedeploy.CreateDeploymentGroupInput{
		ApplicationName:     aws.String(app),
		DeploymentGroupName: aws.String(name),
		ServiceRoleArn:      aws.String(testRole),
	}
}

func getGroup(t *testing.T, c *codedeploy.Client, app, name string) *types.DeploymentGroupInfo {
	t.Helper()
	out, err := c.GetDeploymentGroup(context.Background(), &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.DeploymentGroupInfo
}

func groupTags(t *testing.T, c *codedeploy.Client, app, name string) []types.Tag {
	t.Helper()
	arn := fmt.Sprintf("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:%s/%s", app, name)
	out, err := c.ListTagsForResource(context.Background(), &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tags
}

func TestDeploymentGroupDefaults(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	out, err := c.CreateDeploymentGroup(ctx, groupInput("web", "prod"))
	if err != nil {
		t.Fatal(err)
	}
	if out.DeploymentGroupId == nil || len(*out.DeploymentGroupId) != 36 {
		t.Fatalf("group id %v", out.DeploymentGroupId)
	}
	g := getGroup(t, c, "web", "prod")
	switch {
	case *g.DeploymentGroupId != *out.DeploymentGroupId, *g.ApplicationName != "web", *g.DeploymentGroupName != "prod":
		t.Fatalf("identity %+v", g)
	case *g.DeploymentConfigName != "CodeDeployDefault.OneAtATime", g.ComputePlatform != types.ComputePlatformServer:
		t.Fatalf("config/platform %v %v", *g.DeploymentConfigName, g.ComputePlatform)
	case g.DeploymentStyle == nil || g.DeploymentStyle.DeploymentType != types.DeploymentTypeInPlace || g.DeploymentStyle.DeploymentOption != types.DeploymentOptionWithoutTrafficControl:
		t.Fatalf("style %+v", g.DeploymentStyle)
	case g.OutdatedInstancesStrategy != types.OutdatedInstancesStrategyUpdate, g.TerminationHookEnabled, *g.ServiceRoleArn != testRole:
		t.Fatalf("defaults %+v", g)
	}

	// Lambda groups are metadata, as on AWS: stored with the Lambda
	// defaults (deploy.TestLambdaAndECSAreMetadata deploys to them).
	createApp(t, c, "fn", types.ComputePlatformLambda)
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("fn", "live")); err != nil {
		t.Fatalf("Lambda group: %v", err)
	}
	if fn := getGroup(t, c, "fn", "live"); *fn.DeploymentConfigName != "CodeDeployDefault.LambdaAllAtOnce" || fn.ComputePlatform != types.ComputePlatformLambda {
		t.Fatalf("Lambda group %v %v", *fn.DeploymentConfigName, fn.ComputePlatform)
	}
}

// fullGroup sets every member of a Server blue/green group.
func fullGroup(app, name string) *codedeploy.CreateDeploymentGroupInput {
	in := groupInput(app, name)
	in.DeploymentConfigName = aws.String("CodeDeployDefault.HalfAtATime")
	in.OnPremisesTagSet = &types.OnPremisesTagSet{OnPremisesTagSetList: [][]types.TagFilter{
		{{Key: aws.String("env"), Value: aws.String("prod"), Type: types.TagFilterTypeKeyAndValue}},
		{{Key: aws.String("role"), Type: types.TagFilterTypeKeyOnly}, {Value: aws.String("web"), Type: types.TagFilterTypeValueOnly}},
	}}
	in.Ec2TagFilters = []types.EC2TagFilter{{Key: aws.String("Name"), Value: aws.String("web"), Type: types.EC2TagFilterTypeKeyAndValue}}
	in.AutoScalingGroups = []string{"asg-a", "asg-b"}
	in.TriggerConfigurations = []types.TriggerConfig{{
		TriggerName:      aws.String("notify"),
		TriggerTargetArn: aws.String("arn:aws:sns:us-east-1:000000000000:deploys"),
		TriggerEvents:    []types.TriggerEventType{types.TriggerEventTypeDeploymentFailure, types.TriggerEventTypeDeploymentSuccess},
	}}
	in.AlarmConfiguration = &types.AlarmConfiguration{Enabled: true, Alarms: []types.Alarm{{Name: aws.String("cpu-high")}}}
	in.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true, Events: []types.AutoRollbackEvent{types.AutoRollbackEventDeploymentFailure}}
	in.OutdatedInstancesStrategy = types.OutdatedInstancesStrategyIgnore
	in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithTrafficControl}
	in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{
		DeploymentReadyOption:                     &types.DeploymentReadyOption{ActionOnTimeout: types.DeploymentReadyActionStopDeployment, WaitTimeInMinutes: 60},
		GreenFleetProvisioningOption:              &types.GreenFleetProvisioningOption{Action: types.GreenFleetProvisioningActionDiscoverExisting},
		TerminateBlueInstancesOnDeploymentSuccess: &types.BlueInstanceTerminationOption{Action: types.InstanceActionKeepAlive, TerminationWaitTimeInMinutes: 5},
	}
	in.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String("tg-web")}}}
	in.TerminationHookEnabled = aws.Bool(true)
	in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}
	return in
}

func TestDeploymentGroupLifecycle(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	if _, err := c.CreateDeploymentGroup(ctx, fullGroup("web", "prod")); err != nil {
		t.Fatal(err)
	}
	g := getGroup(t, c, "web", "prod")
	bg := g.BlueGreenDeploymentConfiguration
	switch {
	case *g.DeploymentConfigName != "CodeDeployDefault.HalfAtATime", g.OutdatedInstancesStrategy != types.OutdatedInstancesStrategyIgnore, !g.TerminationHookEnabled:
		t.Fatalf("scalars %+v", g)
	case len(g.OnPremisesTagSet.OnPremisesTagSetList) != 2 || len(g.OnPremisesTagSet.OnPremisesTagSetList[1]) != 2 || len(g.Ec2TagFilters) != 1:
		t.Fatalf("targets %+v %+v", g.OnPremisesTagSet, g.Ec2TagFilters)
	case len(g.AutoScalingGroups) != 2 || *g.AutoScalingGroups[1].Name != "asg-b":
		t.Fatalf("asgs %+v", g.AutoScalingGroups)
	case len(g.TriggerConfigurations) != 1 || len(g.TriggerConfigurations[0].TriggerEvents) != 2:
		t.Fatalf("triggers %+v", g.TriggerConfigurations)
	case !g.AlarmConfiguration.Enabled || *g.AlarmConfiguration.Alarms[0].Name != "cpu-high", !g.AutoRollbackConfiguration.Enabled:
		t.Fatalf("alarms/rollback %+v %+v", g.AlarmConfiguration, g.AutoRollbackConfiguration)
	case g.DeploymentStyle.DeploymentType != types.DeploymentTypeBlueGreen, *g.LoadBalancerInfo.TargetGroupInfoList[0].Name != "tg-web":
		t.Fatalf("style/lb %+v %+v", g.DeploymentStyle, g.LoadBalancerInfo)
	case bg.DeploymentReadyOption.WaitTimeInMinutes != 60, bg.TerminateBlueInstancesOnDeploymentSuccess.Action != types.InstanceActionKeepAlive,
		bg.GreenFleetProvisioningOption.Action != types.GreenFleetProvisioningActionDiscoverExisting:
		t.Fatalf("blue/green %+v", bg)
	}
	if tags := groupTags(t, c, "web", "prod"); len(tags) != 1 || *tags[0].Value != "payments" {
		t.Fatalf("tags %+v", tags)
	}
	_, err := c.CreateDeploymentGroup(ctx, groupInput("web", "prod"))
	servertest.WantError(t, err, "DeploymentGroupAlreadyExistsException")

	// A partial update keeps what it leaves out and replaces what it gives.
	out, err := c.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName:            aws.String("web"),
		CurrentDeploymentGroupName: aws.String("prod"),
		DeploymentConfigName:       aws.String("CodeDeployDefault.AllAtOnce"),
		AutoScalingGroups:          []string{},
		TriggerConfigurations:      []types.TriggerConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.HooksNotCleanedUp) != 0 {
		t.Fatalf("hooks %+v", out.HooksNotCleanedUp)
	}
	g2 := getGroup(t, c, "web", "prod")
	switch {
	case *g2.DeploymentConfigName != "CodeDeployDefault.AllAtOnce", len(g2.AutoScalingGroups) != 0, len(g2.TriggerConfigurations) != 0:
		t.Fatalf("replaced members %+v", g2)
	case *g2.DeploymentGroupId != *g.DeploymentGroupId, len(g2.OnPremisesTagSet.OnPremisesTagSetList) != 2, !g2.AlarmConfiguration.Enabled,
		g2.DeploymentStyle.DeploymentType != types.DeploymentTypeBlueGreen, *g2.ServiceRoleArn != testRole:
		t.Fatalf("kept members %+v", g2)
	}

	// Rename carries the tags; a clash is refused.
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", "staging")); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("web"), CurrentDeploymentGroupName: aws.String("prod"), NewDeploymentGroupName: aws.String("staging")})
	servertest.WantError(t, err, "DeploymentGroupAlreadyExistsException")
	if _, err := c.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("web"), CurrentDeploymentGroupName: aws.String("prod"), NewDeploymentGroupName: aws.String("production")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("prod")})
	servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")
	if g3 := getGroup(t, c, "web", "production"); *g3.DeploymentGroupId != *g.DeploymentGroupId || *g3.DeploymentGroupName != "production" {
		t.Fatalf("renamed %+v", g3)
	}
	if tags := groupTags(t, c, "web", "production"); len(tags) != 1 {
		t.Fatalf("tags after rename %+v", tags)
	}
	// The old name's ARN names nothing now.
	_, err = c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/prod")})
	servertest.WantError(t, err, "InvalidArnException")

	list, err := c.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String("web")})
	if err != nil || *list.ApplicationName != "web" || strings.Join(list.DeploymentGroups, ",") != "production,staging" {
		t.Fatalf("list %+v %v", list, err)
	}
	bgOut, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String("web"), DeploymentGroupNames: []string{"staging", "nope", "production"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bgOut.DeploymentGroupsInfo) != 2 || *bgOut.DeploymentGroupsInfo[0].DeploymentGroupName != "staging" || bgOut.ErrorMessage == nil || !strings.Contains(*bgOut.ErrorMessage, "nope") {
		t.Fatalf("batch get %+v", bgOut)
	}

	del, err := c.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("production")})
	if err != nil || len(del.HooksNotCleanedUp) != 0 {
		t.Fatalf("delete %+v %v", del, err)
	}
	_, err = c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/production")})
	servertest.WantError(t, err, "InvalidArnException")
	// A new group of the name does not inherit the deleted one's tags.
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", "production")); err != nil {
		t.Fatal(err)
	}
	if tags := groupTags(t, c, "web", "production"); len(tags) != 0 {
		t.Fatalf("tags survive delete %+v", tags)
	}
	if _, err := c.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("production")}); err != nil {
		t.Fatal(err)
	}
	// Deleting what is gone succeeds: no DoesNotExist error is modelled.
	for _, app := range []string{"web", "no-such-app"} {
		if _, err := c.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("production")}); err != nil {
			t.Fatalf("delete missing in %s: %v", app, err)
		}
	}
}

func TestCreateDeploymentGroupValidation(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	createApp(t, env.Client, "web", "")
	createApp(t, env.Client, "fn", types.ComputePlatformLambda)
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	alarms := func(names ...string) *types.AlarmConfiguration {
		a := &types.AlarmConfiguration{Enabled: true, Alarms: []types.Alarm{}}
		for _, n := range names {
			a.Alarms = append(a.Alarms, types.Alarm{Name: aws.String(n)})
		}
		return a
	}
	trigger := func(name, arn string, events ...types.TriggerEventType) types.TriggerConfig {
		return types.TriggerConfig{TriggerName: aws.String(name), TriggerTargetArn: aws.String(arn), TriggerEvents: events}
	}
	const topic = "arn:aws:sns:us-east-1:000000000000:deploys"
	bgStyle := &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithTrafficControl}
	tg := &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String("tg")}}}
	cases := []struct {
		name string
		edit func(in *codedeploy.CreateDeploymentGroupInput)
		want string
	}{
		{"empty app name", func(in *codedeploy.CreateDeploymentGroupInput) { in.ApplicationName = aws.String("") }, "ApplicationNameRequiredException"},
		{"bad app name", func(in *codedeploy.CreateDeploymentGroupInput) { in.ApplicationName = aws.String("a b") }, "InvalidApplicationNameException"},
		{"missing app", func(in *codedeploy.CreateDeploymentGroupInput) { in.ApplicationName = aws.String("nope") }, "ApplicationDoesNotExistException"},
		{"empty group name", func(in *codedeploy.CreateDeploymentGroupInput) { in.DeploymentGroupName = aws.String("") }, "DeploymentGroupNameRequiredException"},
		{"bad group name", func(in *codedeploy.CreateDeploymentGroupInput) { in.DeploymentGroupName = aws.String("a/b") }, "InvalidDeploymentGroupNameException"},
		{"empty role", func(in *codedeploy.CreateDeploymentGroupInput) { in.ServiceRoleArn = aws.String("") }, "RoleRequiredException"},
		{"bad role", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.ServiceRoleArn = aws.String("arn:aws:iam::000000000000:user/bob")
		}, "InvalidRoleException"},
		{"unknown config", func(in *codedeploy.CreateDeploymentGroupInput) { in.DeploymentConfigName = aws.String("Nope") }, "DeploymentConfigDoesNotExistException"},
		{"config of another platform", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentConfigName = aws.String("CodeDeployDefault.LambdaAllAtOnce")
		}, "InvalidDeploymentConfigNameException"},
		{"server config for lambda", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.ApplicationName = aws.String("fn")
			in.DeploymentConfigName = aws.String("CodeDeployDefault.OneAtATime")
		}, "InvalidDeploymentConfigNameException"},
		{"ec2 filters with ec2 set", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.Ec2TagFilters = []types.EC2TagFilter{{Key: aws.String("a"), Type: types.EC2TagFilterTypeKeyOnly}}
			in.Ec2TagSet = &types.EC2TagSet{Ec2TagSetList: [][]types.EC2TagFilter{{{Key: aws.String("b"), Type: types.EC2TagFilterTypeKeyOnly}}}}
		}, "InvalidEC2TagCombinationException"},
		{"on-prem filters with on-prem set", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.OnPremisesInstanceTagFilters = []types.TagFilter{{Key: aws.String("a"), Type: types.TagFilterTypeKeyOnly}}
			in.OnPremisesTagSet = &types.OnPremisesTagSet{OnPremisesTagSetList: [][]types.TagFilter{{{Key: aws.String("b"), Type: types.TagFilterTypeKeyOnly}}}}
		}, "InvalidOnPremisesTagCombinationException"},
		{"four tag groups", func(in *codedeploy.CreateDeploymentGroupInput) {
			f := []types.TagFilter{{Key: aws.String("a"), Type: types.TagFilterTypeKeyOnly}}
			in.OnPremisesTagSet = &types.OnPremisesTagSet{OnPremisesTagSetList: [][]types.TagFilter{f, f, f, f}}
		}, "TagSetListLimitExceededException"},
		{"four ec2 tag groups", func(in *codedeploy.CreateDeploymentGroupInput) {
			f := []types.EC2TagFilter{{Key: aws.String("a"), Type: types.EC2TagFilterTypeKeyOnly}}
			in.Ec2TagSet = &types.EC2TagSet{Ec2TagSetList: [][]types.EC2TagFilter{f, f, f, f}}
		}, "TagSetListLimitExceededException"},
		{"KEY_ONLY with a value", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.OnPremisesInstanceTagFilters = []types.TagFilter{{Key: aws.String("a"), Value: aws.String("b"), Type: types.TagFilterTypeKeyOnly}}
		}, "InvalidTagException"},
		{"KEY_AND_VALUE without key", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.OnPremisesInstanceTagFilters = []types.TagFilter{{Value: aws.String("b"), Type: types.TagFilterTypeKeyAndValue}}
		}, "InvalidTagException"},
		{"bad on-prem filter type", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.OnPremisesInstanceTagFilters = []types.TagFilter{{Key: aws.String("a"), Type: "SOMETIMES"}}
		}, "InvalidTagException"},
		{"VALUE_ONLY ec2 filter with key", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.Ec2TagFilters = []types.EC2TagFilter{{Key: aws.String("a"), Value: aws.String("b"), Type: types.EC2TagFilterTypeValueOnly}}
		}, "InvalidEC2TagException"},
		{"empty ec2 tag group", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.Ec2TagSet = &types.EC2TagSet{Ec2TagSetList: [][]types.EC2TagFilter{{}}}
		}, "InvalidEC2TagException"},
		{"empty auto scaling group name", func(in *codedeploy.CreateDeploymentGroupInput) { in.AutoScalingGroups = []string{""} }, "InvalidAutoScalingGroupException"},
		{"blue/green without load balancer", func(in *codedeploy.CreateDeploymentGroupInput) { in.DeploymentStyle = bgStyle }, "InvalidLoadBalancerInfoException"},
		{"in-place with traffic control without load balancer", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeInPlace, DeploymentOption: types.DeploymentOptionWithTrafficControl}
		}, "InvalidLoadBalancerInfoException"},
		{"blue/green without traffic control", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithoutTrafficControl}
		}, "InvalidDeploymentStyleException"},
		{"bad deployment type", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: "SIDEWAYS"}
		}, "InvalidDeploymentStyleException"},
		{"eleven target groups", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.LoadBalancerInfo = &types.LoadBalancerInfo{}
			for _, n := range many(11, func(i int) string { return fmt.Sprint("tg", i) }) {
				in.LoadBalancerInfo.TargetGroupInfoList = append(in.LoadBalancerInfo.TargetGroupInfoList, types.TargetGroupInfo{Name: aws.String(n)})
			}
		}, "InvalidLoadBalancerInfoException"},
		{"unnamed load balancer", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.LoadBalancerInfo = &types.LoadBalancerInfo{ElbInfoList: []types.ELBInfo{{}}}
		}, "InvalidLoadBalancerInfoException"},
		{"continue with wait time", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle, in.LoadBalancerInfo = bgStyle, tg
			in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{DeploymentReadyOption: &types.DeploymentReadyOption{ActionOnTimeout: types.DeploymentReadyActionContinueDeployment, WaitTimeInMinutes: 5}}
		}, "InvalidBlueGreenDeploymentConfigurationException"},
		{"wait time over two days", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle, in.LoadBalancerInfo = bgStyle, tg
			in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{DeploymentReadyOption: &types.DeploymentReadyOption{ActionOnTimeout: types.DeploymentReadyActionStopDeployment, WaitTimeInMinutes: 2881}}
		}, "InvalidBlueGreenDeploymentConfigurationException"},
		{"termination wait over two days", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle, in.LoadBalancerInfo = bgStyle, tg
			in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{TerminateBlueInstancesOnDeploymentSuccess: &types.BlueInstanceTerminationOption{Action: types.InstanceActionTerminate, TerminationWaitTimeInMinutes: 3000}}
		}, "InvalidBlueGreenDeploymentConfigurationException"},
		{"copy auto scaling group", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.DeploymentStyle, in.LoadBalancerInfo = bgStyle, tg
			in.AutoScalingGroups = []string{"asg"}
			in.BlueGreenDeploymentConfiguration = &types.BlueGreenDeploymentConfiguration{GreenFleetProvisioningOption: &types.GreenFleetProvisioningOption{Action: types.GreenFleetProvisioningActionCopyAutoScalingGroup}}
		}, "InvalidBlueGreenDeploymentConfigurationException"},
		{"rollback enabled without events", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true}
		}, "InvalidAutoRollbackConfigException"},
		{"unknown rollback event", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true, Events: []types.AutoRollbackEvent{"WHENEVER"}}
		}, "InvalidAutoRollbackConfigException"},
		{"eleven alarms", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.AlarmConfiguration = alarms(many(11, func(i int) string { return fmt.Sprint("alarm", i) })...)
		}, "AlarmsLimitExceededException"},
		{"alarms enabled but none", func(in *codedeploy.CreateDeploymentGroupInput) { in.AlarmConfiguration = alarms() }, "InvalidAlarmConfigException"},
		{"empty alarm name", func(in *codedeploy.CreateDeploymentGroupInput) { in.AlarmConfiguration = alarms("") }, "InvalidAlarmConfigException"},
		{"duplicate alarms", func(in *codedeploy.CreateDeploymentGroupInput) { in.AlarmConfiguration = alarms("a", "a") }, "InvalidAlarmConfigException"},
		{"eleven triggers", func(in *codedeploy.CreateDeploymentGroupInput) {
			for _, n := range many(11, func(i int) string { return fmt.Sprint("t", i) }) {
				in.TriggerConfigurations = append(in.TriggerConfigurations, trigger(n, topic, types.TriggerEventTypeDeploymentStart))
			}
		}, "TriggerTargetsLimitExceededException"},
		{"trigger without name", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.TriggerConfigurations = []types.TriggerConfig{trigger("", topic, types.TriggerEventTypeDeploymentStart)}
		}, "InvalidTriggerConfigException"},
		{"trigger to a non-SNS ARN", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.TriggerConfigurations = []types.TriggerConfig{trigger("t", "arn:aws:sqs:us-east-1:000000000000:q", types.TriggerEventTypeDeploymentStart)}
		}, "InvalidTriggerConfigException"},
		{"trigger with bad event", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.TriggerConfigurations = []types.TriggerConfig{trigger("t", topic, "Whenever")}
		}, "InvalidTriggerConfigException"},
		{"trigger without events", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.TriggerConfigurations = []types.TriggerConfig{trigger("t", topic)}
		}, "InvalidTriggerConfigException"},
		{"ecs service on server", func(in *codedeploy.CreateDeploymentGroupInput) {
			in.EcsServices = []types.ECSService{{ServiceName: aws.String("s"), ClusterName: aws.String("c")}}
		}, "InvalidECSServiceException"},
		{"bad resource tag", func(in *codedeploy.CreateDeploymentGroupInput) { in.Tags = []types.Tag{{Key: aws.String("")}} }, "InvalidTagsToAddException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := groupInput("web", "g")
			tc.edit(in)
			_, err := env.Client.CreateDeploymentGroup(ctx, in)
			servertest.WantError(t, err, tc.want)
		})
	}
	for _, app := range []string{"web", "fn"} {
		list, err := env.Client.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String(app)})
		if err != nil || len(list.DeploymentGroups) != 0 {
			t.Fatalf("bad inputs changed state: %v %v", list.DeploymentGroups, err)
		}
	}
}

func TestUpdateDeploymentGroupValidation(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	in := groupInput("web", "prod")
	in.OnPremisesInstanceTagFilters = []types.TagFilter{{Key: aws.String("env"), Value: aws.String("prod"), Type: types.TagFilterTypeKeyAndValue}}
	if _, err := c.CreateDeploymentGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	before := getGroup(t, c, "web", "prod")
	upd := func(edit func(*codedeploy.UpdateDeploymentGroupInput)) *codedeploy.UpdateDeploymentGroupInput {
		u := &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("web"), CurrentDeploymentGroupName: aws.String("prod")}
		edit(u)
		return u
	}
	cases := []struct {
		name string
		in   *codedeploy.UpdateDeploymentGroupInput
		want string
	}{
		{"missing app", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.ApplicationName = aws.String("nope") }), "ApplicationDoesNotExistException"},
		{"missing group", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.CurrentDeploymentGroupName = aws.String("nope") }), "DeploymentGroupDoesNotExistException"},
		{"empty group name", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.CurrentDeploymentGroupName = aws.String("") }), "DeploymentGroupNameRequiredException"},
		{"bad new name", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.NewDeploymentGroupName = aws.String("a b") }), "InvalidDeploymentGroupNameException"},
		{"tag set beside kept filters", upd(func(u *codedeploy.UpdateDeploymentGroupInput) {
			u.OnPremisesTagSet = &types.OnPremisesTagSet{OnPremisesTagSetList: [][]types.TagFilter{{{Key: aws.String("a"), Type: types.TagFilterTypeKeyOnly}}}}
		}), "InvalidOnPremisesTagCombinationException"},
		{"unknown config", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.DeploymentConfigName = aws.String("Nope") }), "DeploymentConfigDoesNotExistException"},
		{"empty role", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.ServiceRoleArn = aws.String("") }), "InvalidRoleException"},
		{"bad role", upd(func(u *codedeploy.UpdateDeploymentGroupInput) { u.ServiceRoleArn = aws.String("role") }), "InvalidRoleException"},
		{"traffic control without load balancer", upd(func(u *codedeploy.UpdateDeploymentGroupInput) {
			u.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeInPlace, DeploymentOption: types.DeploymentOptionWithTrafficControl}
		}), "InvalidLoadBalancerInfoException"},
		{"bad rename with bad config", upd(func(u *codedeploy.UpdateDeploymentGroupInput) {
			u.NewDeploymentGroupName = aws.String("renamed")
			u.AlarmConfiguration = &types.AlarmConfiguration{Enabled: true}
		}), "InvalidAlarmConfigException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.UpdateDeploymentGroup(ctx, tc.in)
			servertest.WantError(t, err, tc.want)
		})
	}
	after := getGroup(t, c, "web", "prod")
	if *after.DeploymentConfigName != *before.DeploymentConfigName || len(after.OnPremisesInstanceTagFilters) != 1 || after.OnPremisesTagSet != nil || after.DeploymentStyle.DeploymentOption != before.DeploymentStyle.DeploymentOption {
		t.Fatalf("bad updates changed the group: %+v", after)
	}
	// Switching from filters to a tag set works when the filters are cleared.
	if _, err := c.UpdateDeploymentGroup(ctx, upd(func(u *codedeploy.UpdateDeploymentGroupInput) {
		u.OnPremisesInstanceTagFilters = []types.TagFilter{}
		u.OnPremisesTagSet = &types.OnPremisesTagSet{OnPremisesTagSetList: [][]types.TagFilter{{{Key: aws.String("a"), Type: types.TagFilterTypeKeyOnly}}}}
	})); err != nil {
		t.Fatal(err)
	}
	if g := getGroup(t, c, "web", "prod"); len(g.OnPremisesInstanceTagFilters) != 0 || len(g.OnPremisesTagSet.OnPremisesTagSetList) != 1 {
		t.Fatalf("switch to tag set %+v", g)
	}
}

func TestDeploymentGroupReadErrors(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	_, err := c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("nope"), DeploymentGroupName: aws.String("g")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
	_, err = c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("g")})
	servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")
	_, err = c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("")})
	servertest.WantError(t, err, "DeploymentGroupNameRequiredException")
	_, err = c.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String("nope")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
	_, err = c.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String("web"), NextToken: aws.String("forged")})
	servertest.WantError(t, err, "InvalidNextTokenException")
	_, err = c.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("a:b")})
	servertest.WantError(t, err, "InvalidDeploymentGroupNameException")

	batch := func(app string, names []string) error {
		_, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String(app), DeploymentGroupNames: names})
		return err
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("g", i)
	}
	for _, tc := range []struct {
		name, app string
		names     []string
		want      string
	}{
		{"too many", "web", many, "BatchLimitExceededException"},
		{"no names", "web", []string{}, "DeploymentGroupNameRequiredException"},
		{"bad name", "web", []string{"a b"}, "InvalidDeploymentGroupNameException"},
		{"missing app", "nope", []string{"g"}, "ApplicationDoesNotExistException"},
	} {
		t.Run(tc.name, func(t *testing.T) { servertest.WantError(t, batch(tc.app, tc.names), tc.want) })
	}
	// 100 is within the limit.
	out, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String("web"), DeploymentGroupNames: many[:100]})
	if err != nil || len(out.DeploymentGroupsInfo) != 0 || out.ErrorMessage == nil {
		t.Fatalf("batch of 100 missing: %+v %v", out, err)
	}
}

func TestDeploymentGroupLimit(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	createApp(t, env.Client, "web", "")
	err := env.Server.API.Store.Update(ctx, func(tx store.Tx) error {
		for i := range 1000 {
			g := &cd.DeploymentGroupInfo{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String(fmt.Sprintf("g%04d", i))}
			if err := api.SaveGroup(ctx, tx, "000000000000", "us-east-1", g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.CreateDeploymentGroup(ctx, groupInput("web", "one-too-many"))
	servertest.WantError(t, err, "DeploymentGroupLimitExceededException")
}

func TestListDeploymentGroupsPaging(t *testing.T) {
	env := servertest.Start(t)
	env.Server.API.PageSize = 4
	ctx := context.Background()
	createApp(t, env.Client, "web", "")
	for i := range 10 {
		if _, err := env.Client.CreateDeploymentGroup(ctx, groupInput("web", fmt.Sprintf("g%02d", 9-i))); err != nil {
			t.Fatal(err)
		}
	}
	p := codedeploy.NewListDeploymentGroupsPaginator(env.Client, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String("web")})
	var got []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, out.DeploymentGroups...)
	}
	if pages != 3 || strings.Join(got, ",") != "g00,g01,g02,g03,g04,g05,g06,g07,g08,g09" {
		t.Fatalf("%d pages: %v", pages, got)
	}
}

func TestLoadAndSaveGroup(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	createApp(t, env.Client, "web", "")
	if _, err := env.Client.CreateDeploymentGroup(ctx, groupInput("web", "prod")); err != nil {
		t.Fatal(err)
	}
	st := env.Server.API.Store
	err := st.Update(ctx, func(tx store.Tx) error {
		if _, err := api.LoadGroup(ctx, tx, "000000000000", "us-east-1", "web", "nope"); err == nil || !strings.Contains(err.Error(), "DeploymentGroupDoesNotExistException") {
			return fmt.Errorf("missing group: %v", err)
		}
		g, err := api.LoadGroup(ctx, tx, "000000000000", "us-east-1", "web", "prod")
		if err != nil {
			return err
		}
		g.TargetRevision = &cd.RevisionLocation{RevisionType: aws.String("S3"), S3Location: &cd.S3Location{Bucket: aws.String("b"), Key: aws.String("k"), BundleType: aws.String("zip")}}
		return api.SaveGroup(ctx, tx, "000000000000", "us-east-1", g)
	})
	if err != nil {
		t.Fatal(err)
	}
	if g := getGroup(t, env.Client, "web", "prod"); g.TargetRevision == nil || *g.TargetRevision.S3Location.Key != "k" {
		t.Fatalf("target revision %+v", g.TargetRevision)
	}
}
