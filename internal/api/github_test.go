package api_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

const testAccount, testRegion = "000000000000", "us-east-1"

func addToken(t *testing.T, env *servertest.Env, region, name, token string) {
	t.Helper()
	if err := api.AddGitHubToken(context.Background(), env.Server.Store, env.Server.API.Sealer, testAccount, region, name, token); err != nil {
		t.Fatalf("AddGitHubToken %s: %v", name, err)
	}
}

func tokenNames(t *testing.T, c *codedeploy.Client) []string {
	t.Helper()
	var names []string
	var next *string
	for {
		out, err := c.ListGitHubAccountTokenNames(context.Background(), &codedeploy.ListGitHubAccountTokenNamesInput{NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, out.TokenNameList...)
		if next = out.NextToken; next == nil {
			return names
		}
	}
}

func TestGitHubAccountTokens(t *testing.T) {
	env := servertest.Start(t)
	env.Server.API.PageSize = 2
	ctx := context.Background()
	if got := tokenNames(t, env.Client); len(got) != 0 {
		t.Fatalf("fresh server lists tokens %v", got)
	}
	for _, n := range []string{"gamma", "alpha", "beta"} {
		addToken(t, env, testRegion, n, "ghp_"+n+"SECRETTOKENTEXT0123456789")
	}
	addToken(t, env, "eu-west-1", "elsewhere", "ghp_elsewhereSECRETTOKENTEXT")
	if got, want := tokenNames(t, env.Client), []string{"alpha", "beta", "gamma"}; !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
	first, err := env.Client.ListGitHubAccountTokenNames(ctx, &codedeploy.ListGitHubAccountTokenNamesInput{})
	if err != nil || len(first.TokenNameList) != 2 || first.NextToken == nil {
		t.Fatalf("first page %+v %v", first, err)
	}
	_, err = env.Client.ListGitHubAccountTokenNames(ctx, &codedeploy.ListGitHubAccountTokenNamesInput{NextToken: aws.String("forged")})
	servertest.WantError(t, err, "InvalidNextTokenException")

	euro := env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1")
	if got := tokenNames(t, euro); !slices.Equal(got, []string{"elsewhere"}) {
		t.Errorf("eu-west-1 tokens %v", got)
	}

	// The stored token opens back to the text given.
	err = env.Server.Store.View(ctx, func(tx store.Tx) error {
		tok, err := api.GitHubToken(ctx, tx, env.Server.API.Sealer, testAccount, testRegion, "beta")
		if err == nil && tok != "ghp_betaSECRETTOKENTEXT0123456789" {
			err = fmt.Errorf("token opens to %q", tok)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	del, err := env.Client.DeleteGitHubAccountToken(ctx, &codedeploy.DeleteGitHubAccountTokenInput{TokenName: aws.String("beta")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.TokenName) != "beta" {
		t.Errorf("deleted token name %q", aws.ToString(del.TokenName))
	}
	if got, want := tokenNames(t, env.Client), []string{"alpha", "gamma"}; !slices.Equal(got, want) {
		t.Errorf("after delete %v, want %v", got, want)
	}
	_, err = env.Client.DeleteGitHubAccountToken(ctx, &codedeploy.DeleteGitHubAccountTokenInput{TokenName: aws.String("beta")})
	servertest.WantError(t, err, "GitHubAccountTokenDoesNotExistException")
	// A token of another region cannot be deleted from here.
	_, err = env.Client.DeleteGitHubAccountToken(ctx, &codedeploy.DeleteGitHubAccountTokenInput{TokenName: aws.String("elsewhere")})
	servertest.WantError(t, err, "GitHubAccountTokenDoesNotExistException")
	if got := tokenNames(t, euro); !slices.Equal(got, []string{"elsewhere"}) {
		t.Errorf("eu-west-1 tokens after refused delete %v", got)
	}
}

func TestGitHubTokenStoredSealed(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	const secret = "ghp_PLAINTEXTMUSTNOTBESTORED1234567890"
	addToken(t, env, testRegion, "ci", secret)
	var raw []byte
	err := env.Server.Store.View(ctx, func(tx store.Tx) error {
		var err error
		raw, err = tx.Get(ctx, "github", api.ScopeKey(testAccount, testRegion)+"ci")
		return err
	})
	if err != nil {
		t.Fatalf("raw record: %v", err)
	}
	if len(raw) == 0 || bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("PLAINTEXTMUSTNOTBESTORED")) {
		t.Fatalf("token stored in clear: %q", raw)
	}
	// Nor anywhere in the database files.
	files, _ := filepath.Glob(filepath.Join(env.Config.DataDir, "cutover.db*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("PLAINTEXTMUSTNOTBESTORED")) {
			t.Errorf("token text found in %s", f)
		}
	}
	// A sealed record moved to another name does not open (bound to its key).
	err = env.Server.Store.Update(ctx, func(tx store.Tx) error {
		return tx.Put(ctx, "github", api.ScopeKey(testAccount, testRegion)+"copy", raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = env.Server.Store.View(ctx, func(tx store.Tx) error {
		tok, err := api.GitHubToken(ctx, tx, env.Server.API.Sealer, testAccount, testRegion, "copy")
		if err == nil {
			return fmt.Errorf("record copied under another name opened to %q", tok)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestAddGitHubTokenErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name, tokenName, token string
	}{
		{"bad name", "bad/name", "ghp_x"},
		{"name with space", "a b", "ghp_x"},
		{"empty name", "", "ghp_x"},
		{"long name", strings.Repeat("n", 101), "ghp_x"},
		{"empty token", "ok", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := api.AddGitHubToken(ctx, env.Server.Store, env.Server.API.Sealer, testAccount, testRegion, tc.tokenName, tc.token); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for i := range 25 {
		addToken(t, env, testRegion, fmt.Sprintf("t%02d", i), "ghp_x")
	}
	if err := api.AddGitHubToken(ctx, env.Server.Store, env.Server.API.Sealer, testAccount, testRegion, "t25", "ghp_x"); err == nil {
		t.Error("26th token accepted")
	}
	if got := tokenNames(t, env.Client); len(got) != 25 {
		t.Errorf("%d tokens listed, want 25", len(got))
	}
}

func TestDeleteGitHubAccountTokenErrors(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	addToken(t, env, testRegion, "keep", "ghp_keep")
	cases := []struct {
		name  string
		token *string
		want  string
	}{
		{"no name", nil, "GitHubAccountTokenNameRequiredException"},
		{"empty name", aws.String(""), "GitHubAccountTokenNameRequiredException"},
		{"bad characters", aws.String("bad/name"), "InvalidGitHubAccountTokenNameException"},
		{"space", aws.String("a b"), "InvalidGitHubAccountTokenNameException"},
		{"too long", aws.String(strings.Repeat("n", 101)), "InvalidGitHubAccountTokenNameException"},
		{"missing", aws.String("nope"), "GitHubAccountTokenDoesNotExistException"},
		{"case matters", aws.String("KEEP"), "GitHubAccountTokenDoesNotExistException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client.DeleteGitHubAccountToken(ctx, &codedeploy.DeleteGitHubAccountTokenInput{TokenName: tc.token})
			servertest.WantError(t, err, tc.want)
		})
	}
	if got := tokenNames(t, env.Client); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("bad inputs changed tokens: %v", got)
	}
}

func TestDeleteResourcesByExternalId(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []*string{aws.String("stack-1234"), nil} {
		if _, err := env.Client.DeleteResourcesByExternalId(ctx, &codedeploy.DeleteResourcesByExternalIdInput{ExternalId: id}); err != nil {
			t.Fatalf("external id %v: %v", aws.ToString(id), err)
		}
	}
	if _, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Errorf("application gone after DeleteResourcesByExternalId: %v", err)
	}
}
