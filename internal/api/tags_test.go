package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/cutoverhq/cutover/internal/servertest"
)

const (
	appArn    = "arn:aws:codedeploy:us-east-1:000000000000:application:web"
	configArn = "arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:two-at-a-time"
	groupArn  = "arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/prod"
)

// noClientValidation turns off the SDK's own required-member checks so
// that the server's answer to a missing member is what the test sees.
func noClientValidation(o *codedeploy.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		_, err := s.Initialize.Remove("OperationInputValidation")
		return err
	})
}

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// tagList lists every tag of arn (all pages) as key=value pairs in order.
func tagList(t *testing.T, c *codedeploy.Client, arn string) string {
	t.Helper()
	var parts []string
	var next *string
	for {
		out, err := c.ListTagsForResource(context.Background(), &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(arn), NextToken: next})
		if err != nil {
			t.Fatalf("ListTagsForResource %s: %v", arn, err)
		}
		for _, tg := range out.Tags {
			parts = append(parts, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		if next = out.NextToken; next == nil {
			return strings.Join(parts, ",")
		}
	}
}

func setupTaggables(t *testing.T, env *servertest.Env) {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{
		DeploymentConfigName: aws.String("two-at-a-time"), MinimumHealthyHosts: hosts(types.MinimumHealthyHostsTypeHostCount, 2)}); err != nil {
		t.Fatal(err)
	}
}

func TestTagLifecycle(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	ctx := context.Background()
	cases := []struct {
		name  string
		arn   string
		group bool
	}{
		{"application", appArn, false},
		{"custom deployment config", configArn, false},
		{"built-in deployment config", "arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:CodeDeployDefault.OneAtATime", false},
		{"deployment group", groupArn, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.group {
				createGroup(t, env.Client, "web", "prod", "")
			}
			if got := tagList(t, env.Client, tc.arn); got != "" {
				t.Fatalf("new resource has tags %s", got)
			}
			if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(tc.arn),
				Tags: []types.Tag{tag("team", "payments"), tag("env", "prod"), tag("empty", "")}}); err != nil {
				t.Fatal(err)
			}
			if got, want := tagList(t, env.Client, tc.arn), "empty=,env=prod,team=payments"; got != want {
				t.Errorf("after tag: %s, want %s", got, want)
			}
			// An existing key gets the new value; new keys are added.
			if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(tc.arn),
				Tags: []types.Tag{tag("team", "billing"), tag("cost", "42")}}); err != nil {
				t.Fatal(err)
			}
			if got, want := tagList(t, env.Client, tc.arn), "cost=42,empty=,env=prod,team=billing"; got != want {
				t.Errorf("after retag: %s, want %s", got, want)
			}
			// Unknown keys are ignored.
			if _, err := env.Client.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: aws.String(tc.arn),
				TagKeys: []string{"env", "empty", "no-such-key"}}); err != nil {
				t.Fatal(err)
			}
			if got, want := tagList(t, env.Client, tc.arn), "cost=42,team=billing"; got != want {
				t.Errorf("after untag: %s, want %s", got, want)
			}
			if _, err := env.Client.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: aws.String(tc.arn),
				TagKeys: []string{"cost", "team"}}); err != nil {
				t.Fatal(err)
			}
			if got := tagList(t, env.Client, tc.arn); got != "" {
				t.Errorf("after removing all: %s", got)
			}
		})
	}
}

func TestTagsGoWithTheResource(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	ctx := context.Background()
	for _, arn := range []string{appArn, configArn} {
		if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{tag("k", "v")}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Client.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: aws.String("two-at-a-time")}); err != nil {
		t.Fatal(err)
	}
	setupTaggables(t, env)
	for _, arn := range []string{appArn, configArn} {
		if got := tagList(t, env.Client, arn); got != "" {
			t.Errorf("%s re-created with the old tags %s", arn, got)
		}
	}
}

