package revstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/sigv4"
)

const (
	writerID, writerSecret = "AKIAWRITER0000000001", "writer-secret-0000000000000000000000000"
	readerID, readerSecret = "AKIAREADER0000000001", "reader-secret-0000000000000000000000000"
)

// keyTable is the key store seen through sigv4.KeyLookup: the reader key
// stands for an agent's host key, which may only read.
func keyTable(_ context.Context, id string) (sigv4.Credentials, error) {
	switch id {
	case writerID:
		return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: writerSecret, Account: "000000000000", PrincipalARN: "arn:aws:iam::000000000000:user/writer"}, nil
	case readerID:
		return sigv4.Credentials{AccessKeyID: id, SecretAccessKey: readerSecret, Account: "000000000000", PrincipalARN: "arn:aws:iam::000000000000:user/host"}, nil
	}
	return sigv4.Credentials{}, sigv4.ErrUnknownKey
}

func onlyWriterWrites(_ context.Context, id sigv4.Identity, write bool) error {
	if write && id.AccessKeyID != writerID {
		return errors.New("read-only key")
	}
	return nil
}

type fixture struct {
	dir   string
	store *Store
	srv   *httptest.Server
	// payloads records each request's X-Amz-Content-Sha256 as received.
	mu       sync.Mutex
	payloads []string
}

func start(t *testing.T, tls bool, mutate ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.open(t, tls, mutate...)
	return f
}

func (f *fixture) open(t *testing.T, tls bool, mutate ...func(*Config)) {
	t.Helper()
	cfg := Config{Dir: f.dir, Keys: sigv4.KeyLookupFunc(keyTable), Authorize: onlyWriterWrites,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mutate {
		m(&cfg)
	}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.payloads = append(f.payloads, r.Header.Get("X-Amz-Content-Sha256"))
		f.mu.Unlock()
		st.ServeHTTP(w, r)
	})
	if tls {
		f.srv = httptest.NewTLSServer(h)
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
}

func (f *fixture) client(id, secret string) *s3.Client {
	o := s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:     aws.NopRetryer{},
		HTTPClient:  f.srv.Client(),
	}
	return s3.New(o)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, c *s3.Client, bucket, key string) ([]byte, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, aws.ToString(out.ETag)
}

// TestRoundTrip stores objects with a real SDK client, plainly and over TLS
// (where the SDK sends aws-chunked bodies with a trailing checksum), in one
// PUT and as a multipart upload, reads them back, and finds them again
// after the store is reopened.
func TestRoundTrip(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			ctx := context.Background()
			f := start(t, tls)
			w := f.client(writerID, writerSecret)
			if _, err := w.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
				t.Fatal(err)
			}
			small := []byte("version: 0.0\nos: linux\n")
			put, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String("app/v1 (copy).zip"), Body: bytes.NewReader(small)})
			if err != nil {
				t.Fatal(err)
			}
			// Parts: two of the 5 MiB minimum and a short last one.
			big := randomBytes(t, 10<<20+123)
			mp, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("revs"), Key: aws.String("app/big.zip")})
			if err != nil {
				t.Fatal(err)
			}
			var parts []s3types.CompletedPart
			for i, off := int32(1), 0; off < len(big); i, off = i+1, off+5<<20 {
				end := min(off+5<<20, len(big))
				up, err := w.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("revs"), Key: aws.String("app/big.zip"), UploadId: mp.UploadId,
					PartNumber: aws.Int32(i), Body: bytes.NewReader(big[off:end])})
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				parts = append(parts, s3types.CompletedPart{PartNumber: aws.Int32(i), ETag: up.ETag})
			}
			done, err := w.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("revs"), Key: aws.String("app/big.zip"),
				UploadId: mp.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
			if err != nil {
				t.Fatal(err)
			}
			if tls {
				f.mu.Lock()
				seen := strings.Join(f.payloads, " ")
				f.mu.Unlock()
				// aws-sdk-go-v2 leaves seekable bodies unsigned over TLS;
				// botocore's aws-chunked bodies are tested in
				// internal/clitest and TestWireRefusals.
				if !strings.Contains(seen, unsignedPayload) {
					t.Errorf("the SDK sent no %s body over TLS (payloads %s): that path went untested", unsignedPayload, seen)
				}
			}

			check := func(c *s3.Client) {
				t.Helper()
				if b, etag := get(t, c, "revs", "app/v1 (copy).zip"); !bytes.Equal(b, small) || etag != aws.ToString(put.ETag) {
					t.Errorf("small object: %q etag %s, put said %s", b, etag, aws.ToString(put.ETag))
				}
				// The agent compares the ETag `aws deploy push` registered
				// (from CompleteMultipartUpload) with the one GET returns.
				if b, etag := get(t, c, "revs", "app/big.zip"); !bytes.Equal(b, big) || etag != aws.ToString(done.ETag) {
					t.Errorf("multipart object: %d bytes (want %d), etag %s, complete said %s", len(b), len(big), etag, aws.ToString(done.ETag))
				}
				list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("revs"), Prefix: aws.String("app/")})
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, o := range list.Contents {
					keys = append(keys, aws.ToString(o.Key))
				}
				if strings.Join(keys, ",") != "app/big.zip,app/v1 (copy).zip" {
					t.Errorf("list: %v", keys)
				}
			}
			check(w)
			check(f.client(readerID, readerSecret))

			f.srv.Close()
			f.open(t, tls)
			check(f.client(readerID, readerSecret))
		})
	}
}

