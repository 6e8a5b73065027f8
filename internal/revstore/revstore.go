// Package revstore is Cutover's embedded revision store: an S3-compatible
// endpoint, persistent in the server's data directory, that `aws s3 cp`,
// `aws deploy push` and the agent's bundle download talk to unchanged.
//
// The S3 protocol is gofakes3's and the storage its s3afero backend: one
// file per object under <dir>/buckets/<bucket>/<key>, metadata as JSON under
// <dir>/metadata. Files, rather than gofakes3's bbolt backend, because
// bundles are large and fetched by many agents at once: a file is streamed
// from disk, where bbolt would hold every object in memory for each read.
// Multipart uploads are files as well (see backend). This package adds
// what a service exposed to a network needs around them: SigV4
// authentication with Cutover's access keys, authorisation, verified and
// bounded request bodies, atomic writes, and keys checked before they
// become file names.
package revstore

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/cutoverhq/cutover/internal/logging"
	"github.com/cutoverhq/cutover/internal/sigv4"
)

// SigningName is the SigV4 service name S3 clients sign with.
const SigningName = "s3"

// DefaultMaxObjectSize bounds one uploaded object or part.
const DefaultMaxObjectSize = 5 << 30

// maxXMLBody bounds the bodies of requests other than uploads.
const maxXMLBody = 2 << 20

// Config configures a Store.
type Config struct {
	// Dir holds the objects; it is created when missing.
	Dir string
	// Keys resolves access keys (the server's key store).
	Keys sigv4.KeyLookup
	// Authorize decides whether an authenticated caller may read (GET,
	// HEAD) or write (everything else); nil lets every valid key do both.
	// An error is answered as AccessDenied with its text appended.
	Authorize func(ctx context.Context, id sigv4.Identity, write bool) error
	// MaxObjectSize bounds each request body; default DefaultMaxObjectSize.
	MaxObjectSize int64
	// AutoBucket creates a bucket on first use instead of answering
	// NoSuchBucket (cutover dev, where pipelines name their own buckets).
	AutoBucket bool
	// Account returns the account of an authenticated caller. With it,
	// buckets are owned by the account that created them, and other
	// accounts are answered AccessDenied; nil serves every bucket to
	// every key (a single-tenant store).
	Account func(ctx context.Context, id sigv4.Identity) (string, error)
	// DefaultOwner owns the buckets created before buckets had owners
	// (and those CreateBucket makes for no account).
	DefaultOwner string
	Logger       *slog.Logger
	Now          func() time.Time
}

// Store serves the S3 protocol over the revision files.
type Store struct {
	cfg      Config
	log      *slog.Logger
	verifier *sigv4.Verifier
	backend  *backend
	buckets  afero.Fs
	s3       http.Handler
	spoolDir string
}

// New opens (or creates) the store in cfg.Dir.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" || cfg.Keys == nil {
		return nil, errors.New("revstore: Dir and Keys are required")
	}
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = DefaultMaxObjectSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, log: cfg.Logger, spoolDir: filepath.Join(cfg.Dir, "spool")}
	// Leftovers of a crash are incomplete by construction.
	for _, d := range []string{s.spoolDir, filepath.Join(cfg.Dir, partialDir)} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("revstore: %w", err)
		}
	}
	for _, d := range []string{s.spoolDir, filepath.Join(cfg.Dir, partialDir), filepath.Join(cfg.Dir, "multipart"), filepath.Join(cfg.Dir, ownersDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("revstore: %w", err)
		}
	}
	root := atomicFs{afero.NewBasePathFs(afero.NewOsFs(), cfg.Dir)}
	files, err := s3afero.MultiBucket(root)
	if err != nil {
		return nil, fmt.Errorf("revstore: %w", err)
	}
	s.backend = &backend{MultiBucketBackend: files, dir: filepath.Join(cfg.Dir, "multipart"), partial: filepath.Join(cfg.Dir, partialDir), now: cfg.Now}
	s.buckets = afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(cfg.Dir, "buckets"))
	s.verifier = &sigv4.Verifier{Keys: cfg.Keys, Services: []string{SigningName}, Now: cfg.Now}
	s.s3 = gofakes3.New(s.backend,
		gofakes3.WithAutoBucket(cfg.AutoBucket),
		gofakes3.WithTimeSource(clock(cfg.Now)),
		gofakes3.WithLogger(logging.S3(cfg.Logger)),
	).Server()
	return s, nil
}

// IsS3Request tells an S3 request from the CodeDeploy JSON protocol when
// both arrive on one listener: JSON requests name their operation in
// X-Amz-Target and sign for a CodeDeploy service; S3 requests sign for
// "s3", or, unsigned, address a bucket path rather than "/".
func IsS3Request(r *http.Request) bool {
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if svc, ok := sigv4.ScopeService(r); ok {
		return svc == SigningName
	}
	return !serverPath(r.URL.Path)
}

