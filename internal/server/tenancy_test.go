package server_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// tenant is one account's key, with clients for both protocols.
type tenant struct {
	key keys.Created
	s3  *s3.Client
}

func newTenant(t *testing.T, env *servertest.Env, account string, role access.Role) tenant {
	t.Helper()
	k, err := env.Server.Keys.CreateKey(context.Background(), keys.Spec{User: string(role) + "-" + account, Account: account, Grant: access.Grant{Role: role}})
	if err != nil {
		t.Fatal(err)
	}
	return tenant{key: k, s3: s3.New(s3.Options{Region: env.Region, BaseEndpoint: aws.String(env.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(k.AccessKeyID, k.SecretAccessKey, ""), Retryer: aws.NopRetryer{}})}
}

func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestRevisionBucketsBelongToTheirAccount: a bucket is owned by the
// account that created it; every other account, whatever its role, is
// answered AccessDenied (403, S3's XML error) for every object and bucket
// operation, cannot copy out of it, does not see it listed, and cannot
// create it again. A's object is unchanged afterwards.
func TestRevisionBucketsBelongToTheirAccount(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t)
	a := newTenant(t, env, "111111111111", access.Admin)
	bucketWithObject(ctx, t, a.s3, "shop-revs", "web/secret.env", "TOKEN=a")
	for _, role := range []access.Role{access.Admin, access.Deployer, access.ReadOnly} {
		b := newTenant(t, env, "222222222222", role)
		bucket, key := aws.String("shop-revs"), aws.String("web/secret.env")
		taken := "BucketAlreadyExists"
		if role == access.ReadOnly {
			taken = "AccessDenied" // may create no bucket at all
		}
		if _, err := b.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("b-revs")}); role == access.Admin && err != nil {
			t.Fatalf("%s of B creates its own bucket: %v", role, err)
		}
		calls := []struct {
			name string
			call func() error
			want string
		}{
			{"GetObject", func() error { _, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: key}); return err }, "AccessDenied"},
			// HEAD has no body: the SDK names the status.
			{"HeadObject", func() error {
				_, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: key})
				return err
			}, "Forbidden"},
			{"HeadBucket", func() error { _, err := b.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket}); return err }, "Forbidden"},
			{"ListObjectsV2", func() error { _, err := b.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket}); return err }, "AccessDenied"},
			{"PutObject", func() error {
				_, err := b.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: key, Body: strings.NewReader("evil")})
				return err
			}, "AccessDenied"},
			{"DeleteObject", func() error {
				_, err := b.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: key})
				return err
			}, "AccessDenied"},
			{"DeleteObjects", func() error {
				_, err := b.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: bucket, Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: key}}}})
				return err
			}, "AccessDenied"},
			{"CreateMultipartUpload", func() error {
				_, err := b.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
				return err
			}, "AccessDenied"},
			{"DeleteBucket", func() error { _, err := b.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket}); return err }, "AccessDenied"},
			{"CreateBucket", func() error { _, err := b.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); return err }, taken},
		}
		if role != access.ReadOnly {
			calls = append(calls, struct {
				name string
				call func() error
				want string
			}{"CopyObject out of A's bucket", func() error {
				_, err := b.s3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b-revs"), Key: aws.String("stolen"), CopySource: aws.String("shop-revs/web/secret.env")})
				return err
			}, "AccessDenied"})
		}
		for _, c := range calls {
			if got := s3Code(c.call()); got != c.want {
				t.Errorf("%s of B: %s on A's bucket: %s, want %s", role, c.name, got, c.want)
			}
		}
		list, err := b.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, bk := range list.Buckets {
			if aws.ToString(bk.Name) == "shop-revs" {
				t.Errorf("%s of B lists A's bucket", role)
			}
		}
	}
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("shop-revs"), Key: aws.String("web/secret.env")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "TOKEN=a" {
		t.Errorf("A's object after B's attempts: %q", body)
	}
	list, err := a.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(list.Buckets) != 1 || aws.ToString(list.Buckets[0].Name) != "shop-revs" {
		t.Errorf("A's bucket list: %v %v", list, err)
	}
	// The audit entry of A's upload names the bucket's owner.
	entries, err := audit.List(ctx, env.Server.Store, audit.Filter{Operation: "s3:PutObject", Account: "111111111111"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit of A's upload: %v %v", entries, err)
	}
	if !strings.Contains(strings.Join(entries[0].Resources, " "), "bucket-owner:111111111111") {
		t.Errorf("audit entry does not name the bucket owner: %v", entries[0].Resources)
	}
}