// TestRefusals: every bad request gets S3's error and changes nothing.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	f := start(t, false, func(c *Config) { c.MaxObjectSize = 1 << 10 })
	w := f.client(writerID, writerSecret)
	if _, err := w.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String("a"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	put := func(c *s3.Client, key string, body []byte) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	tests := []struct {
		name, want string
		do         func() error
		missing    string // key that must not exist afterwards
	}{
		{"host key writes", "AccessDenied", func() error { return put(f.client(readerID, readerSecret), "b", []byte("x")) }, "b"},
		{"unknown key", "InvalidAccessKeyId", func() error { return put(f.client("AKIAUNKNOWN000000001", writerSecret), "b", []byte("x")) }, "b"},
		{"wrong secret", "SignatureDoesNotMatch", func() error {
			return put(f.client(writerID, "not-the-secret-000000000000000000000000"), "b", []byte("x"))
		}, "b"},
		{"wrong secret reads", "SignatureDoesNotMatch", func() error {
			_, err := f.client(readerID, writerSecret).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a")})
			return err
		}, ""},
		{"too large", "EntityTooLarge", func() error { return put(w, "b", make([]byte, 1<<10+1)) }, "b"},
		{"dot-dot segment", "InvalidArgument", func() error { return put(w, "x/../b", []byte("x")) }, "b"},
		{"empty segment", "InvalidArgument", func() error { return put(w, "x//b", []byte("x")) }, "x"},
		{"object under an object", "InvalidArgument", func() error { return put(w, "a/b", []byte("x")) }, "a/b"},
		{"no such bucket", "NoSuchBucket", func() error {
			_, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nope"), Key: aws.String("k"), Body: strings.NewReader("x")})
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if got := errorCode(err); got != tt.want {
				t.Fatalf("got %v (code %q), want %s", err, got, tt.want)
			}
			if tt.missing != "" {
				_, err := w.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("revs"), Key: aws.String(tt.missing)})
				var nf *s3types.NotFound
				if !errors.As(err, &nf) {
					t.Errorf("%s exists after the refused request (head: %v)", tt.missing, err)
				}
			}
		})
	}
	if b, _ := get(t, w, "revs", "a"); string(b) != "x" {
		t.Errorf("object a changed: %q", b)
	}
	if _, err := w.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a/b")}); errorCode(err) != "NoSuchKey" {
		t.Errorf("get under an object: %v", err)
	}
}

