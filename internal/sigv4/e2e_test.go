package sigv4

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"
)

// TestCodeDeployClient drives the Verifier through the real aws-sdk-go-v2
// CodeDeploy client, pointed at a test server by BaseEndpoint only.
func TestCodeDeployClient(t *testing.T) {
	v := &Verifier{Keys: testKeys(), Services: []string{"codedeploy"}} // real clock
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeAWSError(w, err)
			return
		}
		if _, err := v.Verify(r.Context(), r, body); err != nil {
			writeAWSError(w, err)
			return
		}
		if target := r.Header.Get("X-Amz-Target"); target != listApplications {
			writeAWSError(w, &Error{Code: "UnknownOperationException", Status: http.StatusBadRequest})
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, "{}")
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		id, key  string
		wantCode string
	}{
		{name: "valid key", id: alice.AccessKeyID, key: alice.SecretAccessKey},
		{name: "wrong secret", id: alice.AccessKeyID, key: "wrong", wantCode: CodeInvalidSignature},
		{name: "unknown key", id: stranger.AccessKeyID, key: stranger.SecretAccessKey, wantCode: CodeUnrecognizedClient},
		{name: "revoked key", id: revoked.AccessKeyID, key: revoked.SecretAccessKey, wantCode: CodeUnrecognizedClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := codedeploy.New(codedeploy.Options{
				Region:           "eu-central-1",
				BaseEndpoint:     aws.String(srv.URL),
				Credentials:      credentials.NewStaticCredentialsProvider(tt.id, tt.key, ""),
				RetryMaxAttempts: 1,
			})
			out, err := client.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ListApplications: %v", err)
				}
				if len(out.Applications) != 0 {
					t.Errorf("applications = %v", out.Applications)
				}
				return
			}
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if apiErr.ErrorCode() != tt.wantCode {
				t.Errorf("ErrorCode() = %q (%q), want %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), tt.wantCode)
			}
		})
	}
}
