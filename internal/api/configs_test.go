package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// createGroup creates a minimal Server deployment group.
func createGroup(t *testing.T, c *codedeploy.Client, app, group, config string) {
	t.Helper()
	in := &codedeploy.CreateDeploymentGroupInput{
		ApplicationName:     aws.String(app),
		DeploymentGroupName: aws.String(group),
		ServiceRoleArn:      aws.String("arn:aws:iam::000000000000:role/CodeDeployServiceRole"),
	}
	if config != "" {
		in.DeploymentConfigName = aws.String(config)
	}
	_, err := c.CreateDeploymentGroup(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateDeploymentGroup %s/%s: %v", app, group, err)
	}
}

func listConfigs(t *testing.T, c *codedeploy.Client) []string {
	t.Helper()
	var names []string
	p := codedeploy.NewListDeploymentConfigsPaginator(c, &codedeploy.ListDeploymentConfigsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, out.DeploymentConfigsList...)
	}
	return names
}

func hosts(typ types.MinimumHealthyHostsType, v int32) *types.MinimumHealthyHosts {
	return &types.MinimumHealthyHosts{Type: typ, Value: v}
}

func canary(p, m int32) *types.TrafficRoutingConfig {
	return &types.TrafficRoutingConfig{Type: types.TrafficRoutingTypeTimeBasedCanary, TimeBasedCanary: &types.TimeBasedCanary{CanaryPercentage: p, CanaryInterval: m}}
}

func linear(p, m int32) *types.TrafficRoutingConfig {
	return &types.TrafficRoutingConfig{Type: types.TrafficRoutingTypeTimeBasedLinear, TimeBasedLinear: &types.TimeBasedLinear{LinearPercentage: p, LinearInterval: m}}
}

var allAtOnce = &types.TrafficRoutingConfig{Type: types.TrafficRoutingTypeAllAtOnce}

// checkConfig compares the parts of a config a test cares about.
func checkConfig(t *testing.T, got *types.DeploymentConfigInfo, platform types.ComputePlatform, mh *types.MinimumHealthyHosts, trc *types.TrafficRoutingConfig) {
	t.Helper()
	if got == nil {
		t.Fatal("no deploymentConfigInfo")
	}
	if got.ComputePlatform != platform {
		t.Errorf("computePlatform = %q, want %q", got.ComputePlatform, platform)
	}
	switch {
	case mh == nil && got.MinimumHealthyHosts != nil:
		t.Errorf("minimumHealthyHosts = %+v, want none", *got.MinimumHealthyHosts)
	case mh != nil && (got.MinimumHealthyHosts == nil || *got.MinimumHealthyHosts != *mh):
		t.Errorf("minimumHealthyHosts = %+v, want %+v", got.MinimumHealthyHosts, *mh)
	}
	switch {
	case trc == nil && got.TrafficRoutingConfig != nil:
		t.Errorf("trafficRoutingConfig = %+v, want none", *got.TrafficRoutingConfig)
	case trc != nil:
		g := got.TrafficRoutingConfig
		if g == nil || g.Type != trc.Type {
			t.Fatalf("trafficRoutingConfig = %+v, want %+v", g, *trc)
		}
		if (g.TimeBasedCanary == nil) != (trc.TimeBasedCanary == nil) || (g.TimeBasedCanary != nil && *g.TimeBasedCanary != *trc.TimeBasedCanary) {
			t.Errorf("timeBasedCanary = %+v, want %+v", g.TimeBasedCanary, trc.TimeBasedCanary)
		}
		if (g.TimeBasedLinear == nil) != (trc.TimeBasedLinear == nil) || (g.TimeBasedLinear != nil && *g.TimeBasedLinear != *trc.TimeBasedLinear) {
			t.Errorf("timeBasedLinear = %+v, want %+v", g.TimeBasedLinear, trc.TimeBasedLinear)
		}
	}
}

