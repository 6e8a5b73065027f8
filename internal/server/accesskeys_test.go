package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestDeleteAccessKey: the admin operation `cutover agent register` uses to
// take back a key revokes keys of the caller's account only, and not the
// caller's own.
func TestDeleteAccessKey(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	admin := &protocol.Client{Endpoint: env.URL, Region: env.Region, MaxRetries: -1,
		Credentials:  credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
		TargetPrefix: server.PrefixAdmin, SigningName: server.SigningCodeDeploy}
	mine, err := env.Server.Keys.Create(ctx, "host", "")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := env.Server.Keys.Create(ctx, "host", "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	del := func(id string) error {
		return admin.Call(ctx, "DeleteAccessKey", map[string]string{"AccessKeyId": id}, nil)
	}
	for _, tc := range []struct{ name, id, want string }{
		{"another account's key", theirs.AccessKeyID, "NoSuchEntity"},
		{"unknown key", "AKIANOSUCHKEY0000000", "NoSuchEntity"},
		{"own key", env.AccessKey, "ValidationException"},
		{"no id", "", "ValidationException"},
	} {
		if err := del(tc.id); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	works := func(c *codedeploy.Client) bool {
		_, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		return err == nil
	}
	if !works(client(env, theirs.AccessKeyID, theirs.SecretAccessKey)) || !works(env.Client) {
		t.Fatal("a refused DeleteAccessKey disabled a key")
	}
	if err := del(mine.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if works(client(env, mine.AccessKeyID, mine.SecretAccessKey)) {
		t.Fatal("deleted key still works")
	}
}
