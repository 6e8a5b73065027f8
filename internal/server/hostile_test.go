package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestOversizedInputsGetShortErrors sends names far beyond the model's
// limits through the Go SDK: a body over the 1 MiB cap is refused unread
// with 413, and a long value under the cap is quoted shortened, so neither
// answer echoes the input back. Neither creates anything.
func TestOversizedInputsGetShortErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		size   int
		code   string
		status int
	}{
		{"8 MiB name", 8 << 20, "SerializationException", http.StatusRequestEntityTooLarge},
		{"1 MiB name", 1 << 20, "SerializationException", http.StatusRequestEntityTooLarge},
		{"900 KiB name", 900 << 10, "InvalidApplicationNameException", http.StatusBadRequest},
		{"300-character name", 300, "InvalidApplicationNameException", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.Repeat("n", tc.size)
			_, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(name)})
			checkAPIError(t, err, tc.code, tc.status, "")
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatal(err)
			}
			msg := ae.ErrorMessage()
			if len(msg) > 4*awsjson.MaxEcho {
				t.Errorf("message of %d bytes for a %d-byte name", len(msg), tc.size)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(msg, "'"+strings.Repeat("n", awsjson.MaxEcho)+"...(") {
				t.Errorf("message does not quote the shortened name: %q", msg)
			}
		})
	}
	list, err := env.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	if err != nil || len(list.Applications) != 0 {
		t.Fatalf("refused requests created %v (%v)", list.Applications, err)
	}
}

// TestLongTargetShortError sends a 60 KiB X-Amz-Target: the unknown
// operation is named shortened.
func TestLongTargetShortError(t *testing.T) {
	env := servertest.Start(t)
	status, _, doc := raw(t, env, "POST", "CodeDeploy_20141006."+strings.Repeat("X", 60<<10), []byte("{}"), true)
	msg, _ := doc["message"].(string)
	if status != 400 || doc["__type"] != "UnknownOperationException" || len(msg) > 4*awsjson.MaxEcho {
		t.Fatalf("status %d, __type %v, message of %d bytes: %.400s", status, doc["__type"], len(msg), msg)
	}
}

// TestLongPollOutlivesBodyTimeout: the body deadline is lifted once the
// body is in, so a PollHostCommand long poll longer than BodyTimeout ends
// normally, over TLS and HTTP/2 as agents use it.
func TestLongPollOutlivesBodyTimeout(t *testing.T) {
	env := servertest.Start(t, servertest.WithTLS(), func(c *server.Config) {
		c.BodyTimeout = 500 * time.Millisecond
		c.PollWait = 2 * time.Second
	})
	ctx := context.Background()
	host, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region, InstanceName: "poller",
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""), HTTPClient: env.HTTPClient})
	if err != nil {
		t.Fatal(err)
	}
	tr := env.HTTPClient.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	for _, hc := range []*http.Client{env.HTTPClient, {Transport: tr}} {
		pc := &protocol.Client{Endpoint: env.URL, Region: env.Region, Credentials: host.CredentialsProvider(), HTTPClient: hc, MaxRetries: -1}
		start := time.Now()
		out, err := pc.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: aws.String(host.IAMUserARN)})
		if err != nil || out.HostCommand != nil {
			t.Fatalf("poll: %+v %v", out, err)
		}
		if took := time.Since(start); took < 1500*time.Millisecond {
			t.Fatalf("poll returned after %s, before its 2 s wait", took)
		}
	}
}