func TestListTagsForResourcePaging(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	env.Server.API.PageSize = 4
	ctx := context.Background()
	var tags []types.Tag
	var want []string
	for i := range 10 {
		tags = append(tags, tag(fmt.Sprintf("k%02d", i), fmt.Sprint(i)))
		want = append(want, fmt.Sprintf("k%02d=%d", i, i))
	}
	if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(appArn), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	first, err := env.Client.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(appArn)})
	if err != nil || len(first.Tags) != 4 || first.NextToken == nil {
		t.Fatalf("first page %+v %v", first, err)
	}
	if got := tagList(t, env.Client, appArn); got != strings.Join(want, ",") {
		t.Errorf("all pages: %s", got)
	}
	_, err = env.Client.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(appArn), NextToken: aws.String("bogus")})
	servertest.WantError(t, err, "InvalidNextTokenException")
}

func TestTagErrors(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	ctx := context.Background()
	if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(appArn), Tags: []types.Tag{tag("keep", "me")}}); err != nil {
		t.Fatal(err)
	}
	one := []types.Tag{tag("k", "v")}
	var fifty []types.Tag
	for i := range 50 {
		fifty = append(fifty, tag(fmt.Sprint("t", i), "v"))
	}
	tagOp := func(arn *string, tags []types.Tag) func() error {
		return func() error {
			_, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: arn, Tags: tags}, noClientValidation)
			return err
		}
	}
	untagOp := func(arn *string, keys []string) func() error {
		return func() error {
			_, err := env.Client.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: arn, TagKeys: keys}, noClientValidation)
			return err
		}
	}
	listOp := func(arn *string) func() error {
		return func() error {
			_, err := env.Client.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: arn}, noClientValidation)
			return err
		}
	}
	s := aws.String
	const (
		s3Arn       = "arn:aws:s3:::my-bucket/app.zip"
		instanceArn = "arn:aws:codedeploy:us-east-1:000000000000:instance/host-1_4IwLNI2Alh"
		lambdaArn   = "arn:aws:lambda:us-east-1:000000000000:function:f"
		deployArn   = "arn:aws:codedeploy:us-east-1:000000000000:deployment:d-ABCDEFGHI"
	)
	cases := []struct {
		name string
		call func() error
		want string
		// knownBug is the wrong code the server answers today (reported).
		knownBug string
	}{
		{"tag without arn", tagOp(nil, one), "ResourceArnRequiredException", ""},
		{"tag empty arn", tagOp(s(""), one), "ResourceArnRequiredException", ""},
		{"untag without arn", untagOp(nil, []string{"k"}), "ResourceArnRequiredException", ""},
		{"list without arn", listOp(nil), "ResourceArnRequiredException", ""},
		{"list empty arn", listOp(s("")), "ResourceArnRequiredException", ""},
		{"tag not an arn", tagOp(s("web"), one), "InvalidArnException", ""},
		{"tag truncated arn", tagOp(s("arn:aws:codedeploy:us-east-1"), one), "InvalidArnException", ""},
		{"tag bad application name in arn", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:application:a b"), one), "InvalidArnException", ""},
		{"tag group arn without group", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web"), one), "InvalidArnException", ""},
		{"list not an arn", listOp(s("nope")), "InvalidArnException", ""},
		{"untag not an arn", untagOp(s("nope"), []string{"k"}), "InvalidArnException", ""},
		{"tag lambda arn", tagOp(s(lambdaArn), one), "ArnNotSupportedException", ""},
		{"tag deployment arn", tagOp(s(deployArn), one), "ArnNotSupportedException", ""},
		{"list lambda arn", listOp(s(lambdaArn)), "ArnNotSupportedException", ""},
		{"tag s3 arn", tagOp(s(s3Arn), one), "ArnNotSupportedException", "InvalidArnException"},
		{"list s3 arn", listOp(s(s3Arn)), "ArnNotSupportedException", "InvalidArnException"},
		{"tag on-premises instance arn", tagOp(s(instanceArn), one), "ArnNotSupportedException", "InvalidArnException"},
		{"untag on-premises instance arn", untagOp(s(instanceArn), []string{"k"}), "ArnNotSupportedException", "InvalidArnException"},
		{"tag missing application", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:application:nope"), one), "ApplicationDoesNotExistException", ""},
		{"untag missing application", untagOp(s("arn:aws:codedeploy:us-east-1:000000000000:application:nope"), []string{"k"}), "ApplicationDoesNotExistException", ""},
		{"tag missing config", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:nope"), one), "DeploymentConfigDoesNotExistException", ""},
		{"untag missing config", untagOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:nope"), []string{"k"}), "DeploymentConfigDoesNotExistException", ""},
		{"tag missing built-in config", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:CodeDeployDefault.Nope"), one), "DeploymentConfigDoesNotExistException", ""},
		{"tag missing group", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/nope"), one), "DeploymentGroupDoesNotExistException", ""},
		{"tag application in another region", tagOp(s("arn:aws:codedeploy:eu-west-1:000000000000:application:web"), one), "ApplicationDoesNotExistException", ""},
		{"tag application in another account", tagOp(s("arn:aws:codedeploy:us-east-1:111111111111:application:web"), one), "ApplicationDoesNotExistException", ""},
		{"untag config in another account", untagOp(s("arn:aws:codedeploy:us-east-1:111111111111:deploymentconfig:two-at-a-time"), []string{"keep"}), "DeploymentConfigDoesNotExistException", ""},
		{"tag with empty tags", tagOp(s(appArn), []types.Tag{}), "TagRequiredException", ""},
		{"untag with empty keys", untagOp(s(appArn), []string{}), "TagRequiredException", ""},
		{"tag without tags", tagOp(s(appArn), nil), "TagRequiredException", "ValidationException"},
		{"untag without keys", untagOp(s(appArn), nil), "TagRequiredException", "ValidationException"},
		{"empty key", tagOp(s(appArn), []types.Tag{tag("", "v")}), "InvalidTagsToAddException", ""},
		{"key 129 characters", tagOp(s(appArn), []types.Tag{tag(strings.Repeat("k", 129), "v")}), "InvalidTagsToAddException", ""},
		{"value 257 characters", tagOp(s(appArn), []types.Tag{tag("k", strings.Repeat("v", 257))}), "InvalidTagsToAddException", ""},
		{"reserved aws: prefix", tagOp(s(appArn), []types.Tag{tag("aws:cloudformation:stack-name", "v")}), "InvalidTagsToAddException", ""},
		{"51 tags at once", tagOp(s(appArn), append(fifty[:50:50], tag("one-more", "v"))), "InvalidTagsToAddException", ""},
		{"50 new tags on top of one", tagOp(s(appArn), fifty), "InvalidTagsToAddException", ""},
		{"list missing application", listOp(s("arn:aws:codedeploy:us-east-1:000000000000:application:nope")), "InvalidArnException", ""},
		{"list missing group", listOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/nope")), "InvalidArnException", ""},
		{"list missing config", listOp(s("arn:aws:codedeploy:us-east-1:000000000000:deploymentconfig:nope")), "InvalidArnException", ""},
		{"list missing application, arn without account", listOp(s("arn:aws:codedeploy:us-east-1::application:nope")), "InvalidArnException", ""},
		{"tag missing application, arn without account", tagOp(s("arn:aws:codedeploy:us-east-1::application:nope"), one), "ApplicationDoesNotExistException", ""},
		{"bad tags on a missing application", tagOp(s("arn:aws:codedeploy:us-east-1:000000000000:application:nope"), []types.Tag{tag("", "")}), "InvalidTagsToAddException", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			servertest.WantError(t, err, tc.want)
		})
	}
	// Nothing above changed any tags.
	if got := tagList(t, env.Client, appArn); got != "keep=me" {
		t.Errorf("application tags after bad inputs: %s", got)
	}
	if got := tagList(t, env.Client, configArn); got != "" {
		t.Errorf("config tags after bad inputs: %s", got)
	}
	// 49 more fit exactly.
	if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(appArn), Tags: fifty[:49]}); err != nil {
		t.Fatalf("reaching 50 tags: %v", err)
	}
}

// TestTagsNotVisibleAcrossScopes checks that the tags of a resource are not
// visible through an ARN of another region or account, nor to a caller of
// another account or region using the resource's own ARN.
func TestTagsNotVisibleAcrossScopes(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	ctx := context.Background()
	if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(appArn), Tags: []types.Tag{tag("secret", "s")}}); err != nil {
		t.Fatal(err)
	}
	k, err := env.Server.Keys.Create(ctx, "bob", "111111111111")
	if err != nil {
		t.Fatal(err)
	}
	bob := env.NewClient(k.AccessKeyID, k.SecretAccessKey, "us-east-1")
	euro := env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1")
	// bob has an application of the same name in his own account.
	if _, err := bob.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web"),
		Tags: []types.Tag{tag("owner", "bob")}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		client *codedeploy.Client
		arn    string
	}{
		{"other account reads our arn", bob, appArn},
		{"other region reads our arn", euro, appArn},
		{"we read an arn of another region", env.Client, strings.Replace(appArn, "us-east-1", "eu-west-1", 1)},
		{"we read bob's arn", env.Client, strings.Replace(appArn, "000000000000", "111111111111", 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.client.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(tc.arn)})
			if err == nil && len(out.Tags) != 0 {
				t.Fatalf("tags of another scope visible: %+v", out.Tags)
			}
			_, err = tc.client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: []types.Tag{tag("x", "y")}})
			servertest.WantError(t, err, "ApplicationDoesNotExistException")
			_, err = tc.client.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: aws.String(tc.arn), TagKeys: []string{"secret", "owner"}})
			servertest.WantError(t, err, "ApplicationDoesNotExistException")
		})
	}
	if got := tagList(t, env.Client, appArn); got != "secret=s" {
		t.Errorf("our tags: %s", got)
	}
	if got := tagList(t, bob, strings.Replace(appArn, "000000000000", "111111111111", 1)); got != "owner=bob" {
		t.Errorf("bob's tags: %s", got)
	}
}

