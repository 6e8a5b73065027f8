package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/secretbox"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

func randomKeyHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, secretbox.KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestKeysUseTheServersKey: with CUTOVER_SERVER_KEY set on the server
// only (as a unit file does), `cutover keys create` and `github-token add`
// refuse instead of sealing with a server.key of their own; with the
// server's key the new key works; with another key they refuse. A key
// already sealed under another key (as the CLI once made them) answers its
// caller as an unknown key, never a 500, and the server logs why at error
// level.
func TestKeysUseTheServersKey(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	serverKey := "CUTOVER_SERVER_KEY=" + randomKeyHex(t)
	addr := freeAddr(t)
	url := "http://" + addr
	p := startBin(t, []string{serverKey, "CUTOVER_ROOT_ACCESS_KEY_ID=" + rootKeyID, "CUTOVER_ROOT_SECRET_ACCESS_KEY=" + rootSecret},
		"server", "--data-dir", data, "--listen", addr, "--log-format", "json", "--insecure-http")
	waitHealthy(t, url, p)
	ctx := context.Background()

	refusals := []struct {
		name, want string
		env        []string
		args       []string
	}{
		{"keys create without the key", "CUTOVER_SERVER_KEY", nil, []string{"keys", "create", "--user", "ops", "--role", "admin", "--data-dir", data}},
		{"github-token add without the key", "CUTOVER_SERVER_KEY", []string{"CUTOVER_TOKEN=ghp_x"}, []string{"github-token", "add", "--name", "gh", "--data-dir", data}},
		{"keys create with another key", "does not open this database's secrets", []string{"CUTOVER_SERVER_KEY=" + randomKeyHex(t)}, []string{"keys", "create", "--user", "ops", "--role", "admin", "--data-dir", data}},
	}
	for _, c := range refusals {
		r := runBin(t, c.env, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want a refusal naming %q", c.name, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(filepath.Join(data, "server.key")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: left a server.key of its own (%v)", c.name, err)
		}
	}
	if r := runBin(t, []string{serverKey}, "keys", "list", "--data-dir", data); r.code != 0 || strings.Contains(r.stdout, "user/ops") {
		t.Errorf("a refused create left a key: exit %d %q %s", r.code, r.stdout, r.stderr)
	}

	r := runBin(t, []string{serverKey}, "keys", "create", "--user", "ops", "--role", "admin", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("keys create with the server's key: %d %s", r.code, r.stderr)
	}
	var k struct{ AccessKeyId, SecretAccessKey string }
	if err := json.Unmarshal([]byte(r.stdout), &k); err != nil {
		t.Fatalf("keys create printed %q: %v", r.stdout, err)
	}
	if _, err := cdClient(url, k.AccessKeyId, k.SecretAccessKey).ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("the new key: %v", err)
	}

	// A key sealed under another server key, written as the old CLI did.
	st, err := sqlite.Open(ctx, filepath.Join(data, "cutover.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := secretbox.NewBox(make([]byte, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := (&keys.Manager{Store: st, Sealer: other}).CreateKey(ctx, keys.Spec{User: "stale", Account: keys.DefaultAccount, Grant: access.Grant{Role: access.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{bad.SecretAccessKey, "some-other-secret-some-other-secret"} {
		_, err = cdClient(url, bad.AccessKeyID, secret).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		var re interface{ HTTPStatusCode() int }
		if apiCode(err) != "UnrecognizedClientException" || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
			t.Errorf("unopenable key: %v; want 403 UnrecognizedClientException", err)
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "secretbox") {
			t.Errorf("the caller is told about the server's sealing: %q", ae.ErrorMessage())
		}
	}
	logged := false
	for _, line := range strings.Split(p.stderr(), "\n") {
		var e struct{ Level, AccessKeyId string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Level == "ERROR" && e.AccessKeyId == bad.AccessKeyID {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no error-level log line for the unopenable key %s:\n%s", bad.AccessKeyID, p.stderr())
	}
}
