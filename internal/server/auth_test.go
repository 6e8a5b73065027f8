package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// offsetSigner is the SDK's own SigV4 signer with a different clock or
// signing name, plugged in through codedeploy.Options.HTTPSignerV4.
type offsetSigner struct {
	skew    time.Duration
	service string // "" keeps the SDK's
}

func (s offsetSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, t time.Time, opts ...func(*v4.SignerOptions)) error {
	if s.service != "" {
		service = s.service
	}
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, t.Add(s.skew), opts...)
}

// tamperTransport rewrites the body of requests after the SDK signed them.
type tamperTransport struct{ from, to string }

func (tt tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body.Close()
	b = bytes.ReplaceAll(b, []byte(tt.from), []byte(tt.to))
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return http.DefaultTransport.RoundTrip(r)
}

func client(env *servertest.Env, key, secret string, opts ...func(*codedeploy.Options)) *codedeploy.Client {
	o := codedeploy.Options{
		Region:       env.Region,
		BaseEndpoint: aws.String(env.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer:      aws.NopRetryer{},
	}
	for _, f := range opts {
		f(&o)
	}
	return codedeploy.New(o)
}

// checkAPIError checks the code and HTTP status of err and that the answer
// carried a request ID.
func checkAPIError(t *testing.T, err error, code string, status int, msgPart string) {
	t.Helper()
	servertest.WantError(t, err, code)
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("no HTTP response error in %v", err)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("status %d, want %d", re.HTTPStatusCode(), status)
	}
	if re.ServiceRequestID() == "" {
		t.Error("no x-amzn-RequestId")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && !strings.Contains(ae.ErrorMessage(), msgPart) {
		t.Errorf("message %q does not contain %q", ae.ErrorMessage(), msgPart)
	}
}

func TestSigV4Failures(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	revoked, err := env.Server.Keys.Create(ctx, "leaver", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(env, revoked.AccessKeyID, revoked.SecretAccessKey).ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("key before revoke: %v", err)
	}
	if err := env.Server.Keys.Revoke(ctx, revoked.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		c       *codedeploy.Client
		code    string
		status  int
		msgPart string
	}{
		{"bad secret", client(env, env.AccessKey, "not-the-secret-key-000000000000000000000"), "InvalidSignatureException", 403, "signature we calculated does not match"},
		{"unknown key", client(env, "AKIAUNKNOWNKEY000001", env.SecretKey), "UnrecognizedClientException", 403, "security token included in the request is invalid"},
		{"revoked key", client(env, revoked.AccessKeyID, revoked.SecretAccessKey), "UnrecognizedClientException", 403, ""},
		{"clock 20 minutes slow", client(env, env.AccessKey, env.SecretKey, func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{skew: -20 * time.Minute} }),
			"InvalidSignatureException", 403, "Signature expired"},
		{"clock 20 minutes fast", client(env, env.AccessKey, env.SecretKey, func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{skew: 20 * time.Minute} }),
			"InvalidSignatureException", 403, "Signature not yet current"},
		{"signed for s3", client(env, env.AccessKey, env.SecretKey, func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{service: "s3"} }),
			"InvalidSignatureException", 403, "Credential should be scoped to correct service: 'codedeploy'"},
		{"body tampered after signing", client(env, env.AccessKey, env.SecretKey, func(o *codedeploy.Options) {
			o.HTTPClient = &http.Client{Transport: tamperTransport{from: `"victim"`, to: `"hacker"`}}
		}), "InvalidSignatureException", 403, "signature we calculated does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("victim")})
			checkAPIError(t, err, tc.code, tc.status, tc.msgPart)
		})
	}
	// None of the refused requests did anything.
	list, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	if err != nil || len(list.Applications) != 0 {
		t.Fatalf("refused requests created %v (%v)", list.Applications, err)
	}
	// Within the 15 minute window a skewed clock is accepted.
	skewed := client(env, env.AccessKey, env.SecretKey, func(o *codedeploy.Options) { o.HTTPSignerV4 = offsetSigner{skew: -10 * time.Minute} })
	if _, err := skewed.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Errorf("10 minutes of skew: %v", err)
	}
}

// raw sends a request built by hand, signed with the SDK's v4 signer when
// sign is set, and returns the status, the x-amzn-RequestId and the body.
func raw(t *testing.T, env *servertest.Env, method, target string, body []byte, sign bool) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if sign {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "codedeploy", env.Region, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("response body is not JSON: %q", b)
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-Requestid"), doc
}

