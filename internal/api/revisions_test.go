package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/api"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

func s3Rev(bucket, key string) *types.RevisionLocation {
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{Bucket: aws.String(bucket), Key: aws.String(key), BundleType: types.BundleTypeZip}}
}

func gitHubRev(repo, commit string) *types.RevisionLocation {
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeGitHub, GitHubLocation: &types.GitHubLocation{Repository: aws.String(repo), CommitId: aws.String(commit)}}
}

func rawRev(content string, sum *string) *types.RevisionLocation {
	//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeString, String_: &types.RawString{Content: aws.String(content), Sha256: sum}}
}

func appSpecRev(content string) *types.RevisionLocation {
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent, AppSpecContent: &types.AppSpecContent{Content: aws.String(content)}}
}

// stepClock makes the server's clock advance a second per reading, so
// registration order is visible in the times.
func stepClock(env *servertest.Env) {
	var n atomic.Int64
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env.Server.API.Now = func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }
}

func registerRev(t *testing.T, c *codedeploy.Client, app string, r *types.RevisionLocation) {
	t.Helper()
	if _, err := c.RegisterApplicationRevision(context.Background(), &codedeploy.RegisterApplicationRevisionInput{ApplicationName: aws.String(app), Revision: r}); err != nil {
		t.Fatal(err)
	}
}

func listRevs(t *testing.T, c *codedeploy.Client, in *codedeploy.ListApplicationRevisionsInput) string {
	t.Helper()
	var got []string
	p := codedeploy.NewListApplicationRevisionsPaginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Revisions {
			switch r.RevisionType {
			case types.RevisionLocationTypeS3:
				got = append(got, *r.S3Location.Bucket+"/"+*r.S3Location.Key)
			case types.RevisionLocationTypeGitHub:
				got = append(got, *r.GitHubLocation.Repository)
			default:
				got = append(got, string(r.RevisionType))
			}
		}
	}
	return strings.Join(got, ",")
}

func TestRegisterApplicationRevision(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	commit := strings.Repeat("ab", 20)
	content := "version: 0.0\nos: linux\n"
	sum := sha256.Sum256([]byte(content))
	good := []*types.RevisionLocation{
		s3Rev("bucket", "web/v1.zip"),
		gitHubRev("acme/web", commit),
		rawRev(content, aws.String(hex.EncodeToString(sum[:]))),
		appSpecRev(content),
	}
	for _, r := range good {
		if _, err := c.RegisterApplicationRevision(ctx, &codedeploy.RegisterApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: r, Description: aws.String("first")}); err != nil {
			t.Fatalf("%s: %v", r.RevisionType, err)
		}
		out, err := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: r})
		if err != nil {
			t.Fatalf("get %s: %v", r.RevisionType, err)
		}
		if *out.ApplicationName != "web" || out.Revision.RevisionType != r.RevisionType || *out.RevisionInfo.Description != "first" || out.RevisionInfo.RegisterTime == nil || out.RevisionInfo.FirstUsedTime != nil {
			t.Fatalf("get %s: %+v %+v", r.RevisionType, out.Revision, out.RevisionInfo)
		}
	}
	// Registering again keeps the registration time and takes the new
	// description; the commit ID is matched case-insensitively.
	before, _ := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: good[1]})
	if _, err := c.RegisterApplicationRevision(ctx, &codedeploy.RegisterApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: gitHubRev("acme/web", strings.ToUpper(commit)), Description: aws.String("second")}); err != nil {
		t.Fatal(err)
	}
	after, err := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: good[1]})
	if err != nil || *after.RevisionInfo.Description != "second" || !after.RevisionInfo.RegisterTime.Equal(*before.RevisionInfo.RegisterTime) {
		t.Fatalf("re-register %+v %v", after, err)
	}

	bad := func(edit func(*types.RevisionLocation)) *types.RevisionLocation {
		r := s3Rev("bucket", "key")
		edit(r)
		return r
	}
	cases := []struct {
		name string
		app  string
		rev  *types.RevisionLocation
		desc *string
		want string
	}{
		{"empty app name", "", s3Rev("b", "k"), nil, "ApplicationNameRequiredException"},
		{"bad app name", "a b", s3Rev("b", "k"), nil, "InvalidApplicationNameException"},
		{"missing app", "nope", s3Rev("b", "k"), nil, "ApplicationDoesNotExistException"},
		{"empty revision", "web", &types.RevisionLocation{}, nil, "RevisionRequiredException"},
		{"description too long", "web", s3Rev("b", "k"), aws.String(strings.Repeat("d", 257)), "DescriptionTooLongException"},
		{"S3 without bucket", "web", bad(func(r *types.RevisionLocation) { r.S3Location.Bucket = nil }), nil, "InvalidRevisionException"},
		{"S3 without key", "web", bad(func(r *types.RevisionLocation) { r.S3Location.Key = aws.String("") }), nil, "InvalidRevisionException"},
		{"S3 without bundle type", "web", bad(func(r *types.RevisionLocation) { r.S3Location.BundleType = "" }), nil, "InvalidRevisionException"},
		{"S3 with bad bundle type", "web", bad(func(r *types.RevisionLocation) { r.S3Location.BundleType = "rar" }), nil, "InvalidRevisionException"},
		{"S3 type with GitHub location", "web", &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, GitHubLocation: &types.GitHubLocation{Repository: aws.String("a/b"), CommitId: aws.String(commit)}}, nil, "InvalidRevisionException"},
		{"bad revision type", "web", bad(func(r *types.RevisionLocation) { r.RevisionType = "FTP" }), nil, "InvalidRevisionException"},
		{"GitHub repo without owner", "web", gitHubRev("web", commit), nil, "InvalidRevisionException"},
		{"GitHub short commit", "web", gitHubRev("acme/web", "abc123"), nil, "InvalidRevisionException"},
		{"String without content", "web", rawRev("", nil), nil, "InvalidRevisionException"},
		{"String with wrong sha256", "web", rawRev(content, aws.String(strings.Repeat("0", 64))), nil, "InvalidRevisionException"},
		{"AppSpecContent without content", "web", appSpecRev(""), nil, "InvalidRevisionException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RegisterApplicationRevision(ctx, &codedeploy.RegisterApplicationRevisionInput{ApplicationName: aws.String(tc.app), Revision: tc.rev, Description: tc.desc})
			servertest.WantError(t, err, tc.want)
		})
	}
	if got := listRevs(t, c, &codedeploy.ListApplicationRevisionsInput{ApplicationName: aws.String("web")}); strings.Count(got, ",") != 3 {
		t.Fatalf("bad registrations changed state: %s", got)
	}
}