// serverPath reports whether an unsigned request's path belongs to the
// server itself (health, CA, metrics, the dashboard) rather than to a
// bucket. Signed S3 requests always reach the store, so a bucket with one
// of these names still works for S3 clients.
func serverPath(p string) bool {
	switch p {
	case "/", "/healthz", "/readyz", "/ca.pem", "/metrics", "/ui":
		return true
	}
	return strings.HasPrefix(p, "/ui/")
}

// Accepted payload markers besides a hex digest. Chunk-signed uploads
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) would need every chunk's signature
// checked; no client this store serves sends them, so they are refused
// rather than accepted unchecked.
var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// maxResponseTime bounds how long one response may take to send: a 5 GiB
// object at 1.5 MB/s. The server has no write timeout (agents long-poll
// on the same listener), so without it a client that stops reading would
// hold its connection forever.
const maxResponseTime = time.Hour

func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(maxResponseTime))
	// The deadline would outlive the request on a kept-alive connection.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	if e := s.serve(w, r); e != nil {
		if e.Status >= 500 {
			s.log.Error("revision store", "method", r.Method, "path", r.URL.Path, "err", e.err)
		}
		writeError(w, r, e)
	}
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request) *s3Error {
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if strings.HasPrefix(payload, "STREAMING-") && payload != unsignedTrailer {
		return &s3Error{Code: "NotImplemented", Status: http.StatusNotImplemented,
			Message: fmt.Sprintf("x-amz-content-sha256 %s is not supported by this store; sign the payload, or use UNSIGNED-PAYLOAD or %s.", payload, unsignedTrailer)}
	}
	id, err := s.verifier.VerifyS3(r.Context(), r)
	if err != nil {
		return authError(err)
	}
	if payload != unsignedPayload && payload != unsignedTrailer && !hexDigest.MatchString(payload) {
		return &s3Error{Code: "InvalidArgument", Status: http.StatusBadRequest, Message: "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, " + unsignedTrailer + " or a SHA256 value."}
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(r.Context(), id, write); err != nil {
			return &s3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied: " + err.Error()}
		}
	}
	key, e := s.checkPath(r, write)
	if e != nil {
		return e
	}
	if s.cfg.Account != nil {
		account, err := s.cfg.Account(r.Context(), id)
		if err != nil {
			return &s3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied: " + err.Error()}
		}
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if bucket == "" {
			if r.Method == http.MethodGet {
				return s.listBuckets(w, account)
			}
		} else if e := s.checkOwner(r, bucket, account); e != nil {
			return e
		}
	}
	// Only object and part uploads carry data; every other body is a small
	// XML document (a CompleteMultipartUpload of 10,000 parts is under 1 MiB).
	limit := int64(maxXMLBody)
	if r.Method == http.MethodPut && key != "" && r.Header.Get("X-Amz-Copy-Source") == "" {
		limit = s.cfg.MaxObjectSize
	}
	if r.ContentLength != 0 || payload == unsignedTrailer {
		// An aws-chunked body may come with Transfer-Encoding: chunked
		// (botocore over HTTPS); it then declares its decoded length.
		length := r.ContentLength
		if payload == unsignedTrailer {
			n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
			if err != nil || n < 0 {
				return &s3Error{Code: "MissingContentLength", Status: http.StatusLengthRequired, Message: "You must provide the x-amz-decoded-content-length header with an aws-chunked body."}
			}
			length = n
		}
		if length < 0 {
			return &s3Error{Code: "MissingContentLength", Status: http.StatusLengthRequired, Message: "You must provide the Content-Length HTTP header."}
		}
		if length > limit {
			return tooLarge(limit)
		}
		// Bound the time a client may take to send: a minute plus 64 KiB/s.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(time.Minute + time.Duration(length/(64<<10))*time.Second))
		sp, e := spool(r, s.spoolDir, limit, payload)
		_ = rc.SetReadDeadline(time.Time{})
		if e != nil {
			return e
		}
		defer sp.discard()
		r.Body = sp.file
		r.ContentLength = sp.size
		r.Header.Set("Content-Length", strconv.FormatInt(sp.size, 10))
		r.Header.Set("X-Amz-Content-Sha256", sp.sha)
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("X-Amz-Trailer")
		if ce := withoutAWSChunked(r.Header.Get("Content-Encoding")); ce != "" {
			r.Header.Set("Content-Encoding", ce)
		} else {
			r.Header.Del("Content-Encoding")
		}
	}
	s.s3.ServeHTTP(w, r)
	return nil
}

