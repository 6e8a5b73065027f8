package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

// syncBuffer collects a server's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// restart stops env and starts a server on the same data directory and
// environment, logging into a fresh buffer.
func restart(t *testing.T, env *servertest.Env) (*servertest.Env, *syncBuffer) {
	t.Helper()
	env.Stop()
	logs := &syncBuffer{}
	cfg := env.Config
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return servertest.StartConfig(t, cfg), logs
}

// Finding: a key revoked with `cutover keys revoke` came back on restart
// while CUTOVER_ROOT_* still named it.
func TestRevokedKeysStayRevokedAcrossRestart(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	alice, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "alice", Grant: access.Grant{Role: access.Deployer}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{env.AccessKey, alice.AccessKeyID} {
		if err := env.Server.Keys.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	env2, logs := restart(t, env)
	for _, k := range []struct{ name, id, secret string }{
		{"root key of the environment", env.AccessKey, env.SecretKey},
		{"created key", alice.AccessKeyID, alice.SecretAccessKey},
	} {
		_, err := env2.NewClient(k.id, k.secret, env2.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		checkAPIError(t, err, "UnrecognizedClientException", 403, "security token included in the request is invalid")
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "root access key") || !strings.Contains(out, "revoked") {
		t.Errorf("no warning about the revoked root key in:\n%s", out)
	}
	list, err := env2.Server.Keys.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if !k.Revoked || k.RevokedAt.IsZero() {
			t.Errorf("key %s: revoked %v at %v", k.AccessKeyID, k.Revoked, k.RevokedAt)
		}
	}
}

// The environment's root key is made only when absent: a changed secret
// in the environment does not replace the stored one.
func TestRootKeyNotReplaced(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	env.Stop()
	logs := &syncBuffer{}
	cfg := env.Config
	cfg.RootSecretAccessKey = "another-secret-0000000000000000000000000"
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	env2 := servertest.StartConfig(t, cfg)
	_, err := env2.NewClient(cfg.RootAccessKeyID, cfg.RootSecretAccessKey, env2.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	checkAPIError(t, err, "InvalidSignatureException", 403, "")
	if _, err := env2.NewClient(env.AccessKey, env.SecretKey, env2.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("stored root secret: %v", err)
	}
	if !strings.Contains(logs.String(), "differs from the stored root key") {
		t.Errorf("no warning about the changed secret in:\n%s", logs.String())
	}
}

// Keys stored before roles existed are given one at start: a key whose
// principal is an on-premises instance's IAM ARN becomes that instance's
// host key, any other an admin key.
func TestKeysWithoutRoleMigrated(t *testing.T) {
	env := servertest.Start(t, shortPolls)
	ctx := context.Background()
	mk := func(user string) keys.Created {
		k, err := env.Server.Keys.Create(ctx, user, "")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	host, gone, ops := mk("web-1"), mk("web-2"), mk("ops")
	for _, reg := range []struct {
		name string
		k    keys.Created
	}{{"web-1", host}, {"web-2", gone}} {
		if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(reg.name), IamUserArn: aws.String(reg.k.Arn)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.Client.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("web-2")}); err != nil {
		t.Fatal(err)
	}
	// Strip the roles, as records written before roles existed have none.
	err := env.Server.Store.Update(ctx, func(tx store.Tx) error {
		for _, k := range []keys.Created{host, gone, ops} {
			b, err := tx.Get(ctx, "accesskey", k.AccessKeyID)
			if err != nil {
				return err
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return err
			}
			delete(m, "Role")
			if b, err = json.Marshal(m); err != nil {
				return err
			}
			if err := tx.Put(ctx, "accesskey", k.AccessKeyID, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	env2, logs := restart(t, env)
	if !strings.Contains(logs.String(), "given a role") {
		t.Errorf("migration not logged:\n%s", logs.String())
	}
	want := map[string]access.Grant{
		host.AccessKeyID: {Role: access.Host, Region: "us-east-1", Instance: "web-1"},
		gone.AccessKeyID: {Role: access.Host, Region: "us-east-1", Instance: "web-2"},
		ops.AccessKeyID:  {Role: access.Admin},
	}
	for id, g := range want {
		k, err := env2.Server.Keys.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if k.Grant.String() != g.String() || k.Role != g.Role {
			t.Errorf("%s: %s %s, want %s %s", k.Arn, k.Role, k.Grant, g.Role, g)
		}
	}
	// Through the SDK and the agent's client: the host key polls and does
	// nothing else; the deregistered one does nothing; ops stays an admin.
	hostArn := host.Arn
	if _, err := agentClient(env2, host.AccessKeyID, host.SecretAccessKey, env2.Region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &hostArn}); err != nil {
		t.Fatalf("migrated host key polls: %v", err)
	}
	for _, k := range []keys.Created{host, gone} {
		_, err := env2.NewClient(k.AccessKeyID, k.SecretAccessKey, env2.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		wantDenied(t, err, k.Arn+" ListApplications")
	}
	if _, err := createKeyCall(ctx, adminClient(env2, ops.AccessKeyID, ops.SecretAccessKey, env2.Region), "new", "deployer"); err != nil {
		t.Fatalf("migrated admin key: %v", err)
	}
}

// CreateAccessKey declares the new key's role; an unknown or missing role
// is a validation error and makes no key.
func TestCreateAccessKeyRoles(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	admin := adminClient(env, env.AccessKey, env.SecretKey, env.Region)
	cases := []struct {
		name string
		in   map[string]any
		code string
	}{
		{"no role", map[string]any{"UserName": "a"}, "ValidationException"},
		{"unknown role", map[string]any{"UserName": "a", "Role": "root"}, "ValidationException"},
		{"host without instance", map[string]any{"UserName": "a", "Role": "host"}, "ValidationException"},
		{"bad application scope", map[string]any{"UserName": "a", "Role": "deployer", "Applications": []string{"a/b/c"}}, "ValidationException"},
		{"bad region", map[string]any{"UserName": "a", "Role": "deployer", "Regions": []string{"moon"}}, "ValidationException"},
		{"deployer with instance", map[string]any{"UserName": "a", "Role": "deployer", "InstanceName": "x"}, "ValidationException"},
		{"read-only", map[string]any{"UserName": "a", "Role": "read-only", "Applications": []string{"web", "api/prod"}}, ""},
		{"host", map[string]any{"UserName": "h", "Role": "host", "InstanceName": "h"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out keys.Created
			err := admin.Call(ctx, "CreateAccessKey", tc.in, &out)
			if tc.code == "" {
				if err != nil || out.AccessKeyID == "" || string(out.Role) != tc.in["Role"] {
					t.Fatalf("%+v %v", out, err)
				}
				k, err := env.Server.Keys.Get(ctx, out.AccessKeyID)
				if err != nil {
					t.Fatal(err)
				}
				if k.Role == access.Host && (k.Region != env.Region || k.Instance != "h") {
					t.Errorf("host key bound to %s/%s", k.Region, k.Instance)
				}
				return
			}
			var pe *protocol.APIError
			if !errors.As(err, &pe) || pe.Type != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	list, err := env.Server.Keys.List(ctx)
	if err != nil || len(list) != 3 { // root, read-only, host
		t.Fatalf("keys %d %v", len(list), err)
	}
}

// On PostgreSQL, replicas share the keys: two starting at once with the
// same root key both come up, a revocation holds across restarts, and the
// audit log is shared.
func TestKeysAndAuditOnPostgres(t *testing.T) {
	url := pgtest.Start(t)
	dir := t.TempDir()
	cfg := server.Config{Listen: "127.0.0.1:0", DataDir: dir, Database: url,
		RootAccessKeyID: "AKIATESTROOT00000001", RootSecretAccessKey: "test-root-secret-key-0000000000000000000",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// The sealing key must exist before two replicas race to create it.
	if _, err := server.OpenSealer(dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv, err := server.New(ctx, cfg)
			if err == nil {
				err = srv.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("replica start: %v", err)
		}
	}

	env := servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(dir))
	viewer, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "viewer", Grant: access.Grant{Role: access.ReadOnly}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.NewClient(viewer.AccessKeyID, viewer.SecretAccessKey, env.Region).CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("pg")})
	wantDenied(t, err, "read-only CreateApplication")
	if err := env.Server.Keys.Revoke(ctx, env.AccessKey); err != nil {
		t.Fatal(err)
	}
	env2, logs := restart(t, env)
	_, err = env2.Client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	checkAPIError(t, err, "UnrecognizedClientException", 403, "")
	if !strings.Contains(logs.String(), "revoked") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	entries, err := audit.List(ctx, env2.Server.Store, audit.Filter{AccessKeyID: viewer.AccessKeyID})
	if err != nil || len(entries) != 1 || entries[0].Outcome != "AccessDeniedException" || entries[0].Operation != "codedeploy:CreateApplication" {
		t.Fatalf("audit %+v %v", entries, err)
	}
}
