package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// bucketWithObject creates bucket with one object in it, failing the test
// on any error.
func bucketWithObject(ctx context.Context, t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func s3Client(env *servertest.Env) *s3.Client {
	return s3.New(s3.Options{Region: env.Region, BaseEndpoint: aws.String(env.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""), Retryer: aws.NopRetryer{}})
}

// TestRevisionStoreSharesTheListener: S3 and the CodeDeploy API answer on
// one address, objects land in the data directory and survive a restart.
func TestRevisionStoreSharesTheListener(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := servertest.Start(t, servertest.WithDataDir(dir))
	c := s3Client(env)
	bucketWithObject(ctx, t, c, "revs", "a.zip", "zip")
	if _, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("CodeDeploy API next to S3: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "revisions", "buckets", "revs", "a.zip")); err != nil {
		t.Fatalf("object file: %v", err)
	}
	env.Stop()
	env = servertest.Start(t, servertest.WithDataDir(dir))
	out, err := s3Client(env).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip")})
	if err != nil || aws.ToInt64(out.ContentLength) != 3 {
		t.Fatalf("after restart: %v %v", out, err)
	}
}

// TestRevisionStoreDisabled: with the store off (replicas sharing an
// external S3 service) S3 requests are not served and nothing is written.
func TestRevisionStoreDisabled(t *testing.T) {
	dir := t.TempDir()
	env := servertest.Start(t, servertest.WithDataDir(dir), func(c *server.Config) { c.S3Disabled = true })
	_, err := s3Client(env).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("revs")})
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("create bucket with the store off: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "revisions")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("revisions directory with the store off: %v", err)
	}
}

// TestRevisionStoreHostKeyReadsOnly: an agent's key downloads bundles but
// cannot upload, in whichever region it signs for.
func TestRevisionStoreHostKeyReadsOnly(t *testing.T) {
	ctx := context.Background()
	env := servertest.Start(t)
	admin := s3Client(env)
	bucketWithObject(ctx, t, admin, "revs", "a.zip", "zip")
	reg, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region, InstanceName: "web-1",
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{env.Region, "eu-west-1"} {
		host := s3.New(s3.Options{Region: region, BaseEndpoint: aws.String(env.URL), UsePathStyle: true,
			Credentials: reg.CredentialsProvider(), Retryer: aws.NopRetryer{}})
		if _, err := host.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip")}); err != nil {
			t.Errorf("%s: host key download: %v", region, err)
		}
		_, err := host.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip"), Body: strings.NewReader("evil")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
			t.Errorf("%s: host key upload: %v", region, err)
		}
	}
	out, err := admin.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) != 3 {
		t.Errorf("object changed: %d bytes", aws.ToInt64(out.ContentLength))
	}
}
