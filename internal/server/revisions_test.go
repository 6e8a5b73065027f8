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

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

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
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip"), Body: strings.NewReader("zip")}); err != nil {
		t.Fatal(err)
	}
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