func TestProtocolErrors(t *testing.T) {
	env := servertest.Start(t)
	const cd = "CodeDeploy_20141006."
	cases := []struct {
		name   string
		method string
		target string
		body   string
		sign   bool
		status int
		code   string
	}{
		{"missing authorization", "POST", cd + "ListApplications", "{}", false, 403, "MissingAuthenticationTokenException"},
		{"unknown operation", "POST", cd + "FrobnicateWidgets", "{}", true, 400, "UnknownOperationException"},
		{"unknown target prefix", "POST", "DynamoDB_20120810.ListTables", "{}", true, 400, "UnknownOperationException"},
		{"no target", "POST", "", "{}", true, 400, "UnknownOperationException"},
		{"target without operation", "POST", cd, "{}", true, 400, "UnknownOperationException"},
		{"malformed JSON", "POST", cd + "ListApplications", `{"nextToken":`, true, 400, "SerializationException"},
		{"JSON array body", "POST", cd + "GetApplication", `[]`, true, 400, "SerializationException"},
		{"wrong member type", "POST", cd + "GetApplication", `{"applicationName":42}`, true, 400, "SerializationException"},
		{"GET /", "GET", "", "", false, 400, "UnknownOperationException"},
		{"valid", "POST", cd + "ListApplications", "{}", true, 200, ""},
		{"valid without body", "POST", cd + "ListApplications", "", true, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, reqID, doc := raw(t, env, tc.method, tc.target, []byte(tc.body), tc.sign)
			if status != tc.status {
				t.Errorf("status %d, want %d (%v)", status, tc.status, doc)
			}
			if len(reqID) != 36 {
				t.Errorf("x-amzn-RequestId %q", reqID)
			}
			if tc.code == "" {
				if _, ok := doc["__type"]; ok {
					t.Errorf("error on success: %v", doc)
				}
				return
			}
			if doc["__type"] != tc.code {
				t.Errorf("__type %v, want %s (%v)", doc["__type"], tc.code, doc)
			}
			if msg, _ := doc["message"].(string); msg == "" {
				t.Errorf("no message: %v", doc)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	env := servertest.Start(t)
	resp, err := http.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("healthz %d %q", resp.StatusCode, b)
	}
}

func TestKeysCreatedWhileRunning(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	k, err := env.Server.Keys.Create(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	alice := client(env, k.AccessKeyID, k.SecretAccessKey)
	if _, err := alice.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("from-alice")}); err != nil {
		t.Fatalf("new key: %v", err)
	}
	// The same account sees it.
	if _, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("from-alice")}); err != nil {
		t.Fatal(err)
	}

	// A key made through the admin API works at once too.
	status, _, doc := raw(t, env, "POST", "CutoverAdmin_20261122.CreateAccessKey", []byte(`{"UserName":"carol","Role":"deployer"}`), true)
	if status != 200 {
		t.Fatalf("CreateAccessKey: %d %v", status, doc)
	}
	id, _ := doc["AccessKeyId"].(string)
	secret, _ := doc["SecretAccessKey"].(string)
	if id == "" || secret == "" {
		t.Fatalf("CreateAccessKey answered %v", doc)
	}
	carol := client(env, id, secret)
	if _, err := carol.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("from-alice")}); err != nil {
		t.Fatalf("admin-created key: %v", err)
	}
	// Revocation is immediate as well.
	if err := env.Server.Keys.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = carol.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("from-alice")})
	checkAPIError(t, err, "UnrecognizedClientException", 403, "")
}

func TestInstanceKeyRefusedForCodeDeploy(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "host-1", Grant: access.Grant{Role: access.Host, Region: env.Region, Instance: "host-1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
		InstanceName: aws.String("host-1"), IamUserArn: aws.String(k.Arn)})
	if err != nil {
		t.Fatal(err)
	}
	host := client(env, k.AccessKeyID, k.SecretAccessKey)
	calls := []struct {
		name string
		call func() error
	}{
		{"ListApplications", func() error { _, err := host.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); return err }},
		{"CreateApplication", func() error {
			_, err := host.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("evil")})
			return err
		}},
		{"GetOnPremisesInstance", func() error {
			_, err := host.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("host-1")})
			return err
		}},
		{"DeregisterOnPremisesInstance", func() error {
			_, err := host.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("host-1")})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			checkAPIError(t, c.call(), "AccessDeniedException", 400, "User: "+k.Arn+" is not authorized to perform: codedeploy:"+c.name)
		})
	}
	// Nor may it mint keys.
	req, _ := http.NewRequest("POST", env.URL+"/", strings.NewReader(`{"UserName":"x","Role":"admin"}`))
	req.Header.Set("X-Amz-Target", "CutoverAdmin_20261122.CreateAccessKey")
	sum := sha256.Sum256([]byte(`{"UserName":"x","Role":"admin"}`))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}, req,
		hex.EncodeToString(sum[:]), "codedeploy", env.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "AccessDeniedException") {
		t.Errorf("instance key minting a key: %d %s", resp.StatusCode, b)
	}
	// The instance is still registered.
	if _, err := env.Client.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("host-1")}); err != nil {
		t.Errorf("instance after refused deregister: %v", err)
	}
}