func TestGetApplicationRevision(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	versioned := s3Rev("b", "k")
	versioned.S3Location.Version = aws.String("v7")
	versioned.S3Location.ETag = aws.String("etag7")
	registerRev(t, c, "web", versioned)
	get := func(app string, r *types.RevisionLocation) error {
		_, err := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String(app), Revision: r})
		return err
	}
	if err := get("web", versioned); err != nil {
		t.Fatal(err)
	}
	otherVersion := s3Rev("b", "k")
	otherVersion.S3Location.Version = aws.String("v8")
	otherVersion.S3Location.ETag = aws.String("etag7")
	tarBundle := s3Rev("b", "k")
	tarBundle.S3Location.BundleType = types.BundleTypeTar
	for _, tc := range []struct {
		name string
		app  string
		rev  *types.RevisionLocation
		want string
	}{
		{"identity includes version and eTag", "web", s3Rev("b", "k"), "RevisionDoesNotExistException"},
		{"other version", "web", otherVersion, "RevisionDoesNotExistException"},
		{"other bundle type", "web", tarBundle, "RevisionDoesNotExistException"},
		{"missing app", "nope", versioned, "ApplicationDoesNotExistException"},
		{"empty revision", "web", &types.RevisionLocation{}, "RevisionRequiredException"},
		{"malformed", "web", gitHubRev("x", "y"), "InvalidRevisionException"},
		{"empty app name", "", versioned, "ApplicationNameRequiredException"},
	} {
		t.Run(tc.name, func(t *testing.T) { servertest.WantError(t, get(tc.app, tc.rev), tc.want) })
	}
}

