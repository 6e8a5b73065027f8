package server_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// On SQLite access-key lookups are cached, and `cutover keys revoke`
// writes from another process, which the in-process change feed never
// hears of: a key revoked through another handle on the database file
// must stop working with the very next request, not when the cache ages.
func TestSQLiteKeyRevokedElsewhereStopsAtOnce(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	alice, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "alice", Grant: access.Grant{Role: access.Deployer}})
	if err != nil {
		t.Fatal(err)
	}
	c := env.NewClient(alice.AccessKeyID, alice.SecretAccessKey, env.Region)
	for range 3 { // the later calls are answered from the cache
		if _, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
			t.Fatal(err)
		}
	}

	// What `cutover keys revoke --data-dir` does: its own store and sealer.
	other, err := sqlite.Open(ctx, filepath.Join(env.Config.DataDir, "cutover.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sealer, err := server.OpenSealer(env.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&keys.Manager{Store: other, Sealer: sealer}).Revoke(ctx, alice.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	_, err = c.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	checkAPIError(t, err, "UnrecognizedClientException", 403, "security token included in the request is invalid")

	// Keys not revoked keep working (through the cache again).
	root := env.NewClient(env.AccessKey, env.SecretKey, env.Region)
	for range 2 {
		if _, err := root.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
			t.Fatal(err)
		}
	}
}