func TestBuiltinDeploymentConfigs(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	const server, lambda, ecs = types.ComputePlatformServer, types.ComputePlatformLambda, types.ComputePlatformEcs
	cases := []struct {
		name     string
		platform types.ComputePlatform
		mh       *types.MinimumHealthyHosts
		trc      *types.TrafficRoutingConfig
	}{
		{"CodeDeployDefault.OneAtATime", server, hosts("MOST_CONCURRENCY", 1), nil},
		{"CodeDeployDefault.HalfAtATime", server, hosts(types.MinimumHealthyHostsTypeFleetPercent, 50), nil},
		{"CodeDeployDefault.AllAtOnce", server, &types.MinimumHealthyHosts{Type: types.MinimumHealthyHostsTypeFleetPercent}, nil},
		{"CodeDeployDefault.LambdaAllAtOnce", lambda, nil, allAtOnce},
		{"CodeDeployDefault.LambdaCanary10Percent5Minutes", lambda, nil, canary(10, 5)},
		{"CodeDeployDefault.LambdaCanary10Percent10Minutes", lambda, nil, canary(10, 10)},
		{"CodeDeployDefault.LambdaCanary10Percent15Minutes", lambda, nil, canary(10, 15)},
		{"CodeDeployDefault.LambdaCanary10Percent30Minutes", lambda, nil, canary(10, 30)},
		{"CodeDeployDefault.LambdaLinear10PercentEvery1Minute", lambda, nil, linear(10, 1)},
		{"CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", lambda, nil, linear(10, 2)},
		{"CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", lambda, nil, linear(10, 3)},
		{"CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", lambda, nil, linear(10, 10)},
		{"CodeDeployDefault.ECSAllAtOnce", ecs, nil, allAtOnce},
		{"CodeDeployDefault.ECSCanary10Percent5Minutes", ecs, nil, canary(10, 5)},
		{"CodeDeployDefault.ECSCanary10Percent15Minutes", ecs, nil, canary(10, 15)},
		{"CodeDeployDefault.ECSLinear10PercentEvery1Minutes", ecs, nil, linear(10, 1)},
		{"CodeDeployDefault.ECSLinear10PercentEvery3Minutes", ecs, nil, linear(10, 3)},
	}
	listed := listConfigs(t, env.Client)
	if len(listed) != len(cases) {
		t.Errorf("ListDeploymentConfigs = %d names %v, want the %d built-ins", len(listed), listed, len(cases))
	}
	ids := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Contains(listed, tc.name) {
				t.Errorf("%s not listed", tc.name)
			}
			out, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String(tc.name)})
			if err != nil {
				t.Fatal(err)
			}
			info := out.DeploymentConfigInfo
			checkConfig(t, info, tc.platform, tc.mh, tc.trc)
			if aws.ToString(info.DeploymentConfigName) != tc.name {
				t.Errorf("name = %q", aws.ToString(info.DeploymentConfigName))
			}
			if info.ZonalConfig != nil {
				t.Errorf("zonalConfig = %+v, want none", *info.ZonalConfig)
			}
			if info.CreateTime == nil || info.CreateTime.UnixMilli() != 1446744188711 {
				t.Errorf("createTime = %v, want 1446744188.711", info.CreateTime)
			}
			id := aws.ToString(info.DeploymentConfigId)
			if prev, dup := ids[id]; dup || len(id) != 36 {
				t.Errorf("id %q (duplicate of %q?)", id, prev)
			}
			ids[id] = tc.name
			if tc.name == "CodeDeployDefault.OneAtATime" && id != "00000000-0000-0000-0000-000000000001" {
				t.Errorf("OneAtATime id = %q, want AWS's 00000000-0000-0000-0000-000000000001", id)
			}
		})
	}
}