// TestWireRefusals sends requests the SDK would not: signed with the real
// SigV4 signer but with bodies that do not match what was signed or
// declared, and unsigned ones.
func TestWireRefusals(t *testing.T) {
	f := start(t, false)
	w := f.client(writerID, writerSecret)
	if _, err := w.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
		t.Fatal(err)
	}
	sum := func(b string) string { s := sha256.Sum256([]byte(b)); return hex.EncodeToString(s[:]) }
	chunked := func(data, trailer string) string {
		return fmt.Sprintf("%x\r\n%s\r\n0\r\n%s\r\n\r\n", len(data), data, trailer)
	}
	tests := []struct {
		name, payloadHash, body, want string
		status                        int
		header                        map[string]string
		unsigned                      bool
	}{
		{name: "body differs from signed hash", payloadHash: sum("signed"), body: "tampered", want: "XAmzContentSHA256Mismatch", status: 400},
		{name: "chunk-signed upload", payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", body: "x", want: "NotImplemented", status: 501},
		{name: "not a digest", payloadHash: "abc", body: "x", want: "InvalidArgument", status: 400},
		{name: "trailer checksum wrong", payloadHash: unsignedTrailer, body: chunked("hello", "x-amz-checksum-crc32:AAAAAA=="), want: "BadDigest", status: 400,
			header: map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "5"}},
		{name: "trailer missing", payloadHash: unsignedTrailer, body: chunked("hello", ""), want: "IncompleteBody", status: 400,
			header: map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "5"}},
		{name: "chunk longer than declared", payloadHash: unsignedTrailer, body: "2\r\nhello\r\n0\r\n\r\n", want: "IncompleteBody", status: 400,
			header: map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "2"}},
		{name: "unsigned", unsigned: true, body: "x", want: "AccessDenied", status: 403},
		{name: "aws-chunked with the right checksum", payloadHash: unsignedTrailer, body: chunked("hello", "x-amz-checksum-crc32:"+crc32Base64("hello")), status: 200,
			header: map[string]string{"Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32", "X-Amz-Decoded-Content-Length": "5"}},
	}
	signer := v4.NewSigner()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, f.srv.URL+"/revs/k", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if !tt.unsigned {
				req.Header.Set("X-Amz-Content-Sha256", tt.payloadHash)
				creds := aws.Credentials{AccessKeyID: writerID, SecretAccessKey: writerSecret}
				if err := signer.SignHTTP(context.Background(), creds, req, tt.payloadHash, "s3", "us-east-1", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || tt.want != "" && !strings.Contains(string(b), "<Code>"+tt.want+"</Code>") {
				t.Fatalf("status %d body %s, want %d %s", resp.StatusCode, b, tt.status, tt.want)
			}
			if tt.want == "" {
				if got, _ := get(t, w, "revs", "k"); string(got) != "hello" {
					t.Fatalf("stored %q, want the decoded body", got)
				}
				return
			}
			_, err = w.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("revs"), Key: aws.String("k")})
			var nf *s3types.NotFound
			if !errors.As(err, &nf) {
				t.Errorf("object stored after the refused request (head: %v)", err)
			}
		})
	}
}

// TestCrashLeftovers: half-written files from a crash are removed at start
// and never listed.
func TestCrashLeftovers(t *testing.T) {
	f := start(t, false)
	w := f.client(writerID, writerSecret)
	ctx := context.Background()
	if _, err := w.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
		t.Fatal(err)
	}
	f.srv.Close()
	for _, p := range []string{filepath.Join(f.dir, partialDir, "torn"), filepath.Join(f.dir, "spool", "upload-1")} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.open(t, false)
	for _, d := range []string{partialDir, "spool"} {
		if ents, err := os.ReadDir(filepath.Join(f.dir, d)); err != nil || len(ents) != 0 {
			t.Errorf("%s after restart: %v %v", d, ents, err)
		}
	}
	list, err := f.client(writerID, writerSecret).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("revs")})
	if err != nil || len(list.Contents) != 0 {
		t.Errorf("list: %v %v", list, err)
	}
}

func crc32Base64(s string) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.ChecksumIEEE([]byte(s)))
	return base64.StdEncoding.EncodeToString(b[:])
}