func TestBatchGetApplicationRevisions(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	registerRev(t, c, "web", s3Rev("b", "one"))
	registerRev(t, c, "web", s3Rev("b", "two"))
	out, err := c.BatchGetApplicationRevisions(ctx, &codedeploy.BatchGetApplicationRevisionsInput{ApplicationName: aws.String("web"),
		Revisions: []types.RevisionLocation{*s3Rev("b", "two"), *s3Rev("b", "missing"), *s3Rev("b", "one")}})
	if err != nil {
		t.Fatal(err)
	}
	if *out.ApplicationName != "web" || len(out.Revisions) != 2 || *out.Revisions[0].RevisionLocation.S3Location.Key != "two" || out.Revisions[1].GenericRevisionInfo.RegisterTime == nil || out.ErrorMessage == nil {
		t.Fatalf("batch %+v", out)
	}
	many := make([]types.RevisionLocation, 26)
	for i := range many {
		many[i] = *s3Rev("b", fmt.Sprint(i))
	}
	for _, tc := range []struct {
		name string
		app  string
		revs []types.RevisionLocation
		want string
	}{
		{"too many", "web", many, "BatchLimitExceededException"},
		{"none", "web", []types.RevisionLocation{}, "RevisionRequiredException"},
		{"malformed", "web", []types.RevisionLocation{*gitHubRev("x", "y")}, "InvalidRevisionException"},
		{"missing app", "nope", []types.RevisionLocation{*s3Rev("b", "one")}, "ApplicationDoesNotExistException"},
		{"bad app name", "a:b", []types.RevisionLocation{*s3Rev("b", "one")}, "InvalidApplicationNameException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.BatchGetApplicationRevisions(ctx, &codedeploy.BatchGetApplicationRevisionsInput{ApplicationName: aws.String(tc.app), Revisions: tc.revs})
			servertest.WantError(t, err, tc.want)
		})
	}
	out, err = c.BatchGetApplicationRevisions(ctx, &codedeploy.BatchGetApplicationRevisionsInput{ApplicationName: aws.String("web"), Revisions: many[:25]})
	if err != nil || len(out.Revisions) != 0 {
		t.Fatalf("batch of 25: %+v %v", out, err)
	}
}