// TestRevisionBucketsBeforeOwnersBelongToRoot: buckets stored before
// buckets had owners (no owner file) keep working for the root account
// and are closed to the others.
func TestRevisionBucketsBeforeOwnersBelongToRoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := servertest.Start(t, servertest.WithDataDir(dir))
	root := s3Client(env)
	bucketWithObject(ctx, t, root, "old-revs", "a.zip", "zip")
	env.Stop()
	// As a data directory written by an earlier version.
	if err := os.RemoveAll(filepath.Join(dir, "revisions", "owners")); err != nil {
		t.Fatal(err)
	}
	env = servertest.Start(t, servertest.WithDataDir(dir))
	if _, err := s3Client(env).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("old-revs"), Key: aws.String("a.zip")}); err != nil {
		t.Errorf("root reads its pre-existing bucket: %v", err)
	}
	b := newTenant(t, env, "222222222222", access.Admin)
	if _, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("old-revs"), Key: aws.String("a.zip")}); s3Code(err) != "AccessDenied" {
		t.Errorf("another account reads a pre-existing bucket: %v", err)
	}
}

// TestTriggerTopicOfAnotherAccount: a deployment group may name only SNS
// topics of its own account, on create and on update, even when the
// server delivers to the other account's topic.
func TestTriggerTopicOfAnotherAccount(t *testing.T) {
	ctx := context.Background()
	cfg := filepath.Join(t.TempDir(), "triggers.yml")
	if err := os.WriteFile(cfg, []byte("triggers:\n  - topicArn: arn:aws:sns:us-east-1:111111111111:shop\n    url: http://127.0.0.1:9/hook\n    secret: a-secret\n  - topicArn: arn:aws:sns:us-east-1:222222222222:b\n    url: http://127.0.0.1:9/b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := servertest.Start(t, func(c *server.Config) { c.TriggersConfig = cfg })
	b := newTenant(t, env, "222222222222", access.Admin)
	cd := env.NewClient(b.key.AccessKeyID, b.key.SecretAccessKey, env.Region)
	if _, err := cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("app")}); err != nil {
		t.Fatal(err)
	}
	trig := func(topic string) []cdtypes.TriggerConfig {
		return []cdtypes.TriggerConfig{{TriggerName: aws.String("ops"), TriggerTargetArn: aws.String(topic),
			TriggerEvents: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentStart}}}
	}
	create := &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("g"),
		ServiceRoleArn: aws.String("arn:aws:iam::222222222222:role/cd"), TriggerConfigurations: trig("arn:aws:sns:us-east-1:111111111111:shop")}
	_, err := cd.CreateDeploymentGroup(ctx, create)
	servertest.WantError(t, err, "InvalidTriggerConfigException")
	create.TriggerConfigurations = trig("arn:aws:sns:us-east-1:222222222222:b")
	if _, err := cd.CreateDeploymentGroup(ctx, create); err != nil {
		t.Fatalf("own topic: %v", err)
	}
	_, err = cd.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("app"), CurrentDeploymentGroupName: aws.String("g"),
		TriggerConfigurations: trig("arn:aws:sns:us-east-1:111111111111:shop")})
	servertest.WantError(t, err, "InvalidTriggerConfigException")
	g, err := cd.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("g")})
	if err != nil || aws.ToString(g.DeploymentGroupInfo.TriggerConfigurations[0].TriggerTargetArn) != "arn:aws:sns:us-east-1:222222222222:b" {
		t.Errorf("group after the refused update: %v", err)
	}
}

