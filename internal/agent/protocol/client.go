// Package protocol is the agent's client for the CodeDeploy command service
// (CodeDeployCommandService_v20141006): AWS JSON 1.1 over HTTP POST, signed
// with SigV4 under the service name codedeploy-commands.
package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/cutoverhq/cutover/internal/model/commands"
)

// Wire constants of the default (non-secure) command service.
const (
	TargetPrefix = "CodeDeployCommandService_v20141006"
	SigningName  = "codedeploy-commands"
	contentType  = "application/x-amz-json-1.1"
)

// ReadTimeout bounds each call, like the official agent's :http_read_timeout:.
// The server's long poll must answer well within it.
const ReadTimeout = 80 * time.Second

// maxResponse caps a response body; specs are limited to 8 KiB by the model.
const maxResponse = 4 << 20

// Client calls the command service. It implements commands.Service, so a
// test can swap it for the server implementation in-process.
type Client struct {
	Endpoint     string // base URL; requests go to Endpoint + "/"
	Region       string
	Credentials  aws.CredentialsProvider
	HTTPClient   *http.Client // nil: http.DefaultClient
	AgentVersion string       // sent as x-amz-codedeploy-agent-version
	Logger       *slog.Logger // nil: slog.Default()

	// TargetPrefix and SigningName default to the command service's; the
	// registration code reuses the client for Cutover's admin API.
	TargetPrefix string
	SigningName  string

	// MaxRetries is the number of retries for throttling, 5xx and network
	// errors, like the SDK's legacy mode (3). Negative disables retries.
	MaxRetries int
	// RetryBaseDelay scales the jittered exponential retry delay
	// (default 300 ms, the legacy SDK base).
	RetryBaseDelay time.Duration
}

var _ commands.Service = (*Client)(nil)

// APIError is an error answer of the service ({"__type","message"}).
type APIError struct {
	Operation  string
	StatusCode int
	Type       string // __type without any "ns#" prefix or ":suffix"
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d): %s", e.Operation, e.Type, e.StatusCode, e.Message)
}

// Retryable reports whether the SDKs would retry the error.
func (e *APIError) Retryable() bool {
	t := strings.ToLower(e.Type)
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests ||
		strings.Contains(t, "throttl") || strings.Contains(t, "rateexceeded") || strings.Contains(t, "toomanyrequests")
}

// PollHostCommand long-polls for the next command; the output's HostCommand
// is nil when there is no work.
func (c *Client) PollHostCommand(ctx context.Context, in *commands.PollHostCommandInput) (*commands.PollHostCommandOutput, error) {
	var out commands.PollHostCommandOutput
	return &out, c.call(ctx, "PollHostCommand", in, &out)
}

// GetDeploymentSpecification fetches the spec of a deployment execution.
func (c *Client) GetDeploymentSpecification(ctx context.Context, in *commands.GetDeploymentSpecificationInput) (*commands.GetDeploymentSpecificationOutput, error) {
	var out commands.GetDeploymentSpecificationOutput
	return &out, c.call(ctx, "GetDeploymentSpecification", in, &out)
}

// PutHostCommandAcknowledgement acknowledges a command.
func (c *Client) PutHostCommandAcknowledgement(ctx context.Context, in *commands.PutHostCommandAcknowledgementInput) (*commands.PutHostCommandAcknowledgementOutput, error) {
	var out commands.PutHostCommandAcknowledgementOutput
	return &out, c.call(ctx, "PutHostCommandAcknowledgement", in, &out)
}

// PostHostCommandUpdate reports progress. Neither official agent calls it;
// it is here for completeness.
func (c *Client) PostHostCommandUpdate(ctx context.Context, in *commands.PostHostCommandUpdateInput) (*commands.PostHostCommandUpdateOutput, error) {
	var out commands.PostHostCommandUpdateOutput
	return &out, c.call(ctx, "PostHostCommandUpdate", in, &out)
}

// PutHostCommandComplete reports the outcome of a command.
func (c *Client) PutHostCommandComplete(ctx context.Context, in *commands.PutHostCommandCompleteInput) error {
	return c.call(ctx, "PutHostCommandComplete", in, nil)
}

// Call performs one AWS JSON 1.1 operation: in is marshalled as the request
// body and a 2xx answer is unmarshalled into out (which may be nil).
func (c *Client) Call(ctx context.Context, op string, in, out any) error {
	return c.call(ctx, op, in, out)
}

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", op, err)
	}
	retries := c.MaxRetries
	if retries == 0 {
		retries = 3
	}
	for attempt := 0; ; attempt++ {
		err = c.do(ctx, op, body, out)
		if err == nil || attempt >= retries || !retryable(ctx, err) {
			return err
		}
		d := c.retryDelay(attempt)
		c.logger().DebugContext(ctx, "retrying command service call", "op", op, "attempt", attempt+1, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) retryDelay(attempt int) time.Duration {
	base := c.RetryBaseDelay
	if base <= 0 {
		base = 300 * time.Millisecond
	}
	// Full jitter over the exponential window, as the AWS SDKs do.
	window := base << attempt
	return time.Duration(rand.Int64N(int64(window)) + 1)
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Retryable()
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}

func (c *Client) do(ctx context.Context, op string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, ReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	version := c.AgentVersion
	if version == "" {
		version = "UNKNOWN_VERSION"
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	req.Header.Set("Content-Type", contentType)
	prefix, signingName := c.TargetPrefix, c.SigningName
	if prefix == "" {
		prefix = TargetPrefix
	}
	if signingName == "" {
		signingName = SigningName
	}
	req.Header.Set("X-Amz-Target", prefix+"."+op)
	req.Header.Set("X-Amz-Codedeploy-Agent-Version", version)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if c.Credentials == nil {
		return fmt.Errorf("%s: no credentials", op)
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("%s: retrieve credentials: %w", op, err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, payloadHash, signingName, c.Region, time.Now()); err != nil {
		return fmt.Errorf("%s: sign request: %w", op, err)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(op, resp, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	return nil
}

func decodeError(op string, resp *http.Response, data []byte) error {
	var body struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body) // a non-JSON error body still yields an APIError
	e := &APIError{Operation: op, StatusCode: resp.StatusCode, Type: body.Type, Message: body.Message}
	if e.Message == "" {
		e.Message = body.MessageU
	}
	if e.Type == "" {
		e.Type = resp.Header.Get("X-Amzn-Errortype")
	}
	if _, after, ok := strings.Cut(e.Type, "#"); ok {
		e.Type = after
	}
	if before, _, ok := strings.Cut(e.Type, ":"); ok {
		e.Type = before
	}
	if e.Type == "" {
		if resp.StatusCode >= 500 {
			e.Type = "ServerException"
		} else {
			e.Type = "ClientException"
		}
	}
	if e.Message == "" && len(data) > 0 && len(data) < 512 {
		e.Message = strings.TrimSpace(string(data))
	}
	return e
}

func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