// touch runs TouchRevision as the deployment runner does and, when group is
// given, makes the revision that group's target revision.
func touch(t *testing.T, env *servertest.Env, r *cd.RevisionLocation, group string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	err := env.Server.API.Store.Update(ctx, func(tx store.Tx) error {
		if err := api.TouchRevision(ctx, tx, "000000000000", "us-east-1", "web", r, now, group); err != nil {
			return err
		}
		g, err := api.LoadGroup(ctx, tx, "000000000000", "us-east-1", "web", group)
		if err != nil {
			return err
		}
		g.TargetRevision = r
		return api.SaveGroup(ctx, tx, "000000000000", "us-east-1", g)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestListApplicationRevisions(t *testing.T) {
	env := servertest.Start(t)
	stepClock(env)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", "prod")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", "staging")); err != nil {
		t.Fatal(err)
	}
	// Registered in this order, one second apart.
	registerRev(t, c, "web", s3Rev("b1", "app/v2.zip"))
	registerRev(t, c, "web", s3Rev("b1", "app/v1.zip"))
	registerRev(t, c, "web", s3Rev("b2", "app/v1.zip"))
	registerRev(t, c, "web", gitHubRev("acme/web", strings.Repeat("0", 40)))
	registerRev(t, c, "web", s3Rev("b1", "other/v1.zip"))

	// A deployment of a new revision registers it; prod ends on it and
	// staging on b1/app/v1.zip.
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	v3 := &cd.RevisionLocation{RevisionType: aws.String("S3"), S3Location: &cd.S3Location{Bucket: aws.String("b1"), Key: aws.String("app/v3.zip"), BundleType: aws.String("zip")}}
	v1 := &cd.RevisionLocation{RevisionType: aws.String("S3"), S3Location: &cd.S3Location{Bucket: aws.String("b1"), Key: aws.String("app/v1.zip"), BundleType: aws.String("zip")}}
	touch(t, env, v1, "staging", base)
	touch(t, env, v3, "prod", base.Add(time.Hour))
	touch(t, env, v1, "staging", base.Add(2*time.Hour))

	got, err := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: s3Rev("b1", "app/v1.zip")})
	if err != nil {
		t.Fatal(err)
	}
	if i := got.RevisionInfo; !i.FirstUsedTime.Equal(base) || !i.LastUsedTime.Equal(base.Add(2*time.Hour)) || strings.Join(i.DeploymentGroups, ",") != "staging" {
		t.Fatalf("used revision %+v", i)
	}
	got, err = c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: s3Rev("b1", "app/v3.zip")})
	if err != nil || !got.RevisionInfo.RegisterTime.Equal(base.Add(time.Hour)) || strings.Join(got.RevisionInfo.DeploymentGroups, ",") != "prod" {
		t.Fatalf("auto-registered revision %+v %v", got, err)
	}

	env.Server.API.PageSize = 2
	in := func(edit func(*codedeploy.ListApplicationRevisionsInput)) *codedeploy.ListApplicationRevisionsInput {
		l := &codedeploy.ListApplicationRevisionsInput{ApplicationName: aws.String("web")}
		edit(l)
		return l
	}
	cases := []struct {
		name string
		in   *codedeploy.ListApplicationRevisionsInput
		want string
	}{
		{"default is registration order", in(func(*codedeploy.ListApplicationRevisionsInput) {}), "b1/app/v2.zip,b1/app/v1.zip,b2/app/v1.zip,acme/web,b1/other/v1.zip,b1/app/v3.zip"},
		{"register time descending", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.SortBy, l.SortOrder = types.ApplicationRevisionSortByRegisterTime, types.SortOrderDescending
		}), "b1/app/v3.zip,b1/other/v1.zip,acme/web,b2/app/v1.zip,b1/app/v1.zip,b1/app/v2.zip"},
		{"first used, never used first", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.SortBy = types.ApplicationRevisionSortByFirstUsedTime
			l.Deployed = types.ListStateFilterActionInclude
		}), "b1/app/v1.zip,b1/app/v3.zip"},
		{"last used descending", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.SortBy, l.SortOrder = types.ApplicationRevisionSortByLastUsedTime, types.SortOrderDescending
			l.Deployed = types.ListStateFilterActionInclude
		}), "b1/app/v1.zip,b1/app/v3.zip"},
		{"not deployed", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.Deployed = types.ListStateFilterActionExclude }), "b1/app/v2.zip,b2/app/v1.zip,acme/web,b1/other/v1.zip"},
		{"deployed ignored", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.Deployed = types.ListStateFilterActionIgnore
			l.S3Bucket = aws.String("b2")
		}), "b2/app/v1.zip"},
		{"bucket", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.S3Bucket = aws.String("b1") }), "b1/app/v2.zip,b1/app/v1.zip,b1/other/v1.zip,b1/app/v3.zip"},
		{"bucket and prefix", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.S3Bucket, l.S3KeyPrefix = aws.String("b1"), aws.String("app/")
		}), "b1/app/v2.zip,b1/app/v1.zip,b1/app/v3.zip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := listRevs(t, c, tc.in); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}

	list := func(l *codedeploy.ListApplicationRevisionsInput) error {
		_, err := c.ListApplicationRevisions(ctx, l)
		return err
	}
	// A token from one sort order is refused in another.
	first, err := c.ListApplicationRevisions(ctx, in(func(*codedeploy.ListApplicationRevisionsInput) {}))
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page %+v %v", first, err)
	}
	for _, tc := range []struct {
		name string
		in   *codedeploy.ListApplicationRevisionsInput
		want string
	}{
		{"prefix without bucket", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.S3KeyPrefix = aws.String("app/") }), "BucketNameFilterRequiredException"},
		{"empty bucket", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.S3Bucket = aws.String("") }), "InvalidBucketNameFilterException"},
		{"bucket with slash", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.S3Bucket = aws.String("b1/app") }), "InvalidBucketNameFilterException"},
		{"prefix too long", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.S3Bucket, l.S3KeyPrefix = aws.String("b1"), aws.String(strings.Repeat("k", 1025))
		}), "InvalidKeyPrefixFilterException"},
		{"bad sort by", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.SortBy = "size" }), "InvalidSortByException"},
		{"bad sort order", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.SortOrder = "up" }), "InvalidSortOrderException"},
		{"bad deployed filter", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.Deployed = "maybe" }), "InvalidDeployedStateFilterException"},
		{"token of another order", in(func(l *codedeploy.ListApplicationRevisionsInput) {
			l.SortOrder, l.NextToken = types.SortOrderDescending, first.NextToken
		}), "InvalidNextTokenException"},
		{"missing app", in(func(l *codedeploy.ListApplicationRevisionsInput) { l.ApplicationName = aws.String("nope") }), "ApplicationDoesNotExistException"},
	} {
		t.Run(tc.name, func(t *testing.T) { servertest.WantError(t, list(tc.in), tc.want) })
	}
}

