// Package sigv4 verifies AWS Signature Version 4 (header form) on incoming
// requests, so that unmodified AWS SDKs and the AWS CLI can authenticate to
// Cutover with their usual access keys.
//
// Only the Authorization-header form is supported; presigned (query-string)
// requests are refused with IncompleteSignatureException. Failures are
// reported as *Error values carrying the error code, message and HTTP status
// AWS's JSON services use, so clients react to them exactly as they would to
// AWS.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Credentials is an access key as stored by the server.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// Account is the 12-digit account ID the key belongs to.
	Account string
	// PrincipalARN identifies the caller, e.g. arn:aws:iam::123456789012:user/alice.
	PrincipalARN string
	// AnySignature accepts the key with any well-formed signature, its
	// secret being unknown: a local emulator's open mode, where throwaway
	// credentials (test/test) stand for the account's administrator. The
	// request must pass every other check.
	AnySignature bool
}

// KeyLookup resolves an access key ID to its credentials. It must return an
// error wrapping ErrUnknownKey when the key does not exist or is revoked;
// any other error is treated as a server fault.
type KeyLookup interface {
	LookupKey(ctx context.Context, accessKeyID string) (Credentials, error)
}

// KeyLookupFunc adapts a function to KeyLookup.
type KeyLookupFunc func(ctx context.Context, accessKeyID string) (Credentials, error)

// LookupKey calls f.
func (f KeyLookupFunc) LookupKey(ctx context.Context, accessKeyID string) (Credentials, error) {
	return f(ctx, accessKeyID)
}

// Identity is the authenticated caller of a verified request.
type Identity struct {
	// Credentials of the caller. SecretAccessKey is always empty: nothing
	// downstream of authentication needs it, and leaving it out keeps it
	// out of logs and request contexts.
	Credentials
	// Region and Service are from the credential scope the client signed.
	// Any region is accepted; resources are scoped by it.
	Region, Service string
}

// DefaultMaxSkew is the clock skew AWS tolerates between client and server.
const DefaultMaxSkew = 15 * time.Minute

// Verifier verifies SigV4-signed requests. Configure the exported fields
// before first use and do not change or copy the Verifier afterwards; it is
// safe for concurrent use.
type Verifier struct {
	// Keys resolves access keys. Required.
	Keys KeyLookup
	// Services are the signing names accepted in the credential scope, e.g.
	// "codedeploy", "codedeploy-commands", "codedeploy-commands-secure".
	// Required; the first is named in the wrong-service error message.
	Services []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is the accepted difference between the request time and Now;
	// zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// CacheSize bounds the derived signing-key cache; zero means 1024.
	CacheSize int

	cache keyCache
}

const (
	amzDateFormat   = "20060102T150405Z"
	shortDateFormat = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
)

// Verify checks the signature of r, whose body the caller has already read
// into body. On success it returns the caller's identity. Authentication
// failures are returned as *Error; other errors (a failing KeyLookup, a
// misconfigured Verifier, a cancelled ctx) are returned wrapped and should be
// answered as internal failures.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Identity, error) {
	return v.verify(ctx, r, body, false)
}

// verify is Verify and VerifyS3: s3 selects S3's rules for the payload hash
// and the canonical URI.
func (v *Verifier) verify(ctx context.Context, r *http.Request, body []byte, s3 bool) (Identity, error) {
	p, err := v.begin(ctx, r, s3)
	if err != nil {
		return Identity{}, err
	}
	return p.Finish(body)
}

// Pending is a request whose headers passed every check that does not need
// the body: the Authorization header's form, the credential scope, the date
// and its skew, and the access key. Finish completes the verification.
type Pending struct {
	v       *Verifier
	r       *http.Request
	a       authorization
	uris    []string
	stamp   string
	query   string
	creds   Credentials
	claimed string // X-Amz-Content-Sha256, if sent
	s3      bool   // the payload hash is claimed, not computed (S3 rules)
}

// Begin checks everything the headers of r can prove before its body is
// read, so that a server can refuse an unknown key, a foreign scope or a
// stale date without reading (or buffering) the body at all. The signature
// itself covers the payload hash, so Finish needs the body. Errors are as
// for Verify.
func (v *Verifier) Begin(ctx context.Context, r *http.Request) (*Pending, error) {
	return v.begin(ctx, r, false)
}