// TestFleetReadIsScopedToTheAccount: an admin of account B naming account
// A's application and group in GetDeploymentGroupFleet (`cutover fleet`)
// is answered as if they did not exist, and never sees A's instances.
func TestFleetReadIsScopedToTheAccount(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t)
	env.SetupGroup(t, "shop", "prod", "", "role", "web") // account A (the root key's)
	in := map[string]string{"applicationName": "shop", "deploymentGroupName": "prod"}
	var fleet map[string]any
	if err := adminClient(env, env.AccessKey, env.SecretKey, env.Region).Call(ctx, "GetDeploymentGroupFleet", in, &fleet); err != nil {
		t.Fatalf("A reads its fleet: %v", err)
	}
	b := newTenant(t, env, "222222222222", access.Admin)
	var got map[string]any
	err := adminClient(env, b.key.AccessKeyID, b.key.SecretAccessKey, env.Region).Call(ctx, "GetDeploymentGroupFleet", in, &got)
	if err == nil || !strings.Contains(err.Error(), "ApplicationDoesNotExistException") {
		t.Errorf("B reads A's fleet: %v %v, want ApplicationDoesNotExistException", got, err)
	}
}

// TestTargetGroupsBelongToTheirAccount: a deployment group may name only
// target groups of its account (InvalidLoadBalancerInfoException, on
// create and update), and a key limited to applications may name none.
func TestTargetGroupsBelongToTheirAccount(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t, func(c *server.Config) {
		c.TargetGroups = []traffic.TargetGroupConfig{{Name: "shop", Account: "111111111111", Listen: "127.0.0.1:0", Port: 80}}
	})
	bg := func(app, tg string) *codedeploy.CreateDeploymentGroupInput {
		return &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String(app), DeploymentGroupName: aws.String("g"),
			ServiceRoleArn:   aws.String("arn:aws:iam::111111111111:role/cd"),
			DeploymentStyle:  &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeInPlace, DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl},
			LoadBalancerInfo: &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String(tg)}}}}
	}
	client := func(account string, g access.Grant) *codedeploy.Client {
		k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "u" + string(g.Role) + strings.Join(g.Applications, ""), Account: account, Grant: g})
		if err != nil {
			t.Fatal(err)
		}
		return env.NewClient(k.AccessKeyID, k.SecretAccessKey, env.Region)
	}
	a := client("111111111111", access.Grant{Role: access.Admin})
	b := client("222222222222", access.Grant{Role: access.Admin})
	for _, c := range []*codedeploy.Client{a, b} {
		for _, app := range []string{"web", "sandbox"} {
			if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(app)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := b.CreateDeploymentGroup(ctx, bg("web", "shop"))
	servertest.WantError(t, err, "InvalidLoadBalancerInfoException")
	// B's own group cannot be moved onto A's target group either.
	if _, err := b.CreateDeploymentGroup(ctx, bg("web", "b-unconfigured")); err != nil {
		t.Fatalf("B's group naming an unconfigured target group: %v", err)
	}
	_, err = b.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: aws.String("web"), CurrentDeploymentGroupName: aws.String("g"),
		LoadBalancerInfo: &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String("shop")}}}})
	servertest.WantError(t, err, "InvalidLoadBalancerInfoException")
	narrowed := client("111111111111", access.Grant{Role: access.Deployer, Applications: []string{"sandbox"}})
	_, err = narrowed.CreateDeploymentGroup(ctx, bg("sandbox", "shop"))
	servertest.WantError(t, err, "InvalidLoadBalancerInfoException")
	if _, err := a.CreateDeploymentGroup(ctx, bg("web", "shop")); err != nil {
		t.Fatalf("A names its own target group: %v", err)
	}
}