func TestRevisionKey(t *testing.T) {
	s3 := func(edit func(*cd.S3Location)) *cd.RevisionLocation {
		l := &cd.S3Location{Bucket: aws.String("b"), Key: aws.String("k"), BundleType: aws.String("zip")}
		edit(l)
		return &cd.RevisionLocation{RevisionType: aws.String("S3"), S3Location: l}
	}
	base := api.RevisionKey(s3(func(*cd.S3Location) {}))
	if base != api.RevisionKey(s3(func(*cd.S3Location) {})) {
		t.Fatal("key not stable")
	}
	if inferred := api.RevisionKey(&cd.RevisionLocation{S3Location: s3(func(*cd.S3Location) {}).S3Location}); inferred != base {
		t.Fatal("a missing revisionType is not inferred")
	}
	for name, r := range map[string]*cd.RevisionLocation{
		"bucket":  s3(func(l *cd.S3Location) { l.Bucket = aws.String("c") }),
		"key":     s3(func(l *cd.S3Location) { l.Key = aws.String("k2") }),
		"bundle":  s3(func(l *cd.S3Location) { l.BundleType = aws.String("tar") }),
		"version": s3(func(l *cd.S3Location) { l.Version = aws.String("1") }),
		"etag":    s3(func(l *cd.S3Location) { l.ETag = aws.String("e") }),
		// Field boundaries count: "b"+"k/x" is not "b/k"+"x".
		"shifted": s3(func(l *cd.S3Location) { l.Bucket, l.Key = aws.String("bk"), aws.String("") }),
	} {
		if api.RevisionKey(r) == base {
			t.Errorf("%s: same key as the base location", name)
		}
	}
}

func TestDeleteApplicationCascades(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	in := groupInput("web", "prod")
	in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
	if _, err := c.CreateDeploymentGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	registerRev(t, c, "web", s3Rev("b", "k"))
	register(t, c, "host1")
	if _, err := c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	createApp(t, c, "web", "")
	_, err := c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("prod")})
	servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")
	_, err = c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: s3Rev("b", "k")})
	servertest.WantError(t, err, "RevisionDoesNotExistException")
	// The deleted group's ARN names nothing; a new group of the same name
	// starts without the old one's tags.
	_, err = c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:web/prod")})
	servertest.WantError(t, err, "InvalidArnException")
	in.Tags = nil
	if _, err := c.CreateDeploymentGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	if tags := groupTags(t, c, "web", "prod"); len(tags) != 0 {
		t.Fatalf("group tags survive %+v", tags)
	}
	// On-premises registrations are not the application's.
	if i := getInstance(t, c, "host1"); i.DeregisterTime != nil {
		t.Fatalf("instance touched %+v", i)
	}
}

func TestRenameApplicationCarriesGroupsAndRevisions(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	in := groupInput("web", "prod")
	in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
	if _, err := c.CreateDeploymentGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	registerRev(t, c, "web", s3Rev("b", "k"))
	if _, err := c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("web"), NewApplicationName: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	if g := getGroup(t, c, "site", "prod"); *g.ApplicationName != "site" {
		t.Fatalf("group %+v", g)
	}
	if tags := groupTags(t, c, "site", "prod"); len(tags) != 1 {
		t.Fatalf("tags %+v", tags)
	}
	if _, err := c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("site"), Revision: s3Rev("b", "k")}); err != nil {
		t.Fatal(err)
	}
}

func TestResourcesScopedByAccountAndRegion(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", "prod")); err != nil {
		t.Fatal(err)
	}
	registerRev(t, c, "web", s3Rev("b", "k"))
	register(t, c, "host1", "env=prod")

	k, err := env.Server.Keys.Create(ctx, "bob", "111111111111")
	if err != nil {
		t.Fatal(err)
	}
	// An instance's IAM ARN must be of the caller's account.
	arns := map[string]string{"region": userArn("host1"), "account": "arn:aws:iam::111111111111:user/hosts/host1"}
	for name, other := range map[string]*codedeploy.Client{
		"region":  env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1"),
		"account": env.NewClient(k.AccessKeyID, k.SecretAccessKey, "us-east-1"),
	} {
		t.Run(name, func(t *testing.T) {
			createApp(t, other, "web", "")
			_, err := other.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("prod")})
			servertest.WantError(t, err, "DeploymentGroupDoesNotExistException")
			_, err = other.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: aws.String("web"), Revision: s3Rev("b", "k")})
			servertest.WantError(t, err, "RevisionDoesNotExistException")
			_, err = other.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("host1")})
			servertest.WantError(t, err, "InstanceNotRegisteredException")
			list, err := other.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
			if err != nil || len(list.InstanceNames) != 0 {
				t.Fatalf("instances leak: %v %v", list.InstanceNames, err)
			}
			// The same names and ARNs are free there.
			if _, err := other.CreateDeploymentGroup(ctx, groupInput("web", "prod")); err != nil {
				t.Fatal(err)
			}
			if _, err := other.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("host1"), IamUserArn: aws.String(arns[name])}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
