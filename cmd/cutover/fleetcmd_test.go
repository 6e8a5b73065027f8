package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestFleetCommand runs `cutover fleet` against a real server. The
// blue/green case is in internal/deploy (TestFleetAfterBlueGreen); here the
// group's fleet is what its tag filters select.
func TestFleetCommand(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	for _, n := range []string{"web-2", "web-1", "db-1"} {
		if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
			InstanceName: aws.String(n), IamUserArn: aws.String("arn:aws:iam::000000000000:user/" + n)}); err != nil {
			t.Fatal(err)
		}
		role := strings.TrimRight(n, "-12")
		if _, err := env.Client.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{
			InstanceNames: []string{n}, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String(role)}}}); err != nil {
			t.Fatal(err)
		}
	}
	env.SetupGroup(t, "shop", "live", "", "role", "web")
	t.Setenv("AWS_ENDPOINT_URL", env.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", env.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", env.SecretKey)
	t.Setenv("AWS_REGION", env.Region)

	out, err := runOut(t, "fleet", "shop/live")
	if err != nil {
		t.Fatalf("fleet: %v\n%s", err, out)
	}
	for _, want := range []string{"shop/live", "tag filters", "web-1 web-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "db-1") || strings.Contains(out, "RETIRED") {
		t.Errorf("output:\n%s", out)
	}

	// A flag after the group is honoured.
	out, err = runOut(t, "fleet", "shop/live", "--json")
	if err != nil {
		t.Fatalf("fleet --json: %v\n%s", err, out)
	}
	var f deploy.GroupFleet
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if f.Source != deploy.FleetFromTags || strings.Join(f.Instances, " ") != "web-1 web-2" || f.ApplicationName != "shop" || f.DeploymentGroupName != "live" {
		t.Errorf("fleet %+v", f)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "shop/nope"}, "DeploymentGroupDoesNotExistException"},
		{[]string{"fleet", "nope/live"}, "ApplicationDoesNotExistException"},
		{[]string{"fleet", "shop"}, "not APPLICATION/DEPLOYMENT_GROUP"},
		{[]string{"fleet"}, "needs one APPLICATION/DEPLOYMENT_GROUP"},
	} {
		out, err := runOut(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
