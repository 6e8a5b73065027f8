package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/model/commands"
)

// fakeService checks the transport framing and answers by operation.
func fakeService(t *testing.T, answer func(op string, body map[string]any) (int, string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/" {
			t.Errorf("request %s %s, want POST /", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
			t.Errorf("Content-Type = %q", ct)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDHOST/") ||
			!strings.Contains(auth, "/us-east-1/codedeploy-commands/aws4_request") ||
			!strings.Contains(auth, "x-amz-codedeploy-agent-version") || !strings.Contains(auth, "x-amz-target") {
			t.Errorf("Authorization = %q", auth)
		}
		if v := r.Header.Get("X-Amz-Codedeploy-Agent-Version"); v != "cutover-test" {
			t.Errorf("agent version = %q", v)
		}
		target := r.Header.Get("X-Amz-Target")
		op, ok := strings.CutPrefix(target, "CodeDeployCommandService_v20141006.")
		if !ok {
			t.Errorf("X-Amz-Target = %q", target)
		}
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil {
			t.Errorf("body %q: %v", data, err)
		}
		code, resp := answer(op, body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(code)
		io.WriteString(w, resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newClient(url string) *Client {
	return &Client{
		Endpoint:       url,
		Region:         "us-east-1",
		Credentials:    credentials.NewStaticCredentialsProvider("AKIDHOST", "secret", ""),
		AgentVersion:   "cutover-test",
		RetryBaseDelay: time.Millisecond,
	}
}

func TestClientOperations(t *testing.T) {
	var calls atomic.Int32
	srv := fakeService(t, func(op string, body map[string]any) (int, string) {
		calls.Add(1)
		switch op {
		case "PollHostCommand":
			if body["HostIdentifier"] != "arn:aws:iam::1:user/h" {
				t.Errorf("poll body = %v", body)
			}
			return 200, `{"HostCommand":{"HostCommandIdentifier":"c1","HostIdentifier":"arn:aws:iam::1:user/h","DeploymentExecutionId":"a/b/c/d","CommandName":"Install","Nonce":3}}`
		case "PutHostCommandAcknowledgement":
			return 200, `{"CommandStatus":"InProgress"}`
		case "PutHostCommandComplete":
			if body["CommandStatus"] != "Succeeded" {
				t.Errorf("complete body = %v", body)
			}
			return 200, `{}`
		}
		return 400, `{"__type":"com.amazon#ClientException:http://x","message":"bad op"}`
	})
	c := newClient(srv.URL)
	ctx := context.Background()

	poll, err := c.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: aws.String("arn:aws:iam::1:user/h")})
	if err != nil {
		t.Fatal(err)
	}
	if hc := poll.HostCommand; hc == nil || aws.ToString(hc.CommandName) != "Install" || aws.ToInt64(hc.Nonce) != 3 {
		t.Fatalf("poll = %+v", poll.HostCommand)
	}
	ack, err := c.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: aws.String("c1")})
	if err != nil || aws.ToString(ack.CommandStatus) != "InProgress" {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	if err := c.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{HostCommandIdentifier: aws.String("c1"), CommandStatus: aws.String("Succeeded")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Type != "ClientException" || apiErr.Message != "bad op" || apiErr.StatusCode != 400 {
		t.Fatalf("err = %#v", err)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("calls = %d, a client error must not be retried", got)
	}
}

func TestClientRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  int32
		status    int
		wantCalls int32
		wantErr   bool
	}{
		{"server error then success", 2, 500, 3, false},
		{"throttled then success", 1, 429, 2, false},
		{"server error exhausts retries", 10, 500, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := fakeService(t, func(op string, _ map[string]any) (int, string) {
				if calls.Add(1) <= tt.failures {
					return tt.status, `{"__type":"ServerException","message":"try again"}`
				}
				return 200, `{}`
			})
			out, err := newClient(srv.URL).PollHostCommand(context.Background(), &commands.PollHostCommandInput{HostIdentifier: aws.String("h")})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && out.HostCommand != nil {
				t.Fatalf("empty poll gave %+v", out.HostCommand)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}
