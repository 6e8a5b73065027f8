package hooklog_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// TestPutHookLogRefusals calls the extension operation through the
// agent's protocol client, signed with real keys: only a registered host
// may call it, and only for a current command of its own.
func TestPutHookLogRefusals(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	reg, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""), InstanceName: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	client := func(creds aws.CredentialsProvider) *protocol.Client {
		return &protocol.Client{Endpoint: env.URL, Region: env.Region, Credentials: creds, TargetPrefix: hooklog.TargetPrefix, MaxRetries: -1}
	}
	in := hooklog.PutHookLogInput{HostCommandIdentifier: "d-NOSUCH000-1", LifecycleEvent: "BeforeInstall", Data: "x\n"}
	for _, tc := range []struct {
		name string
		c    *protocol.Client
		in   hooklog.PutHookLogInput
		want string
	}{
		{name: "administrator key", c: client(credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, "")), in: in, want: "AccessDeniedException"},
		{name: "host key, not its command", c: client(reg.CredentialsProvider()), in: in, want: "ClientException"},
		{name: "slash in the command id", c: client(reg.CredentialsProvider()), in: hooklog.PutHookLogInput{HostCommandIdentifier: "a/b", LifecycleEvent: "x", Data: "x"}, want: "ValidationException"},
		{name: "oversized chunk", c: client(reg.CredentialsProvider()), in: hooklog.PutHookLogInput{HostCommandIdentifier: "d-X-1", LifecycleEvent: "x", Data: strings.Repeat("x", hooklog.MaxChunk+1)}, want: "ValidationException"},
		{name: "wrong signing service", c: func() *protocol.Client {
			c := client(reg.CredentialsProvider())
			c.SigningName = "codedeploy"
			return c
		}(), in: in, want: "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Call(ctx, hooklog.OpPutHookLog, tc.in, nil)
			var ae *protocol.APIError
			if !errors.As(err, &ae) || ae.Type != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
	logs, err := env.Server.HookLogs.Read(ctx, "d-NOSUCH000", "")
	if err != nil || len(logs) != 0 {
		t.Fatalf("refused calls stored logs: %v %v", logs, err)
	}
}

// TestBoundsAndRetention: output beyond 1 MiB per command is cut with the
// marker; logs older than the retention are pruned.
func TestBoundsAndRetention(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s := &hooklog.Service{Store: st, Now: func() time.Time { return now },
		Instance: func(context.Context) (string, error) { return "h1", nil },
		Command: func(_ context.Context, id string) (string, error) {
			return strings.TrimSuffix(id, "-1"), nil
		}}
	chunk := strings.Repeat("0123456789abcdef", hooklog.MaxChunk/16)
	for range 20 { // 1.25 MiB
		if err := s.Put(ctx, hooklog.PutHookLogInput{HostCommandIdentifier: "d-A-1", LifecycleEvent: "AfterInstall", Data: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(48 * time.Hour)
	if err := s.Put(ctx, hooklog.PutHookLogInput{HostCommandIdentifier: "d-B-1", LifecycleEvent: "BeforeInstall", Data: "hello\n"}); err != nil {
		t.Fatal(err)
	}
	logs, err := s.Read(ctx, "d-A", "h1")
	if err != nil || len(logs) != 1 {
		t.Fatalf("read: %v %v", logs, err)
	}
	l := logs[0]
	if !l.Truncated || !strings.HasSuffix(l.Text, hooklog.TruncationMarker) || len(l.Text) != hooklog.MaxPerCommand+len(hooklog.TruncationMarker) {
		t.Fatalf("truncated %v, %d bytes, want %d ending in the marker", l.Truncated, len(l.Text), hooklog.MaxPerCommand+len(hooklog.TruncationMarker))
	}
	if l.Instance != "h1" || l.Event != "AfterInstall" {
		t.Errorf("log %+v", l)
	}
	n, err := s.Prune(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v, want 1", n, err)
	}
	if logs, _ := s.Read(ctx, "d-A", ""); len(logs) != 0 {
		t.Errorf("pruned logs still read: %d", len(logs))
	}
	if logs, _ := s.Read(ctx, "d-B", ""); len(logs) != 1 || logs[0].Text != "hello\n" {
		t.Errorf("recent logs: %+v", logs)
	}
}