// begin is Begin, and for s3 the first step of VerifyS3: S3's rules for the
// payload hash and the canonical URI.
func (v *Verifier) begin(ctx context.Context, r *http.Request, s3 bool) (*Pending, error) {
	if v.Keys == nil || len(v.Services) == 0 {
		return nil, errors.New("sigv4: Verifier needs Keys and Services")
	}

	authz := r.Header.Values("Authorization")
	if len(authz) == 0 {
		q := r.URL.Query()
		if q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm") {
			return nil, incomplete("Query-string (presigned) authentication is not supported by this service; sign the request with an Authorization header.")
		}
		return nil, missingToken()
	}
	if len(authz) > 1 {
		return nil, incomplete("Request has more than one Authorization header.")
	}
	a, aerr := parseAuthorization(authz[0])
	if aerr != nil {
		return nil, aerr
	}

	reqTime, stamp, dateHeader, aerr := requestTime(r)
	if aerr != nil {
		return nil, aerr
	}
	// Unsigned Host or date headers would let a captured request be replayed
	// to another host or at another time, so both must be covered.
	if !slices.Contains(a.signedHeaders, "host") {
		return nil, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !slices.Contains(a.signedHeaders, dateHeader) {
		return nil, incomplete("'%s' must be a 'SignedHeader' in the AWS Authorization.", canonicalName(dateHeader))
	}

	if !slices.Contains(v.Services, a.service) {
		return nil, invalidSignature("Credential should be scoped to correct service: '%s'. ", v.Services[0])
	}
	if day := reqTime.Format(shortDateFormat); a.date != day {
		return nil, invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.date, day, canonicalName(dateHeader))
	}
	if err := v.checkSkew(reqTime); err != nil {
		return nil, err
	}

	p := &Pending{v: v, r: r, a: a, stamp: stamp, s3: s3}
	if s3 {
		if p.claimed, aerr = s3PayloadHash(r); aerr != nil {
			return nil, aerr
		}
		p.uris = s3CanonicalURIs(r)
	} else {
		// UNSIGNED-PAYLOAD is refused: for a JSON API the body is the whole
		// request, and leaving it unsigned would let anyone on the path
		// rewrite it.
		p.claimed = r.Header.Get("X-Amz-Content-Sha256")
		if p.claimed == unsignedPayload {
			return nil, invalidSignature("UNSIGNED-PAYLOAD is not accepted by this service; the request body must be signed.")
		}
		p.uris = canonicalURIs(r)
	}

	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidSignature("The query string is not correctly encoded: %v", err)
	}
	p.query = query

	creds, err := v.Keys.LookupKey(ctx, a.accessKeyID)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return nil, unrecognized()
	case err != nil:
		return nil, fmt.Errorf("sigv4: looking up access key %s: %w", a.accessKeyID, err)
	case creds.AnySignature:
	case creds.SecretAccessKey == "":
		// An empty secret would make the signing key public ("AWS4").
		return nil, fmt.Errorf("sigv4: access key %s has an empty secret", a.accessKeyID)
	}
	p.creds = creds
	return p, nil
}