func withoutAWSChunked(ce string) string {
	var keep []string
	for _, v := range strings.Split(ce, ",") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "aws-chunked") {
			keep = append(keep, v)
		}
	}
	return strings.Join(keep, ",")
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$`)

// checkPath refuses buckets and keys that cannot be stored as files under
// the bucket's directory: "." and ".." segments would name another place,
// empty segments and over-long ones cannot be file names, and a key cannot
// be both an object and a "directory" of other objects.
func (s *Store) checkPath(r *http.Request, write bool) (key string, _ *s3Error) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" {
		return "", nil
	}
	if !bucketName.MatchString(bucket) {
		return "", &s3Error{Code: "InvalidBucketName", Status: http.StatusBadRequest, Message: "The specified bucket is not valid."}
	}
	if key == "" {
		return "", nil
	}
	if len(key) > 1024 {
		return "", &s3Error{Code: "KeyTooLongError", Status: http.StatusBadRequest, Message: "Your key is too long."}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > 255 {
			return "", &s3Error{Code: "InvalidArgument", Status: http.StatusBadRequest,
				Message: fmt.Sprintf("This store keeps objects as files: key %q must not have empty, '.' or '..' segments or segments over 255 bytes.", key)}
		}
	}
	creates := r.Method == http.MethodPut && !r.URL.Query().Has("uploadId") || r.Method == http.MethodPost && r.URL.Query().Has("uploads")
	if creates {
		if fi, err := s.buckets.Stat(filepath.Join(bucket, key)); err == nil && fi.IsDir() {
			return "", conflict(key, key+"/…")
		}
	}
	segs := strings.Split(key, "/")
	for i := 1; i < len(segs); i++ {
		p := strings.Join(segs[:i], "/")
		if fi, err := s.buckets.Stat(filepath.Join(bucket, p)); err != nil || fi.IsDir() {
			continue
		}
		// An object's name is a prefix of key: key cannot exist.
		switch {
		case creates:
			return "", conflict(key, p)
		case r.Method == http.MethodDelete: // as S3 answers for a missing key
			return "", &s3Error{Status: http.StatusNoContent}
		case !write:
			return "", &s3Error{Code: "NoSuchKey", Status: http.StatusNotFound, Message: "The specified key does not exist."}
		}
	}
	return key, nil
}

func conflict(key, other string) *s3Error {
	return &s3Error{Code: "InvalidArgument", Status: http.StatusConflict,
		Message: fmt.Sprintf("This store keeps objects as files: key %q cannot coexist with %q.", key, other)}
}

// s3Error is an S3 error response; one without Code is a bare status.
type s3Error struct {
	Code    string
	Message string
	Status  int
	err     error // logged for 5xx, never shown
}

func internalError(err error) *s3Error {
	return &s3Error{Code: "InternalError", Status: http.StatusInternalServerError, Message: "We encountered an internal error. Please try again.", err: err}
}

func (e *s3Error) Error() string { return e.Code + ": " + e.Message }

func writeError(w http.ResponseWriter, r *http.Request, e *s3Error) {
	if e.Code == "" {
		w.WriteHeader(e.Status)
		return
	}
	body, _ := xml.Marshal(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string
		Message string
	}{Code: e.Code, Message: e.Message})
	w.Header().Set("Content-Type", "application/xml")
	if r.Method != http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(xml.Header))
		_, _ = w.Write(body)
	}
}

// authError maps a SigV4 failure to the error S3 answers with.
func authError(err error) *s3Error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return internalError(err)
	}
	switch se.Code {
	case sigv4.CodeMissingAuthenticationToken:
		return &s3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied: sign requests with a Cutover access key (SigV4, service s3)."}
	case sigv4.CodeUnrecognizedClient:
		return &s3Error{Code: "InvalidAccessKeyId", Status: http.StatusForbidden, Message: "The AWS Access Key Id you provided does not exist in our records."}
	case sigv4.CodeInvalidSignature:
		switch {
		case strings.HasPrefix(se.Message, "Signature expired"), strings.HasPrefix(se.Message, "Signature not yet current"):
			return &s3Error{Code: "RequestTimeTooSkewed", Status: http.StatusForbidden, Message: "The difference between the request time and the current time is too large. " + se.Message}
		case strings.HasPrefix(se.Message, "Credential should be scoped to correct service"):
			return &s3Error{Code: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest, Message: "The authorization header is malformed; the credential scope's service must be \"s3\"."}
		}
		return &s3Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden, Message: se.Message}
	}
	if strings.Contains(se.Message, "presigned") {
		return &s3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: se.Message}
	}
	if strings.Contains(se.Message, "x-amz-content-sha256") {
		return &s3Error{Code: "InvalidRequest", Status: http.StatusBadRequest, Message: se.Message}
	}
	return &s3Error{Code: "AuthorizationHeaderMalformed", Status: http.StatusBadRequest, Message: se.Message}
}

type clock func() time.Time

func (c clock) Now() time.Time                  { return c() }
func (c clock) Since(t time.Time) time.Duration { return c().Sub(t) }