func TestCreateDeploymentConfig(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	const server, lambda, ecs = types.ComputePlatformServer, types.ComputePlatformLambda, types.ComputePlatformEcs
	zonal := &types.ZonalConfig{
		FirstZoneMonitorDurationInSeconds: aws.Int64(600),
		MonitorDurationInSeconds:          aws.Int64(300),
		MinimumHealthyHostsPerZone:        &types.MinimumHealthyHostsPerZone{Type: types.MinimumHealthyHostsPerZoneTypeHostCount, Value: 1},
	}
	cases := []struct {
		name     string
		in       codedeploy.CreateDeploymentConfigInput
		platform types.ComputePlatform
		mh       *types.MinimumHealthyHosts
		trc      *types.TrafficRoutingConfig
		zonal    *types.ZonalConfig
	}{
		{name: "server-host-count", in: codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 2)},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeHostCount, 2)},
		{name: "server-fleet-percent", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: server, MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeFleetPercent, 75)},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeFleetPercent, 75)},
		{name: "server-fleet-percent-99", in: codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeFleetPercent, 99)},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeFleetPercent, 99)},
		{name: "server-zonal", in: codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1), ZonalConfig: zonal},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeHostCount, 1), zonal: zonal},
		{name: "server-linear", in: codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 0), TrafficRoutingConfig: linear(25, 1)},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeHostCount, 0), trc: linear(25, 1)},
		{name: "server-canary", in: codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 0), TrafficRoutingConfig: canary(10, 5)},
			platform: server, mh: hosts(types.MinimumHealthyHostsTypeHostCount, 0), trc: canary(10, 5)},
		{name: "lambda-default-all-at-once", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda},
			platform: lambda, trc: allAtOnce},
		{name: "lambda-canary", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, TrafficRoutingConfig: canary(20, 7)},
			platform: lambda, trc: canary(20, 7)},
		{name: "lambda-linear", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, TrafficRoutingConfig: linear(25, 4)},
			platform: lambda, trc: linear(25, 4)},
		{name: "ecs-all-at-once", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: ecs, TrafficRoutingConfig: allAtOnce},
			platform: ecs, trc: allAtOnce},
		{name: "ecs-canary", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: ecs, TrafficRoutingConfig: canary(50, 30)},
			platform: ecs, trc: canary(50, 30)},
		{name: "ecs-linear", in: codedeploy.CreateDeploymentConfigInput{ComputePlatform: ecs, TrafficRoutingConfig: linear(99, 1)},
			platform: ecs, trc: linear(99, 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.DeploymentConfigName = aws.String(tc.name)
			out, err := env.Client.CreateDeploymentConfig(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String(tc.name)})
			if err != nil {
				t.Fatal(err)
			}
			info := got.DeploymentConfigInfo
			checkConfig(t, info, tc.platform, tc.mh, tc.trc)
			if aws.ToString(info.DeploymentConfigId) != aws.ToString(out.DeploymentConfigId) || len(aws.ToString(out.DeploymentConfigId)) != 36 {
				t.Errorf("id %q, created as %q", aws.ToString(info.DeploymentConfigId), aws.ToString(out.DeploymentConfigId))
			}
			if info.CreateTime == nil || info.CreateTime.IsZero() {
				t.Error("no createTime")
			}
			switch z := info.ZonalConfig; {
			case tc.zonal == nil && z != nil:
				t.Errorf("zonalConfig = %+v, want none", *z)
			case tc.zonal != nil:
				if z == nil || aws.ToInt64(z.FirstZoneMonitorDurationInSeconds) != 600 || aws.ToInt64(z.MonitorDurationInSeconds) != 300 ||
					z.MinimumHealthyHostsPerZone == nil || *z.MinimumHealthyHostsPerZone != *tc.zonal.MinimumHealthyHostsPerZone {
					t.Errorf("zonalConfig = %+v", z)
				}
			}
		})
	}
	names := listConfigs(t, env.Client)
	for _, tc := range cases {
		if !slices.Contains(names, tc.name) {
			t.Errorf("%s not listed", tc.name)
		}
	}
	if len(names) != 17+len(cases) {
		t.Errorf("listed %d configs, want %d", len(names), 17+len(cases))
	}

	// A custom config is deleted, after which it is gone.
	if _, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String("ecs-linear")}); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("ecs-linear")})
	servertest.WantError(t, err, "DeploymentConfigDoesNotExistException")
	// The name can be used again.
	if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("ecs-linear"),
		ComputePlatform: ecs, TrafficRoutingConfig: linear(10, 2)}); err != nil {
		t.Fatal(err)
	}
}