// Finish verifies the signature over the headers checked by Begin and the
// body (ignored under S3's rules, where the signed hash is the claimed
// one), and returns the caller's identity.
func (p *Pending) Finish(body []byte) (Identity, error) {
	v, a := p.v, &p.a
	creds := p.creds
	if creds.AnySignature {
		creds.AccessKeyID, creds.SecretAccessKey = a.accessKeyID, ""
		return Identity{Credentials: creds, Region: a.region, Service: a.service}, nil
	}
	payloadHash := p.claimed
	if !p.s3 {
		// The payload hash is recomputed from the body rather than trusted
		// from X-Amz-Content-Sha256.
		payloadHash = sha256Hex(body)
		if p.claimed != "" && p.claimed != payloadHash {
			return Identity{}, invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}

	want, err := hex.DecodeString(a.signature)
	if err != nil { // parseAuthorization checked the form; keep the guard local.
		return Identity{}, signatureMismatch()
	}
	ck := cacheKey{secret: creds.SecretAccessKey, date: a.date, region: a.region, service: a.service}
	signingKey, cached := v.cache.get(ck)
	if !cached {
		signingKey = deriveKey(ck)
	}

	if !v.signatureMatches(p.r, a, p.uris, p.stamp, p.query, payloadHash, signingKey, want) {
		return Identity{}, signatureMismatch()
	}
	if !cached {
		v.cache.put(ck, signingKey, v.CacheSize)
	}

	if creds.AccessKeyID == "" {
		creds.AccessKeyID = a.accessKeyID
	}
	creds.SecretAccessKey = ""
	return Identity{Credentials: creds, Region: a.region, Service: a.service}, nil
}

// signatureMatches computes the expected signature for each canonical form
// the supported SDKs may have produced (see canonicalURIs and trimMode) and
// compares each in constant time. Ordinary requests have a single form.
func (v *Verifier) signatureMatches(r *http.Request, a *authorization, uris []string, stamp, query, payloadHash string, signingKey, want []byte) bool {
	modes := []trimMode{trimSpaces, trimWhitespace}
	var b strings.Builder
	for _, uri := range uris {
		for _, mode := range modes {
			b.Reset()
			b.WriteString(r.Method)
			b.WriteByte('\n')
			b.WriteString(uri)
			b.WriteByte('\n')
			b.WriteString(query)
			b.WriteByte('\n')
			ambiguous := canonicalHeaders(&b, r, a.signedHeaders, mode)
			b.WriteByte('\n')
			b.WriteString(a.signedList)
			b.WriteByte('\n')
			b.WriteString(payloadHash)

			sts := algorithm + "\n" + stamp + "\n" + a.scope + "\n" + sha256Hex([]byte(b.String()))
			got := hmac.New(sha256.New, signingKey)
			got.Write([]byte(sts))
			if hmac.Equal(got.Sum(nil), want) {
				return true
			}
			if !ambiguous {
				break // the other trim mode yields the same canonical request
			}
		}
	}
	return false
}

// requestTime returns the signing time from X-Amz-Date, or from Date when
// X-Amz-Date is absent, together with the timestamp as it appears in the
// string to sign and the (lower-case) header it came from.
func requestTime(r *http.Request) (t time.Time, stamp, header string, _ *Error) {
	if vs := r.Header.Values("X-Amz-Date"); len(vs) > 0 {
		if len(vs) > 1 {
			return t, "", "", incomplete("Request has more than one 'X-Amz-Date' header.")
		}
		t, err := time.Parse(amzDateFormat, vs[0])
		if err != nil {
			return t, "", "", incomplete("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", echo(vs[0]))
		}
		return t, vs[0], "x-amz-date", nil
	}
	if d := r.Header.Get("Date"); d != "" {
		t, err := http.ParseTime(d)
		if err != nil {
			return t, "", "", incomplete("Date header is not a valid HTTP date: '%s'.", echo(d))
		}
		t = t.UTC()
		return t, t.Format(amzDateFormat), "date", nil
	}
	return t, "", "", incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

func (v *Verifier) checkSkew(reqTime time.Time) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	n := now().UTC()
	switch {
	case reqTime.Before(n.Add(-skew)):
		return invalidSignature("Signature expired: %s is now earlier than %s (%s - %s.)",
			reqTime.Format(amzDateFormat), n.Add(-skew).Format(amzDateFormat), n.Format(amzDateFormat), skewText(skew))
	case reqTime.After(n.Add(skew)):
		return invalidSignature("Signature not yet current: %s is still later than %s (%s + %s.)",
			reqTime.Format(amzDateFormat), n.Add(skew).Format(amzDateFormat), n.Format(amzDateFormat), skewText(skew))
	}
	return nil
}

// skewText renders the window the way AWS does ("15 min").
func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return fmt.Sprintf("%d sec", d/time.Second)
}

func canonicalName(h string) string {
	if h == "x-amz-date" {
		return "X-Amz-Date"
	}
	return http.CanonicalHeaderKey(h)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
