package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// Every call that changes something, allowed or not, is in the audit log
// with who, what, when, from where and how it ended; reads are not.
func TestAuditLog(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	reader, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "auditor", Grant: access.Grant{Role: access.ReadOnly}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")})
	servertest.WantError(t, err, "ApplicationAlreadyExistsException")
	ro := env.NewClient(reader.AccessKeyID, reader.SecretAccessKey, env.Region)
	_, err = ro.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("web")})
	wantDenied(t, err, "read-only DeleteApplication")
	if _, err := ro.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := createKeyCall(ctx, adminClient(env, env.AccessKey, env.SecretKey, env.Region), "made", "deployer"); err != nil {
		t.Fatal(err)
	}

	all, err := audit.List(ctx, env.Server.Store, audit.Filter{Since: start})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ key, op, resource, outcome string }
	var got []row
	for _, e := range all {
		got = append(got, row{e.AccessKeyID, e.Operation, strings.Join(e.Resources, ","), e.Outcome})
		if e.Time.Before(start) || e.Time.After(time.Now()) || e.RequestID == "" || !strings.HasPrefix(e.Source, "127.0.0.1:") ||
			e.Account != keys.DefaultAccount || e.Region != env.Region || !strings.HasPrefix(e.Principal, "arn:aws:iam::000000000000:user/") {
			t.Errorf("entry %+v", e)
		}
	}
	want := []row{
		{env.AccessKey, "codedeploy:CreateApplication", "application:web", audit.Success},
		{env.AccessKey, "codedeploy:CreateApplication", "application:web", "ApplicationAlreadyExistsException"},
		{reader.AccessKeyID, "codedeploy:DeleteApplication", "application:web", "AccessDeniedException"},
		{env.AccessKey, "cutover-admin:CreateAccessKey", "user:made", audit.Success},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log\n got %v\nwant %v", got, want)
	}

	// Filters.
	mine, err := audit.List(ctx, env.Server.Store, audit.Filter{AccessKeyID: reader.AccessKeyID})
	if err != nil || len(mine) != 1 || mine[0].Operation != "codedeploy:DeleteApplication" {
		t.Fatalf("by key: %+v %v", mine, err)
	}
	later, err := audit.List(ctx, env.Server.Store, audit.Filter{Since: time.Now().Add(time.Second)})
	if err != nil || len(later) != 0 {
		t.Fatalf("since the future: %+v %v", later, err)
	}
	page, err := audit.List(ctx, env.Server.Store, audit.Filter{Limit: 2})
	if err != nil || len(page) != 2 {
		t.Fatalf("page: %d %v", len(page), err)
	}
	rest, err := audit.List(ctx, env.Server.Store, audit.Filter{After: page[1].ID})
	if err != nil || len(rest) != 2 || rest[0].ID <= page[1].ID {
		t.Fatalf("next page: %+v %v", rest, err)
	}

	// Pruning drops what is older than the cut, and only that.
	n, err := audit.Prune(ctx, env.Server.Store, all[1].Time.Add(time.Nanosecond))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d %v", n, err)
	}
	left, err := audit.List(ctx, env.Server.Store, audit.Filter{})
	if err != nil || len(left) != 2 || left[0].Operation != "codedeploy:DeleteApplication" {
		t.Fatalf("after prune %+v %v", left, err)
	}
}