func TestIsS3Request(t *testing.T) {
	tests := []struct {
		name, method, path string
		header             map[string]string
		want               bool
	}{
		{"json api", "POST", "/", map[string]string{"X-Amz-Target": "CodeDeploy_20141006.ListApplications",
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00"}, false},
		{"s3 list buckets", "GET", "/", map[string]string{
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}, true},
		{"s3 object", "PUT", "/b/k", map[string]string{
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}, true},
		{"unsigned bucket path", "GET", "/b/k", nil, true},
		{"agent start-up check", "GET", "/", nil, false},
		{"health", "GET", "/healthz", nil, false},
		{"readiness", "GET", "/readyz", nil, false},
		{"metrics", "GET", "/metrics", nil, false},
		{"dashboard", "GET", "/ui/deployments/d-1", nil, false},
		{"dashboard root", "GET", "/ui", nil, false},
		{"bucket named like a page, signed", "GET", "/ui/k", map[string]string{
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"}, true},
		{"unsigned bucket named uix", "GET", "/uix/k", nil, true},
		{"json without target", "POST", "/", map[string]string{
			"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=00"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := IsS3Request(r); got != tt.want {
				t.Errorf("IsS3Request = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMultipartOnDisk: parts are files, so an upload survives a restart and
// completes into the object; listing, aborting and bad completions answer
// as S3 does.
func TestMultipartOnDisk(t *testing.T) {
	ctx := context.Background()
	f := start(t, false)
	w := f.client(writerID, writerSecret)
	if _, err := w.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("revs")}); err != nil {
		t.Fatal(err)
	}
	bucket, key := aws.String("revs"), aws.String("app/big.zip")
	mp, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 5<<20+10)
	chunks := [][]byte{data[:5<<20], data[5<<20:]}
	var parts []s3types.CompletedPart
	for i, c := range chunks {
		up, err := w.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: mp.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(c)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s3types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag})
	}

	f.srv.Close()
	f.open(t, false)
	w = f.client(writerID, writerSecret)

	ups, err := w.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket})
	if err != nil || len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != aws.ToString(mp.UploadId) {
		t.Fatalf("uploads after restart: %+v %v", ups, err)
	}
	lp, err := w.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: mp.UploadId})
	if err != nil || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[1].Size) != 10 {
		t.Fatalf("parts after restart: %+v %v", lp, err)
	}
	complete := func(id *string, ps []s3types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return w.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: id,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: ps}})
	}
	wrongETag := []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"00000000000000000000000000000000"`)}}
	if _, err := complete(mp.UploadId, wrongETag); errorCode(err) != "InvalidPart" {
		t.Errorf("complete with a wrong ETag: %v", err)
	}
	if _, err := complete(mp.UploadId, []s3types.CompletedPart{parts[1], parts[0]}); errorCode(err) != "InvalidPartOrder" {
		t.Errorf("complete out of order: %v", err)
	}
	if _, err := complete(aws.String("../../buckets/revs"), parts); errorCode(err) != "NoSuchUpload" {
		t.Errorf("complete with a path as upload id: %v", err)
	}
	done, err := complete(mp.UploadId, parts)
	if err != nil {
		t.Fatal(err)
	}
	if b, etag := get(t, w, "revs", "app/big.zip"); !bytes.Equal(b, data) || etag != aws.ToString(done.ETag) {
		t.Errorf("object: %d bytes (want %d), etag %s, complete said %s", len(b), len(data), etag, aws.ToString(done.ETag))
	}
	if _, err := complete(mp.UploadId, parts); errorCode(err) != "NoSuchUpload" {
		t.Errorf("second completion: %v", err)
	}

	ab, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("gone")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String("gone"), UploadId: ab.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String("gone"), UploadId: ab.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("x")}); errorCode(err) != "NoSuchUpload" {
		t.Errorf("part after abort: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.dir, "multipart")); len(ents) != 0 {
		t.Errorf("multipart directory not empty after completion and abort: %v", ents)
	}
}
