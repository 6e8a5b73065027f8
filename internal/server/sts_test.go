package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

func stsClient(env *servertest.Env, key, secret string) *sts.Client {
	o := sts.Options{
		Region:       env.Region,
		BaseEndpoint: aws.String(env.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer:      aws.NopRetryer{},
	}
	if env.HTTPClient != nil {
		o.HTTPClient = env.HTTPClient
	}
	return sts.New(o)
}

func stsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprintf("not an API error: %v", err)
}

// toGET turns the SDK's signed-to-be POST into the query protocol's GET
// form: the fields move from the body to the query string.
func toGET(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("toGET", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
		req := in.Request.(*smithyhttp.Request)
		body, err := io.ReadAll(req.GetStream())
		if err != nil {
			return middleware.BuildOutput{}, middleware.Metadata{}, err
		}
		req.Method = http.MethodGet
		req.URL.RawQuery = string(body)
		req.Header.Del("Content-Type")
		req.ContentLength = 0
		if in.Request, err = req.SetStream(nil); err != nil {
			return middleware.BuildOutput{}, middleware.Metadata{}, err
		}
		return next.HandleBuild(ctx, in)
	}), middleware.After)
}

var userIDForm = regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`)

// TestSTSGetCallerIdentityEveryRole: every kind of key learns its own
// account, ARN and a user id of AWS's shape through the real SDK client,
// over TLS as `cutover server` serves by default.
func TestSTSGetCallerIdentityEveryRole(t *testing.T) {
	env := servertest.Start(t, servertest.WithTLS())
	ctx := context.Background()
	mk := func(spec keys.Spec) keys.Created {
		t.Helper()
		k, err := env.Server.Keys.CreateKey(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const other = "222233334444"
	session := "arn:aws:sts::" + other + ":assumed-role/Hosts/web-7"
	cases := []struct {
		name, key, secret  string
		account, arn, idRE string
	}{
		{"root key", env.AccessKey, env.SecretKey, keys.DefaultAccount, "arn:aws:iam::" + keys.DefaultAccount + ":user/root", userIDForm.String()},
	}
	for _, c := range []struct {
		name string
		spec keys.Spec
		idRE string
	}{
		{"admin", keys.Spec{User: "alice", Grant: access.Grant{Role: access.Admin}}, userIDForm.String()},
		{"deployer narrowed", keys.Spec{User: "ci", Grant: access.Grant{Role: access.Deployer, Applications: []string{"web"}, Regions: []string{"eu-west-1"}}}, userIDForm.String()},
		{"read-only", keys.Spec{User: "auditor", Grant: access.Grant{Role: access.ReadOnly}}, userIDForm.String()},
		{"host", keys.Spec{User: "host-1", Grant: access.Grant{Role: access.Host, Region: "us-east-1", Instance: "host-1"}}, userIDForm.String()},
		{"another account's admin", keys.Spec{User: "bob", Account: other, Grant: access.Grant{Role: access.Admin}}, userIDForm.String()},
		{"host signing as a role session", keys.Spec{User: "web-7", Account: other, SessionArn: session, Grant: access.Grant{Role: access.Host, Region: "us-east-1", Instance: "web-7"}}, `^AROA[A-Z2-7]{17}:web-7$`},
	} {
		k := mk(c.spec)
		acct := c.spec.Account
		if acct == "" {
			acct = keys.DefaultAccount
		}
		cases = append(cases, struct {
			name, key, secret  string
			account, arn, idRE string
		}{c.name, k.AccessKeyID, k.SecretAccessKey, acct, k.Arn, c.idRE})
	}
	seen := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := stsClient(env, tc.key, tc.secret).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.Account) != tc.account || aws.ToString(out.Arn) != tc.arn {
				t.Errorf("account %q arn %q; want %q %q", aws.ToString(out.Account), aws.ToString(out.Arn), tc.account, tc.arn)
			}
			id := aws.ToString(out.UserId)
			if !regexp.MustCompile(tc.idRE).MatchString(id) {
				t.Errorf("UserId %q does not match %s", id, tc.idRE)
			}
			if prev, ok := seen[id]; ok {
				t.Errorf("UserId %q shared with %s", id, prev)
			}
			seen[id] = tc.name
			// The id is the principal's, not the request's.
			again, err := stsClient(env, tc.key, tc.secret).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil || aws.ToString(again.UserId) != id {
				t.Errorf("second call: %v %v", again, err)
			}
		})
	}
}

// TestSTSErrors: bad credentials, other actions and malformed requests get
// STS's own XML error codes, as the SDK parses them.
func TestSTSErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	revoked, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "gone", Grant: access.Grant{Role: access.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Server.Keys.Revoke(ctx, revoked.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	sdkCases := []struct {
		name, key, secret, want string
		call                    func(c *sts.Client) error
	}{
		{"unknown key", "AKIAUNKNOWN000000000", "x", "InvalidClientTokenId", nil},
		{"revoked key", revoked.AccessKeyID, revoked.SecretAccessKey, "InvalidClientTokenId", nil},
		{"wrong secret", env.AccessKey, "wrong-secret", "SignatureDoesNotMatch", nil},
		{"other action", env.AccessKey, env.SecretKey, "InvalidAction", func(c *sts.Client) error {
			_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/r"), RoleSessionName: aws.String("s")})
			return err
		}},
	}
	for _, tc := range sdkCases {
		t.Run(tc.name, func(t *testing.T) {
			c := stsClient(env, tc.key, tc.secret)
			call := tc.call
			if call == nil {
				call = func(c *sts.Client) error {
					_, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
					return err
				}
			}
			if got := stsCode(call(c)); got != tc.want {
				t.Errorf("error code %q, want %q", got, tc.want)
			}
		})
	}

	// Shapes the SDK never sends: the XML error itself, as a person sees it.
	rawCases := []struct {
		name, method, query, ctype, body string
		status                           int
		code                             string
	}{
		{"unsigned GET", "GET", "Action=GetCallerIdentity&Version=2011-06-15", "", "", 403, "MissingAuthenticationToken"},
		{"unsigned POST form", "POST", "", "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Version=2011-06-15", 403, "MissingAuthenticationToken"},
		{"oversized body", "POST", "", "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Pad=" + strings.Repeat("x", 70<<10), 413, "RequestEntityTooLarge"},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, env.URL+"/?"+tc.query, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>" + tc.code + "</Code>"
			if resp.StatusCode != tc.status || !strings.Contains(string(b), want) || !strings.Contains(string(b), "<RequestId>") {
				t.Errorf("status %d body %s; want %d with %s", resp.StatusCode, b, tc.status, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestSTSGetQuery: the query protocol's GET form, signed, answers the same
// XML document as the POST form.
func TestSTSGetQuery(t *testing.T) {
	env := servertest.Start(t)
	c := stsClient(env, env.AccessKey, env.SecretKey)
	// The SDK builds and signs the POST; moving its fields to the query
	// string of a GET before signing gives the GET form.
	out, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}, func(o *sts.Options) {
		o.APIOptions = append(o.APIOptions, toGET)
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != keys.DefaultAccount || aws.ToString(out.Arn) != "arn:aws:iam::000000000000:user/root" {
		t.Errorf("GET answer %+v", out)
	}
}

// TestSTSOpenMode: under `cutover dev`'s open mode throwaway credentials
// are the root account's administrator, and STS says so.
func TestSTSOpenMode(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.Open = true })
	out, err := stsClient(env, "test", "test").GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != "arn:aws:iam::000000000000:root" || aws.ToString(out.UserId) != "000000000000" || aws.ToString(out.Account) != "000000000000" {
		t.Errorf("open mode identity %+v", out)
	}
}