// TestCreateDeploymentConfigZeroMinimum covers HOST_COUNT 0 and
// FLEET_PERCENT 0, both valid (SERVICE-SEMANTICS §3.3). aws-sdk-go-v2 omits
// an int32 member whose value is 0 (the model defaults it to 0), so the
// server receives {"type":"FLEET_PERCENT"} without a value.
func TestCreateDeploymentConfigZeroMinimum(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name string
		in   codedeploy.CreateDeploymentConfigInput
	}{
		{"fleet-percent-0", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeFleetPercent, 0)}},
		{"host-count-0", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 0)}},
		{"zonal-per-zone-host-count-0", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1),
			ZonalConfig: &types.ZonalConfig{MinimumHealthyHostsPerZone: &types.MinimumHealthyHostsPerZone{Type: types.MinimumHealthyHostsPerZoneTypeHostCount}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.DeploymentConfigName = aws.String(tc.name)
			_, err := env.Client.CreateDeploymentConfig(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: in.DeploymentConfigName})
			if err != nil {
				t.Fatal(err)
			}
			if mh := got.DeploymentConfigInfo.MinimumHealthyHosts; mh == nil || *mh != *in.MinimumHealthyHosts {
				t.Errorf("minimumHealthyHosts = %+v, want %+v", mh, *in.MinimumHealthyHosts)
			}
		})
	}
}

func TestCreateDeploymentConfigErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("taken"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1)}); err != nil {
		t.Fatal(err)
	}
	fleet := func(v int32) *types.MinimumHealthyHosts { return hosts(types.MinimumHealthyHostsTypeFleetPercent, v) }
	const lambda, ecs = types.ComputePlatformLambda, types.ComputePlatformEcs
	cases := []struct {
		name string
		in   codedeploy.CreateDeploymentConfigInput
		want string
	}{
		{"duplicate", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("taken"), MinimumHealthyHosts: fleet(10)}, "DeploymentConfigAlreadyExistsException"},
		{"duplicate of a built-in", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("CodeDeployDefault.OneAtATime"), MinimumHealthyHosts: fleet(10)}, "InvalidDeploymentConfigNameException"},
		{"reserved prefix", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("CodeDeployDefault.Mine"), MinimumHealthyHosts: fleet(10)}, "InvalidDeploymentConfigNameException"},
		{"bad characters", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("a/b"), MinimumHealthyHosts: fleet(10)}, "InvalidDeploymentConfigNameException"},
		{"space", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("a b"), MinimumHealthyHosts: fleet(10)}, "InvalidDeploymentConfigNameException"},
		{"too long", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String(strings.Repeat("c", 101)), MinimumHealthyHosts: fleet(10)}, "InvalidDeploymentConfigNameException"},
		{"empty name", codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String(""), MinimumHealthyHosts: fleet(10)}, "DeploymentConfigNameRequiredException"},
		{"fleet percent 100", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(100)}, "InvalidMinimumHealthyHostValueException"},
		{"fleet percent -1", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(-1)}, "InvalidMinimumHealthyHostValueException"},
		{"host count -1", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, -1)}, "InvalidMinimumHealthyHostValueException"},
		{"missing minimum healthy hosts", codedeploy.CreateDeploymentConfigInput{}, "InvalidMinimumHealthyHostValueException"},
		{"missing type", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: &types.MinimumHealthyHosts{Value: 3}}, "InvalidMinimumHealthyHostValueException"},
		{"MOST_CONCURRENCY is not settable", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: hosts("MOST_CONCURRENCY", 1)}, "ValidationException"},
		{"minimum healthy hosts on lambda", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, MinimumHealthyHosts: fleet(10)}, "InvalidMinimumHealthyHostValueException"},
		{"bad platform", codedeploy.CreateDeploymentConfigInput{ComputePlatform: "Mainframe", MinimumHealthyHosts: fleet(10)}, "InvalidComputePlatformException"},
		{"linear 100 percent on server", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), TrafficRoutingConfig: linear(100, 1)}, "InvalidTrafficRoutingConfigurationException"},
		{"canary 0 minutes on server", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), TrafficRoutingConfig: canary(10, 0)}, "InvalidTrafficRoutingConfigurationException"},
		{"canary without settings", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda,
			TrafficRoutingConfig: &types.TrafficRoutingConfig{Type: types.TrafficRoutingTypeTimeBasedCanary}}, "InvalidTrafficRoutingConfigurationException"},
		{"canary 0 percent", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, TrafficRoutingConfig: canary(0, 5)}, "InvalidTrafficRoutingConfigurationException"},
		{"canary 100 percent", codedeploy.CreateDeploymentConfigInput{ComputePlatform: ecs, TrafficRoutingConfig: canary(100, 5)}, "InvalidTrafficRoutingConfigurationException"},
		{"linear 0 minutes", codedeploy.CreateDeploymentConfigInput{ComputePlatform: ecs, TrafficRoutingConfig: linear(10, 0)}, "InvalidTrafficRoutingConfigurationException"},
		{"linear with canary settings", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, TrafficRoutingConfig: &types.TrafficRoutingConfig{
			Type: types.TrafficRoutingTypeTimeBasedLinear, TimeBasedCanary: &types.TimeBasedCanary{CanaryPercentage: 10, CanaryInterval: 5}}}, "InvalidTrafficRoutingConfigurationException"},
		{"all at once with linear settings", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, TrafficRoutingConfig: &types.TrafficRoutingConfig{
			Type: types.TrafficRoutingTypeAllAtOnce, TimeBasedLinear: &types.TimeBasedLinear{LinearPercentage: 10, LinearInterval: 5}}}, "InvalidTrafficRoutingConfigurationException"},
		{"zonal on lambda", codedeploy.CreateDeploymentConfigInput{ComputePlatform: lambda, ZonalConfig: &types.ZonalConfig{MonitorDurationInSeconds: aws.Int64(60)}}, "InvalidZonalDeploymentConfigurationException"},
		{"zonal negative monitor", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), ZonalConfig: &types.ZonalConfig{MonitorDurationInSeconds: aws.Int64(-1)}}, "InvalidZonalDeploymentConfigurationException"},
		{"zonal negative first monitor", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), ZonalConfig: &types.ZonalConfig{FirstZoneMonitorDurationInSeconds: aws.Int64(-5)}}, "InvalidZonalDeploymentConfigurationException"},
		{"zonal per-zone fleet percent 100", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), ZonalConfig: &types.ZonalConfig{
			MinimumHealthyHostsPerZone: &types.MinimumHealthyHostsPerZone{Type: types.MinimumHealthyHostsPerZoneTypeFleetPercent, Value: 100}}}, "InvalidZonalDeploymentConfigurationException"},
		{"zonal per-zone host count -1", codedeploy.CreateDeploymentConfigInput{MinimumHealthyHosts: fleet(10), ZonalConfig: &types.ZonalConfig{
			MinimumHealthyHostsPerZone: &types.MinimumHealthyHostsPerZone{Type: types.MinimumHealthyHostsPerZoneTypeHostCount, Value: -1}}}, "InvalidZonalDeploymentConfigurationException"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.DeploymentConfigName == nil {
				in.DeploymentConfigName = aws.String(fmt.Sprintf("bad-%d", i))
			}
			_, err := env.Client.CreateDeploymentConfig(ctx, &in)
			servertest.WantError(t, err, tc.want)
		})
	}
	names := listConfigs(t, env.Client)
	if len(names) != 18 || !slices.Contains(names, "taken") {
		t.Errorf("bad inputs changed state: %v", names)
	}
	got, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("taken")})
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, got.DeploymentConfigInfo, types.ComputePlatformServer, hosts(types.MinimumHealthyHostsTypeHostCount, 1), nil)
}

func TestGetAndDeleteDeploymentConfigErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	get := func(name string) error {
		_, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String(name)})
		return err
	}
	del := func(name string) error {
		_, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String(name)})
		return err
	}
	cases := []struct {
		name string
		call func(string) error
		arg  string
		want string
	}{
		{"get missing", get, "nope", "DeploymentConfigDoesNotExistException"},
		{"get missing built-in name", get, "CodeDeployDefault.Nope", "DeploymentConfigDoesNotExistException"},
		{"get bad name", get, "a/b", "InvalidDeploymentConfigNameException"},
		{"get empty name", get, "", "DeploymentConfigNameRequiredException"},
		{"delete built-in", del, "CodeDeployDefault.OneAtATime", "InvalidOperationException"},
		{"delete lambda built-in", del, "CodeDeployDefault.LambdaAllAtOnce", "InvalidOperationException"},
		{"delete bad name", del, "a b", "InvalidDeploymentConfigNameException"},
		{"delete empty name", del, "", "DeploymentConfigNameRequiredException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servertest.WantError(t, tc.call(tc.arg), tc.want)
		})
	}
	if got := listConfigs(t, env.Client); len(got) != 17 {
		t.Errorf("built-ins after refused deletes: %d %v", len(got), got)
	}
	if err := get("CodeDeployDefault.OneAtATime"); err != nil {
		t.Errorf("OneAtATime after refused delete: %v", err)
	}
}

func TestDeploymentConfigLimit(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	for i := range 50 {
		if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
			DeploymentConfigName: aws.String(fmt.Sprintf("cfg-%02d", i)), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1)}); err != nil {
			t.Fatalf("config %d: %v", i, err)
		}
	}
	_, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("one-too-many"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1)})
	servertest.WantError(t, err, "DeploymentConfigLimitExceededException")
	_, err = env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("one-too-many")})
	servertest.WantError(t, err, "DeploymentConfigDoesNotExistException")

	// The limit is per account and region.
	other := env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1")
	if _, err := other.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("one-too-many"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1)}); err != nil {
		t.Fatalf("other region: %v", err)
	}
	// Deleting one makes room again.
	if _, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String("cfg-00")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("one-too-many"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 1)}); err != nil {
		t.Fatalf("after delete: %v", err)
	}
}

func TestListDeploymentConfigsPaging(t *testing.T) {
	env := servertest.Start(t)
	env.Server.API.PageSize = 5
	ctx := context.Background()
	for _, n := range []string{"aaa", "mmm", "zzz"} {
		if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
			DeploymentConfigName: aws.String(n), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeFleetPercent, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	p := codedeploy.NewListDeploymentConfigsPaginator(env.Client, &codedeploy.ListDeploymentConfigsInput{})
	var all []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.DeploymentConfigsList) > 5 {
			t.Errorf("page of %d", len(out.DeploymentConfigsList))
		}
		all = append(all, out.DeploymentConfigsList...)
	}
	if pages != 4 || len(all) != 20 {
		t.Errorf("%d names in %d pages: %v", len(all), pages, all)
	}
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Errorf("names not sorted or repeated: %v", all)
	}
	for _, n := range []string{"aaa", "mmm", "zzz", "CodeDeployDefault.OneAtATime", "CodeDeployDefault.ECSLinear10PercentEvery3Minutes"} {
		if !slices.Contains(all, n) {
			t.Errorf("%s missing", n)
		}
	}
	// A token of another operation is refused.
	apps, err := env.Client.ListDeploymentConfigs(ctx, &codedeploy.ListDeploymentConfigsInput{})
	if err != nil || apps.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	_, err = env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{NextToken: apps.NextToken})
	servertest.WantError(t, err, "InvalidNextTokenException")
	_, err = env.Client.ListDeploymentConfigs(ctx, &codedeploy.ListDeploymentConfigsInput{NextToken: aws.String("garbage")})
	servertest.WantError(t, err, "InvalidNextTokenException")
}

func TestDeploymentConfigInUse(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("two-at-a-time"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 2)}); err != nil {
		t.Fatal(err)
	}
	createGroup(t, env.Client, "web", "prod", "two-at-a-time")
	_, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String("two-at-a-time")})
	servertest.WantError(t, err, "DeploymentConfigInUseException")
	if _, err := env.Client.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("two-at-a-time")}); err != nil {
		t.Fatalf("config gone after refused delete: %v", err)
	}
	if _, err := env.Client.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{
		ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String("two-at-a-time")}); err != nil {
		t.Fatalf("delete once unused: %v", err)
	}
}