// TestArnWithoutAccount: an ARN with an empty account field (what the
// Terraform provider builds with skip_requesting_account_id) names the
// caller's own account, for every tag operation; the full ARN and the short
// one are the same resource.
func TestArnWithoutAccount(t *testing.T) {
	env := servertest.Start(t)
	setupTaggables(t, env)
	ctx := context.Background()
	k, err := env.Server.Keys.Create(ctx, "bob", "111111111111")
	if err != nil {
		t.Fatal(err)
	}
	bob := env.NewClient(k.AccessKeyID, k.SecretAccessKey, "us-east-1")
	if _, err := bob.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web"), Tags: []types.Tag{tag("owner", "bob")}}); err != nil {
		t.Fatal(err)
	}
	for _, full := range []string{appArn, configArn} {
		short := strings.Replace(full, ":000000000000:", "::", 1)
		t.Run(short, func(t *testing.T) {
			if _, err := env.Client.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String(short), Tags: []types.Tag{tag("env", "prod"), tag("team", "web")}}); err != nil {
				t.Fatal(err)
			}
			if _, err := env.Client.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: aws.String(short), TagKeys: []string{"team"}}); err != nil {
				t.Fatal(err)
			}
			for _, arn := range []string{short, full} {
				if got := tagList(t, env.Client, arn); got != "env=prod" {
					t.Errorf("tags through %s: %q", arn, got)
				}
			}
		})
	}
	// bob's short ARN is his own application, not ours.
	if got := tagList(t, bob, "arn:aws:codedeploy:us-east-1::application:web"); got != "owner=bob" {
		t.Errorf("bob's tags through the short arn: %q", got)
	}
}
