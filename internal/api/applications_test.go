package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/servertest"
)

func TestApplicationsLifecycle(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()

	out, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{
		ApplicationName: aws.String("web"),
		Tags:            []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ApplicationId == nil || len(*out.ApplicationId) != 36 {
		t.Fatalf("application id %v", out.ApplicationId)
	}
	got, err := c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")})
	if err != nil {
		t.Fatal(err)
	}
	a := got.Application
	if *a.ApplicationName != "web" || a.ComputePlatform != types.ComputePlatformServer || *a.ApplicationId != *out.ApplicationId || a.CreateTime == nil || a.LinkedToGitHub {
		t.Fatalf("application %+v", a)
	}
	arn := "arn:aws:codedeploy:us-east-1:000000000000:application:web"
	tags, err := c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "payments" {
		t.Fatalf("tags %+v %v", tags, err)
	}

	_, err = c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationAlreadyExistsException")

	// Rename carries tags.
	if _, err := c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("web"), NewApplicationName: aws.String("web2")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
	tags, err = c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(strings.Replace(arn, ":web", ":web2", 1))})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags after rename %+v %v", tags, err)
	}
	_, err = c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("nope"), NewApplicationName: aws.String("x")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")

	if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("api")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("api"), NewApplicationName: aws.String("web2")})
	servertest.WantError(t, err, "ApplicationAlreadyExistsException")

	bg, err := c.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: []string{"api", "web2"}})
	if err != nil || len(bg.ApplicationsInfo) != 2 {
		t.Fatalf("batch get %+v %v", bg, err)
	}
	_, err = c.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: []string{"api", "missing"}})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("a", i)
	}
	_, err = c.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: many})
	servertest.WantError(t, err, "BatchLimitExceededException")

	if _, err := c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("web2")}); err != nil {
		t.Fatal(err)
	}
	// Deleting what is gone succeeds (no DoesNotExist error is modelled).
	if _, err := c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("web2")}); err != nil {
		t.Fatal(err)
	}
}

func TestApplicationValidation(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name string
		in   *codedeploy.CreateApplicationInput
		want string
	}{
		{"empty name", &codedeploy.CreateApplicationInput{ApplicationName: aws.String("")}, "ApplicationNameRequiredException"},
		{"bad characters", &codedeploy.CreateApplicationInput{ApplicationName: aws.String("a/b")}, "InvalidApplicationNameException"},
		{"too long", &codedeploy.CreateApplicationInput{ApplicationName: aws.String(strings.Repeat("a", 101))}, "InvalidApplicationNameException"},
		{"bad platform", &codedeploy.CreateApplicationInput{ApplicationName: aws.String("x"), ComputePlatform: "Mainframe"}, "InvalidComputePlatformException"},
		{"bad tag", &codedeploy.CreateApplicationInput{ApplicationName: aws.String("x"), Tags: []types.Tag{{Key: aws.String("")}}}, "InvalidTagsToAddException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client.CreateApplication(ctx, tc.in)
			servertest.WantError(t, err, tc.want)
		})
	}
	list, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	if err != nil || len(list.Applications) != 0 {
		t.Fatalf("bad inputs changed state: %v %v", list.Applications, err)
	}
}

func TestListApplicationsPaging(t *testing.T) {
	env := servertest.Start(t)
	env.Server.API.PageSize = 7
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 23 {
		n := fmt.Sprintf("app-%02d", i)
		want[n] = true
		if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	p := codedeploy.NewListApplicationsPaginator(env.Client, &codedeploy.ListApplicationsInput{})
	pages, seen := 0, 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, n := range out.Applications {
			if !want[n] {
				t.Fatalf("unexpected or repeated %s", n)
			}
			delete(want, n)
			seen++
		}
	}
	if seen != 23 || pages != 4 {
		t.Fatalf("seen %d in %d pages", seen, pages)
	}
	for _, tok := range []string{"garbage", "eyJvIjoiTGlzdEFwcGxpY2F0aW9ucyIsImEiOiJ6In0.AAAAAAAAAAAAAAAAAAAAAA"} {
		_, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{NextToken: aws.String(tok)})
		servertest.WantError(t, err, "InvalidNextTokenException")
	}
}

func TestScopedByAccountAndRegion(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	other := env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1")
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	_, err := other.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
	if _, err := other.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatalf("same name in another region: %v", err)
	}
	k, err := env.Server.Keys.Create(ctx, "bob", "111111111111")
	if err != nil {
		t.Fatal(err)
	}
	bob := env.NewClient(k.AccessKeyID, k.SecretAccessKey, "us-east-1")
	_, err = bob.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationDoesNotExistException")
}
