package deploy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestE2EGitHubRevision deploys a GitHub revision: the agent downloads the
// commit's tarball over HTTPS (a stand-in for api.github.com, which this
// machine cannot reach) with the token stored under the repository owner,
// strips GitHub's wrapper directory and runs the hooks with BUNDLE_COMMIT.
func TestE2EGitHubRevision(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	bundle := revSpec{hooks: map[string]string{"AfterInstall": scriptRecord}}.bundle(t)
	// GitHub tarballs hold one top-level directory: owner-repo-<sha>/.
	var wrapped []bfile
	for _, f := range untar(t, bundle) {
		f.name = "acme-shop-0123456/" + f.name
		wrapped = append(wrapped, f)
	}
	tarball := tarGz(t, wrapped)
	var auth atomic.Value
	gh := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		if r.URL.Path != "/repos/acme/shop/tarball/"+commit {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(tarball)
	}))
	t.Cleanup(gh.Close)

	e := newE2E(t)
	if err := api.AddGitHubToken(context.Background(), e.env.Server.Store, sealer(t, e.env), "000000000000", "us-east-1", "acme", "ghp_secret"); err != nil {
		t.Fatal(err)
	}
	h := startHost(t, e.env, e.s3.URL, "gh-1", "web", filepath.Join(t.TempDir(), "release"), func(c *agent.Config) {
		c.GitHubAPIURL = gh.URL
		c.HTTPClient = gh.Client()
	})
	e.env.SetupGroup(t, "gh-app", "web", "", "role", "web")
	id := e.deploy(t, "gh-app", "web", &types.RevisionLocation{RevisionType: types.RevisionLocationTypeGitHub,
		GitHubLocation: &types.GitHubLocation{Repository: aws.String("acme/shop"), CommitId: aws.String(commit)}})
	e.waitDone(t, id, types.DeploymentStatusSucceeded)
	if got, _ := auth.Load().(string); got != "token ghp_secret" {
		t.Fatalf("GitHub saw Authorization %q, want the stored token", got)
	}
	env := envOf(t, h.evidence, "AfterInstall")
	if env["BUNDLE_COMMIT"] != commit || env["DEPLOYMENT_ID"] != id {
		t.Fatalf("hook env BUNDLE_COMMIT=%q DEPLOYMENT_ID=%q", env["BUNDLE_COMMIT"], env["DEPLOYMENT_ID"])
	}
}

func sealer(t *testing.T, env *servertest.Env) api.Sealer {
	t.Helper()
	return env.Server.Sealer()
}

// untar reads back a bundle built by tarGz.
func untar(t *testing.T, tgz []byte) []bfile {
	t.Helper()
	var out []bfile
	walkTarGz(t, tgz, func(name string, mode int64, body string) {
		if !strings.HasSuffix(name, "/") {
			out = append(out, bfile{name: name, mode: mode, body: body})
		}
	})
	return out
}

func walkTarGz(t *testing.T, tgz []byte, fn func(name string, mode int64, body string)) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h.Name, h.Mode, string(b))
	}
}
