package deploy_test

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestE2ECreateDeploymentErrors checks CreateDeployment's validation and
// the read errors through the SDK.
func TestE2ECreateDeploymentErrors(t *testing.T) {
	e := newE2E(t)
	release := filepath.Join(t.TempDir(), "release")
	t.Cleanup(func() { touch(t, release) })
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", release)
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	e.env.SetupGroup(t, "app", "other", "CodeDeployDefault.OneAtATime", "role", "web")
	e.env.SetupGroup(t, "app", "empty", "CodeDeployDefault.OneAtATime", "role", "nobody-has-this")
	hooks := recordAll()
	hooks["BeforeInstall"] = scriptBlock
	blocking := e.upload(t, "app/block.tgz", revSpec{hooks: hooks})
	ok := e.upload(t, "app/ok.tgz", revSpec{hooks: recordAll()})
	ctx := context.Background()
	c := e.env.Client

	active := e.deploy(t, "app", "web", blocking)
	waitFile(t, filepath.Join(h.evidence, "blocked"), 15*time.Second)

	in := func(mut func(*codedeploy.CreateDeploymentInput)) *codedeploy.CreateDeploymentInput {
		v := &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("other"), Revision: ok}
		mut(v)
		return v
	}
	tests := []struct {
		name string
		in   *codedeploy.CreateDeploymentInput
		code string
	}{
		{"active deployment", in(func(v *codedeploy.CreateDeploymentInput) { v.DeploymentGroupName = aws.String("web") }), "DeploymentLimitExceededException"},
		{"no group", in(func(v *codedeploy.CreateDeploymentInput) { v.DeploymentGroupName = aws.String("nope") }), "DeploymentGroupDoesNotExistException"},
		{"no application", in(func(v *codedeploy.CreateDeploymentInput) { v.ApplicationName = aws.String("nope") }), "ApplicationDoesNotExistException"},
		{"no group name", in(func(v *codedeploy.CreateDeploymentInput) { v.DeploymentGroupName = nil }), "DeploymentGroupNameRequiredException"},
		{"no revision", in(func(v *codedeploy.CreateDeploymentInput) { v.Revision = nil }), "RevisionRequiredException"},
		{"revision without location", in(func(v *codedeploy.CreateDeploymentInput) {
			v.Revision = &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3}
		}), "InvalidRevisionException"},
		{"description too long", in(func(v *codedeploy.CreateDeploymentInput) { v.Description = aws.String(strings.Repeat("x", 257)) }), "DescriptionTooLongException"},
		{"unknown config", in(func(v *codedeploy.CreateDeploymentInput) { v.DeploymentConfigName = aws.String("NoSuchConfig") }), "DeploymentConfigDoesNotExistException"},
		{"target instances in-place", in(func(v *codedeploy.CreateDeploymentInput) {
			v.TargetInstances = &types.TargetInstances{TagFilters: []types.EC2TagFilter{{Key: aws.String("role"), Value: aws.String("web"), Type: types.EC2TagFilterTypeKeyAndValue}}}
		}), "InvalidTargetInstancesException"},
		{"rollback enabled without events", in(func(v *codedeploy.CreateDeploymentInput) {
			v.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true}
		}), "InvalidAutoRollbackConfigException"},
		{"rollback unknown event", in(func(v *codedeploy.CreateDeploymentInput) {
			v.AutoRollbackConfiguration = &types.AutoRollbackConfiguration{Enabled: true, Events: []types.AutoRollbackEvent{"NOT_AN_EVENT"}}
		}), "InvalidAutoRollbackConfigException"},
		{"bad fileExistsBehavior", in(func(v *codedeploy.CreateDeploymentInput) { v.FileExistsBehavior = "CLOBBER" }), "InvalidFileExistsBehaviorException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateDeployment(ctx, tt.in)
			servertest.WantError(t, err, tt.code)
			if tt.code == "DeploymentLimitExceededException" && !strings.Contains(err.Error(), "'"+active+"'") {
				t.Errorf("message does not name the active deployment '%s': %v", active, err)
			}
		})
	}

	// The limit message in the form clients parse.
	_, err := c.CreateDeployment(ctx, in(func(v *codedeploy.CreateDeploymentInput) { v.DeploymentGroupName = aws.String("web") }))
	if m := regexp.MustCompile(`active Deployment '(d-[A-Z0-9]{9})'`).FindStringSubmatch(err.Error()); m == nil || m[1] != active {
		t.Errorf("limit message %v", err)
	}

	// GetDeployment ids.
	_, err = c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String("not-an-id")})
	servertest.WantError(t, err, "InvalidDeploymentIdException")
	_, err = c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String("d-AAAAAAAAA")})
	servertest.WantError(t, err, "DeploymentDoesNotExistException")

	// NO_INSTANCES is asynchronous.
	empty := e.deploy(t, "app", "empty", ok)
	info := e.waitDone(t, empty, types.DeploymentStatusFailed)
	if info.ErrorInformation == nil || info.ErrorInformation.Code != types.ErrorCodeNoInstances {
		t.Errorf("errorInformation %s", errInfo(info))
	}

	touch(t, release)
	e.waitDone(t, active, types.DeploymentStatusSucceeded)
	other := e.deploy(t, "app", "other", ok)
	e.waitDone(t, other, types.DeploymentStatusSucceeded)

	// ListDeployments filters.
	list := func(in *codedeploy.ListDeploymentsInput) []string {
		t.Helper()
		out, err := c.ListDeployments(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		ids := slices.Clone(out.Deployments)
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	if got := list(&codedeploy.ListDeploymentsInput{}); !slices.Equal(got, sorted(active, empty, other)) {
		t.Errorf("all deployments %v", got)
	}
	if got := list(&codedeploy.ListDeploymentsInput{IncludeOnlyStatuses: []types.DeploymentStatus{types.DeploymentStatusFailed}}); !slices.Equal(got, []string{empty}) {
		t.Errorf("Failed only: %v", got)
	}
	if got := list(&codedeploy.ListDeploymentsInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web")}); !slices.Equal(got, []string{active}) {
		t.Errorf("group web: %v", got)
	}
	if got := list(&codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: aws.Time(time.Now().Add(time.Hour))}}); len(got) != 0 {
		t.Errorf("created in the future: %v", got)
	}
	if got := list(&codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: aws.Time(time.Now().Add(-time.Hour)), End: aws.Time(time.Now().Add(time.Hour))}}); len(got) != 3 {
		t.Errorf("created within the hour: %v", got)
	}
	_, err = c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("app")})
	servertest.WantError(t, err, "DeploymentGroupNameRequiredException")
	_, err = c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{DeploymentGroupName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationNameRequiredException")
	_, err = c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{IncludeOnlyStatuses: []types.DeploymentStatus{"Sleeping"}})
	servertest.WantError(t, err, "InvalidDeploymentStatusException")
	_, err = c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: aws.Time(time.Now()), End: aws.Time(time.Now().Add(-time.Hour))}})
	servertest.WantError(t, err, "InvalidTimeRangeException")
}
