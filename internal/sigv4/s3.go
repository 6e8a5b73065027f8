package sigv4

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// VerifyS3 checks the signature of an S3 request, whose body the caller has
// not read. S3 differs from the JSON services in two ways that matter here:
// the payload hash is the X-Amz-Content-Sha256 header as sent (a hex digest,
// UNSIGNED-PAYLOAD or a STREAMING-* marker), and the canonical URI is the
// path encoded once, never normalised, because the path names the object.
//
// A verified signature covers the header, not the body: the caller must
// check that the body it reads hashes to the signed value before acting on
// it, and decide which of the non-digest markers it accepts.
func (v *Verifier) VerifyS3(ctx context.Context, r *http.Request) (Identity, error) {
	return v.verify(ctx, r, nil, true)
}

func s3PayloadHash(r *http.Request) (string, *Error) {
	vs := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(vs) == 0 || vs[0] == "":
		return "", incomplete("Missing required header for this request: x-amz-content-sha256")
	case len(vs) > 1:
		return "", incomplete("Request has more than one 'x-amz-content-sha256' header.")
	}
	return vs[0], nil
}

// s3CanonicalURIs returns the one canonical URI of an S3 request: each
// segment of the path as sent, decoded and encoded again with SigV4's
// rules, so "%7e" and "~" agree while "a/../b" stays three segments.
func s3CanonicalURIs(r *http.Request) []string {
	raw := r.URL.EscapedPath()
	if raw == "" {
		return []string{"/"}
	}
	segs := strings.Split(raw, "/")
	for i, s := range segs {
		if d, err := url.PathUnescape(s); err == nil {
			segs[i] = strings.ReplaceAll(escapePath(d), "/", "%2F")
		}
	}
	return []string{strings.Join(segs, "/")}
}
