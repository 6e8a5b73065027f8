// Package fetch downloads deployment bundles: S3 objects, GitHub archives and
// Cutover's inline appspec revisions.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Options configures the S3 client used for bundle downloads.
type S3Options struct {
	Endpoint    string // full URL; "" means the AWS default for Region
	PathStyle   bool
	Region      string
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client
}

// S3Object names one revision in S3.
type S3Object struct {
	Bucket, Key, Version, ETag string
}

// S3Result describes what was downloaded.
type S3Result struct {
	ETag    string // as returned by S3, quotes stripped
	Version string
}

// S3 streams the object to dst (§6.2). When obj.ETag is set it must match the
// response ETag after removing all double quotes, as the official agent
// compares them.
func S3(ctx context.Context, o S3Options, obj S3Object, dst string) (S3Result, error) {
	so := s3.Options{
		Region:       o.Region,
		Credentials:  o.Credentials,
		UsePathStyle: o.PathStyle,
		BaseEndpoint: nonEmpty(o.Endpoint),
		// A bundle is verified by its ETag; a checksum the server may not
		// send must not fail the download.
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if o.HTTPClient != nil {
		// Assigned only when set: a nil *http.Client in the interface field
		// would not be replaced by the SDK default.
		so.HTTPClient = o.HTTPClient
	}
	client := s3.New(so)
	in := &s3.GetObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key)}
	if obj.Version != "" {
		in.VersionId = aws.String(obj.Version)
	}
	out, err := client.GetObject(ctx, in)
	if err != nil {
		return S3Result{}, fmt.Errorf("download s3://%s/%s: %w", obj.Bucket, obj.Key, err)
	}
	defer out.Body.Close()
	res := S3Result{ETag: stripQuotes(aws.ToString(out.ETag)), Version: aws.ToString(out.VersionId)}
	if obj.ETag != "" && stripQuotes(obj.ETag) != res.ETag {
		return res, fmt.Errorf("download s3://%s/%s: ETag mismatch: expected %s, got %s", obj.Bucket, obj.Key, stripQuotes(obj.ETag), res.ETag)
	}
	if err := writeFile(dst, out.Body); err != nil {
		return res, fmt.Errorf("download s3://%s/%s: %w", obj.Bucket, obj.Key, err)
	}
	return res, nil
}

// GitHubOptions configures GitHub archive downloads.
type GitHubOptions struct {
	APIURL      string       // default https://api.github.com
	HTTPClient  *http.Client // default http.DefaultClient; must follow redirects
	Token       string       // "" downloads anonymously
	RetryDelays []time.Duration
}

// DefaultGitHubRetryDelays are the official agent's waits between attempts.
var DefaultGitHubRetryDelays = []time.Duration{10 * time.Second, 30 * time.Second, 90 * time.Second}

// GitHubArchive names one commit's archive.
type GitHubArchive struct {
	Account, Repository, CommitID string
	BundleType                    string // "tar" (tarball) or "zip" (zipball)
}

// GitHub downloads GET <api>/repos/<account>/<repo>/{tarball|zipball}/<commit>
// to dst, following redirects. net/http drops the Authorization header when
// a redirect leaves the API host, which is what GitHub's signed codeload
// redirect expects.
func GitHub(ctx context.Context, o GitHubOptions, a GitHubArchive, dst string) error {
	api := o.APIURL
	if api == "" {
		api = "https://api.github.com"
	}
	kind := "tarball"
	if a.BundleType == "zip" {
		kind = "zipball"
	}
	u := strings.TrimRight(api, "/") + "/repos/" + url.PathEscape(a.Account) + "/" + url.PathEscape(a.Repository) + "/" + kind + "/" + url.PathEscape(a.CommitID)
	hc := o.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	delays := o.RetryDelays
	if delays == nil {
		delays = DefaultGitHubRetryDelays
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = githubOnce(ctx, hc, u, o.Token, dst)
		var perm permanentError
		if err == nil || errors.As(err, &perm) || attempt >= len(delays) {
			break
		}
		t := time.NewTimer(delays[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("download %s: %w", u, ctx.Err())
		case <-t.C:
		}
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", u, err)
	}
	return nil
}

type permanentError struct{ error }

func githubOnce(ctx context.Context, hc *http.Client, u, token, dst string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return permanentError{err}
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized {
			return permanentError{err}
		}
		return err
	}
	return writeFile(dst, resp.Body)
}

// Inline writes the appspec text of a String or AppSpecContent revision to
// <archiveDir>/<appSpecFilename>, checking its SHA-256 first when given.
func Inline(content, sha256Hex, archiveDir, appSpecFilename string) error {
	if sha256Hex != "" {
		sum := sha256.Sum256([]byte(content))
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, sha256Hex) {
			return fmt.Errorf("inline revision: SHA-256 mismatch: expected %s, got %s", sha256Hex, got)
		}
	}
	dst := filepath.Join(archiveDir, filepath.FromSlash(appSpecFilename))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("inline revision: %w", err)
	}
	if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
		return fmt.Errorf("inline revision: %w", err)
	}
	return nil
}

func writeFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return f.Close()
}

func stripQuotes(s string) string { return strings.ReplaceAll(s, `"`, "") }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
