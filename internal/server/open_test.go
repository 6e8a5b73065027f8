package server_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestOpenMode: with Config.Open (cutover dev), throwaway credentials act
// as the root account's administrator, while the request must still be a
// well-formed SigV4 request and known keys are still verified.
func TestOpenMode(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.Open, c.RootAccount = true, "123456789012" })
	ctx := context.Background()

	testTest := client(env, "test", "test")
	if _, err := testTest.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("pipeline")}); err != nil {
		t.Fatalf("test/test in open mode: %v", err)
	}
	if _, err := client(env, "FOOBARKEY", "anything").RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
		InstanceName: aws.String("host"), IamUserArn: aws.String("arn:aws:iam::123456789012:user/host")}); err != nil {
		t.Fatalf("FOOBARKEY in open mode: %v", err)
	}
	// Same account as the root key.
	got, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("pipeline")})
	if err != nil || aws.ToString(got.Application.ApplicationName) != "pipeline" {
		t.Fatalf("root key does not see the open-mode caller's application: %v", err)
	}
	inst, err := env.Client.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("host")})
	if err != nil || !strings.Contains(aws.ToString(inst.InstanceInfo.InstanceArn), ":123456789012:instance/") {
		t.Fatalf("instance %+v %v", inst, err)
	}

	for _, tc := range []struct {
		name    string
		c       *codedeploy.Client
		code    string
		msgPart string
	}{
		{"known key, wrong secret", client(env, env.AccessKey, "not-the-secret-key-000000000000000000000"), "InvalidSignatureException", "signature we calculated does not match"},
		{"clock 20 minutes slow", client(env, "test", "test", func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{skew: -20 * time.Minute} }),
			"InvalidSignatureException", "Signature expired"},
		{"signed for s3", client(env, "test", "test", func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{service: "s3"} }),
			"InvalidSignatureException", "Credential should be scoped to correct service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("refused")})
			checkAPIError(t, err, tc.code, 403, tc.msgPart)
		})
	}

	// A key the server revoked is refused, not taken for a throwaway one.
	viewer, err := env.Server.Keys.Create(ctx, "viewer", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Server.Keys.Revoke(ctx, viewer.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	_, err = client(env, viewer.AccessKeyID, viewer.SecretAccessKey).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	checkAPIError(t, err, "UnrecognizedClientException", 403, "")

	// Malformed or missing signatures, sent raw: these are what open mode
	// must still refuse.
	stamp := time.Now().UTC()
	for _, tc := range []struct {
		name, auth, want string
	}{
		{"no Authorization", "", "MissingAuthenticationTokenException"},
		{"no Signature", "AWS4-HMAC-SHA256 Credential=test/" + stamp.Format("20060102") + "/us-east-1/codedeploy/aws4_request, SignedHeaders=host;x-amz-date", "IncompleteSignatureException"},
		{"short signature", "AWS4-HMAC-SHA256 Credential=test/" + stamp.Format("20060102") + "/us-east-1/codedeploy/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "IncompleteSignatureException"},
		{"Basic", "Basic dGVzdDp0ZXN0", "IncompleteSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", env.URL+"/", bytes.NewReader([]byte(`{"applicationName":"raw"}`)))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "CodeDeploy_20141006.CreateApplication")
			req.Header.Set("X-Amz-Date", stamp.Format("20060102T150405Z"))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode < 400 || !strings.Contains(buf.String(), tc.want) {
				t.Fatalf("status %d body %s; want %s", resp.StatusCode, buf.String(), tc.want)
			}
		})
	}
	list, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	if err != nil || len(list.Applications) != 1 {
		t.Fatalf("refused requests changed the applications: %v %v", list.Applications, err)
	}
}

// TestRootAccount: the root key belongs to Config.RootAccount, and a bad
// account id is refused at start.
func TestRootAccount(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.RootAccount = "123456789012" })
	ctx := context.Background()
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
		InstanceName: aws.String("h"), IamUserArn: aws.String("arn:aws:iam::123456789012:user/h")}); err != nil {
		t.Fatal(err)
	}
	inst, err := env.Client.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("h")})
	if err != nil || !strings.Contains(aws.ToString(inst.InstanceInfo.InstanceArn), ":123456789012:instance/") {
		t.Fatalf("instance %+v %v", inst, err)
	}
	if _, err := server.New(ctx, server.Config{DataDir: t.TempDir(), RootAccount: "12345"}); err == nil || !strings.Contains(err.Error(), "12 digits") {
		t.Fatalf("bad root account: %v", err)
	}
}
