package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func TestS3(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	opts := S3Options{
		Endpoint:    srv.URL,
		PathStyle:   true,
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	}
	ctx := context.Background()
	admin := s3.New(s3.Options{Region: opts.Region, Credentials: opts.Credentials, UsePathStyle: true, BaseEndpoint: aws.String(srv.URL)})
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bundles")}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String("bundles"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatal(err)
	}
	put := func(body string) (version, etag string) {
		out, err := admin.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bundles"), Key: aws.String("app/rev.zip"), Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VersionId), aws.ToString(out.ETag)
	}
	v1, etag1 := put("first revision")
	_, etag2 := put("second revision")
	if v1 == "" || etag1 == etag2 {
		t.Fatalf("versioning not in effect: v1=%q etags %q %q", v1, etag1, etag2)
	}

	tests := []struct {
		name     string
		obj      S3Object
		want     string
		wantErr  string
		wantETag string
	}{
		{"latest", S3Object{Bucket: "bundles", Key: "app/rev.zip"}, "second revision", "", etag2},
		{"by version", S3Object{Bucket: "bundles", Key: "app/rev.zip", Version: v1}, "first revision", "", etag1},
		{"version and quoted etag", S3Object{Bucket: "bundles", Key: "app/rev.zip", Version: v1, ETag: etag1}, "first revision", "", etag1},
		{"etag without quotes", S3Object{Bucket: "bundles", Key: "app/rev.zip", ETag: strings.Trim(etag2, `"`)}, "second revision", "", etag2},
		{"etag mismatch", S3Object{Bucket: "bundles", Key: "app/rev.zip", ETag: etag1}, "", "ETag mismatch", ""},
		{"missing key", S3Object{Bucket: "bundles", Key: "nope"}, "", "NoSuchKey", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "bundle.tar")
			res, err := S3(ctx, opts, tt.obj, dst)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("content = %q, want %q", got, tt.want)
			}
			if res.ETag != strings.Trim(tt.wantETag, `"`) {
				t.Fatalf("ETag = %q, want %q", res.ETag, tt.wantETag)
			}
		})
	}
}

func TestGitHub(t *testing.T) {
	tarball := []byte("\x1f\x8b fake gzip tarball")
	var failFirst bool
	var served int
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repos/acme/web/tarball/c0ffee", "/repos/acme/web/zipball/c0ffee":
			if got := r.Header.Get("Authorization"); got != "token s3cret" {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return
			}
			if failFirst && served == 0 {
				served++
				http.Error(w, "busy", http.StatusBadGateway)
				return
			}
			http.Redirect(w, r, "/codeload/acme/web/legacy.tar.gz/c0ffee", http.StatusFound)
		case "/codeload/acme/web/legacy.tar.gz/c0ffee":
			served++
			w.Write(tarball)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name      string
		token     string
		failFirst bool
		archive   GitHubArchive
		wantErr   string
	}{
		{"tarball with token", "s3cret", false, GitHubArchive{"acme", "web", "c0ffee", "tar"}, ""},
		{"zipball", "s3cret", false, GitHubArchive{"acme", "web", "c0ffee", "zip"}, ""},
		{"retry after 502", "s3cret", true, GitHubArchive{"acme", "web", "c0ffee", "tar"}, ""},
		{"wrong token", "nope", false, GitHubArchive{"acme", "web", "c0ffee", "tar"}, "HTTP 401"},
		{"missing commit", "s3cret", false, GitHubArchive{"acme", "web", "dead", "tar"}, "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failFirst, served = tt.failFirst, 0
			dst := filepath.Join(t.TempDir(), "bundle.tar")
			err := GitHub(context.Background(), GitHubOptions{
				APIURL:      srv.URL,
				HTTPClient:  srv.Client(),
				Token:       tt.token,
				RetryDelays: []time.Duration{time.Millisecond, time.Millisecond},
			}, tt.archive, dst)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dst)
			if !bytes.Equal(got, tarball) {
				t.Fatalf("content = %q", got)
			}
		})
	}
}

func TestInline(t *testing.T) {
	content := "version: 0.0\nos: linux\n"
	sum := sha256.Sum256([]byte(content))
	good := hex.EncodeToString(sum[:])
	tests := []struct {
		name, sha, file, wantErr string
	}{
		{"no checksum", "", "appspec.yml", ""},
		{"checksum upper case", strings.ToUpper(good), "appspec.yml", ""},
		{"nested file name", good, "deploy/appspec.yaml", ""},
		{"checksum mismatch", strings.Repeat("0", 64), "appspec.yml", "SHA-256 mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Inline(content, tt.sha, dir, tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil || string(got) != content {
				t.Fatalf("file = %q, %v", got, err)
			}
		})
	}
}
