package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var (
	alice = Credentials{
		AccessKeyID:     "AKIAALICE0000000000A",
		SecretAccessKey: "alice/secret/K7MDENG+bPxRfiCYEXAMPLEKEY",
		Account:         "123456789012",
		PrincipalARN:    "arn:aws:iam::123456789012:user/alice",
	}
	bob = Credentials{
		AccessKeyID:     "AKIABOB000000000000B",
		SecretAccessKey: "bob-secret-wJalrXUtnFEMI/K7MDENGbPxRfiCY",
		Account:         "210987654321",
		PrincipalARN:    "arn:aws:iam::210987654321:user/bob",
	}
	revoked = Credentials{
		AccessKeyID:     "AKIAREVOKED00000000R",
		SecretAccessKey: "revoked-secret",
		Account:         "123456789012",
	}
	stranger = Credentials{AccessKeyID: "AKIANOBODY000000000N", SecretAccessKey: "whatever"}

	// signTime is the server's "now" in the table tests.
	signTime = time.Date(2024, 5, 6, 12, 0, 0, 0, time.UTC)
)

// keyTable is an in-memory KeyLookup keyed by access key ID.
type keyTable map[string]struct {
	creds   Credentials
	revoked bool
}

func (t keyTable) LookupKey(_ context.Context, id string) (Credentials, error) {
	k, ok := t[id]
	switch {
	case !ok:
		return Credentials{}, fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	case k.revoked:
		return Credentials{}, fmt.Errorf("key %s revoked: %w", id, ErrUnknownKey)
	}
	return k.creds, nil
}

func testKeys() keyTable {
	t := keyTable{}
	for _, c := range []Credentials{alice, bob} {
		t[c.AccessKeyID] = struct {
			creds   Credentials
			revoked bool
		}{creds: c}
	}
	t[revoked.AccessKeyID] = struct {
		creds   Credentials
		revoked bool
	}{creds: revoked, revoked: true}
	return t
}

func testVerifier(now time.Time) *Verifier {
	return &Verifier{
		Keys:     testKeys(),
		Services: []string{"codedeploy", "codedeploy-commands", "codedeploy-commands-secure"},
		Now:      func() time.Time { return now },
	}
}

const listApplications = "CodeDeploy_20141006.ListApplications"

// signed describes a request to build, sign with aws-sdk-go-v2's signer,
// and optionally tamper with afterwards.
type signed struct {
	url      string // relative to the server, default "/"
	body     string
	creds    Credentials
	service  string
	region   string
	at       time.Time
	session  string
	before   func(r *http.Request) // before signing
	after    func(r *http.Request) // after signing
	bodySent string                // body actually sent, if different
}

func (s signed) build(t testing.TB, base string) (*http.Request, []byte) {
	t.Helper()
	if s.url == "" {
		s.url = "/"
	}
	if s.body == "" {
		s.body = "{}"
	}
	if s.service == "" {
		s.service = "codedeploy"
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.at.IsZero() {
		s.at = signTime
	}
	who := s.creds
	if who == (Credentials{}) {
		who = alice
	}
	r, err := http.NewRequest(http.MethodPost, base+s.url, strings.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", listApplications)
	if s.before != nil {
		s.before(r)
	}
	sum := sha256.Sum256([]byte(s.body))
	creds := aws.Credentials{AccessKeyID: who.AccessKeyID, SecretAccessKey: who.SecretAccessKey, SessionToken: s.session}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	if s.after != nil {
		s.after(r)
	}
	body := []byte(s.body)
	if s.bodySent != "" {
		body = []byte(s.bodySent)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return r, body
}

// writeAWSError answers err as an AWS JSON 1.1 service would.
func writeAWSError(w http.ResponseWriter, err error) {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		e = &Error{Code: "InternalFailure", Message: "internal failure", Status: http.StatusInternalServerError}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
}

// identityServer verifies every request and answers with the identity as
// JSON, or with the error as AWS would.
func identityServer(t testing.TB, v *Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeAWSError(w, err)
			return
		}
		id, err := v.Verify(r.Context(), r, body)
		if err != nil {
			writeAWSError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(id)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	id   Identity
	code string
	msg  string
}

// verifyDirect verifies the client-side request in process.
func verifyDirect(t *testing.T, v *Verifier, r *http.Request, body []byte) result {
	t.Helper()
	id, err := v.Verify(context.Background(), r, body)
	if err == nil {
		return result{id: id}
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("Verify returned non-*Error %v", err)
	}
	return result{code: e.Code, msg: e.Message}
}

// verifyWire sends the request to srv so the server sees what Go's HTTP
// stack makes of it (Host moved to r.Host, header whitespace trimmed, ...).
func verifyWire(t *testing.T, r *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type = %q", ct)
	}
	if resp.StatusCode == http.StatusOK {
		var id Identity
		if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
			t.Fatal(err)
		}
		return result{id: id}
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d for %s", resp.StatusCode, e.Type)
	}
	return result{code: e.Type, msg: e.Message}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name    string
		req     signed
		want    Credentials // on success
		region  string      // on success, default us-east-1
		code    string
		msg     string // exact message, if set
		msgPart string // substring of message, if set
	}{
		{name: "good", req: signed{}, want: alice},
		{name: "second key in table", req: signed{creds: bob}, want: bob},
		{name: "other region", req: signed{region: "eu-west-1"}, want: alice, region: "eu-west-1"},
		{name: "agent service name", req: signed{service: "codedeploy-commands-secure"}, want: alice},
		{name: "session token ignored", req: signed{session: "FwoGZXIvYXdzEBYaDEXAMPLE"}, want: alice},
		{name: "clock within skew", req: signed{at: signTime.Add(-14 * time.Minute)}, want: alice},
		{
			name: "wrong secret",
			req:  signed{creds: Credentials{AccessKeyID: alice.AccessKeyID, SecretAccessKey: "not-the-secret"}},
			code: CodeInvalidSignature, msg: msgSignatureInvalid,
		},
		{name: "unknown key", req: signed{creds: stranger}, code: CodeUnrecognizedClient, msg: msgUnrecognized},
		{name: "revoked key", req: signed{creds: revoked}, code: CodeUnrecognizedClient, msg: msgUnrecognized},
		{
			name: "signed 20 minutes ago",
			req:  signed{at: signTime.Add(-20 * time.Minute)},
			code: CodeInvalidSignature,
			msg:  "Signature expired: 20240506T114000Z is now earlier than 20240506T114500Z (20240506T120000Z - 15 min.)",
		},
		{
			name: "signed 20 minutes ahead",
			req:  signed{at: signTime.Add(20 * time.Minute)},
			code: CodeInvalidSignature,
			msg:  "Signature not yet current: 20240506T122000Z is still later than 20240506T121500Z (20240506T120000Z + 15 min.)",
		},
		{
			name: "body tampered after signing",
			req:  signed{body: `{"nextToken":"a"}`, bodySent: `{"nextToken":"b"}`},
			code: CodeInvalidSignature, msg: msgSignatureInvalid,
		},
		{
			name: "signed header tampered",
			req: signed{after: func(r *http.Request) {
				r.Header.Set("X-Amz-Target", "CodeDeploy_20141006.DeleteApplication")
			}},
			code: CodeInvalidSignature, msg: msgSignatureInvalid,
		},
		{
			name: "missing authorization",
			req:  signed{after: func(r *http.Request) { r.Header.Del("Authorization") }},
			code: CodeMissingAuthenticationToken, msg: "Missing Authentication Token",
		},
		{
			name: "garbage authorization",
			req:  signed{after: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc.def") }},
			code: CodeIncompleteSignature, msgPart: "Authorization header requires 'Credential' parameter.",
		},
		{
			name: "unsupported algorithm",
			req: signed{after: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
			}},
			code: CodeIncompleteSignature, msgPart: "Unsupported AWS 'algorithm'",
		},
		{
			name: "missing signature part",
			req: signed{after: func(r *http.Request) {
				h := r.Header.Get("Authorization")
				r.Header.Set("Authorization", h[:strings.Index(h, ", Signature=")])
			}},
			code: CodeIncompleteSignature, msgPart: "Authorization header requires 'Signature' parameter.",
		},
		{
			name: "short credential scope",
			req: signed{after: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/codedeploy/", "/us-east-1/", 1))
			}},
			code: CodeIncompleteSignature, msgPart: "Credential must have exactly 5 slash-delimited elements",
		},
		{
			name: "missing x-amz-date",
			req:  signed{after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }},
			code: CodeIncompleteSignature, msgPart: "requires existence of either a 'X-Amz-Date' or a 'Date' header",
		},
		{
			name: "credential date differs from x-amz-date",
			req: signed{after: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20240506/", "/20240505/", 1))
			}},
			code: CodeInvalidSignature, msgPart: "Date in Credential scope does not match YYYYMMDD",
		},
		{
			name: "wrong service in scope",
			req:  signed{service: "s3"},
			code: CodeInvalidSignature, msg: "Credential should be scoped to correct service: 'codedeploy'. ",
		},
		{
			name: "header values with runs of spaces and repeats",
			req: signed{before: func(r *http.Request) {
				r.Header.Set("X-Amz-Meta-Note", "  several   spaces   inside  ")
				r.Header.Add("X-Custom", "first")
				r.Header.Add("X-Custom", " second  value ")
				r.Header.Set("X-Tabbed", "a\tb")
			}},
			want: alice,
		},
		{
			name: "repeated header tampered",
			req: signed{
				before: func(r *http.Request) { r.Header.Add("X-Custom", "1"); r.Header.Add("X-Custom", "2") },
				after:  func(r *http.Request) { r.Header["X-Custom"] = []string{"2", "1"} },
			},
			code: CodeInvalidSignature, msg: msgSignatureInvalid,
		},
		{
			name: "query string",
			req:  signed{url: "/?z=1&a=b%20c&a=a&slash=a%2Fb&plus=x%2By&empty=&bare&uni=%C3%A9"},
			want: alice,
		},
		{
			name: "query string tampered",
			req: signed{url: "/?a=1&b=2", after: func(r *http.Request) {
				r.URL.RawQuery = "a=1&b=3"
			}},
			code: CodeInvalidSignature, msg: msgSignatureInvalid,
		},
		{name: "escaped path", req: signed{url: "/app/my%2Fapp/a%20b"}, want: alice},
		{name: "unnormalised path", req: signed{url: "/a/./b//c/../d"}, want: alice},
		{
			name: "content sha256 header",
			req: signed{before: func(r *http.Request) {
				sum := sha256.Sum256([]byte("{}"))
				r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}},
			want: alice,
		},
		{
			name: "unsigned payload refused",
			req:  signed{before: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }},
			code: CodeInvalidSignature, msgPart: "UNSIGNED-PAYLOAD",
		},
		{
			name: "presigned query refused",
			req: signed{after: func(r *http.Request) {
				r.Header.Del("Authorization")
				r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
			}},
			code: CodeIncompleteSignature, msgPart: "presigned",
		},
	}

	srv := identityServer(t, testVerifier(signTime))
	for _, tt := range tests {
		for _, via := range []string{"direct", "wire"} {
			t.Run(tt.name+"/"+via, func(t *testing.T) {
				var got result
				if via == "direct" {
					r, body := tt.req.build(t, "http://cutover.example:8443")
					got = verifyDirect(t, testVerifier(signTime), r, body)
				} else {
					r, _ := tt.req.build(t, srv.URL)
					got = verifyWire(t, r)
				}
				if got.code != tt.code {
					t.Fatalf("code = %q (%q), want %q", got.code, got.msg, tt.code)
				}
				if tt.code != "" {
					if tt.msg != "" && got.msg != tt.msg {
						t.Errorf("message = %q\nwant      %q", got.msg, tt.msg)
					}
					if tt.msgPart != "" && !strings.Contains(got.msg, tt.msgPart) {
						t.Errorf("message = %q, want it to contain %q", got.msg, tt.msgPart)
					}
					return
				}
				region := tt.region
				if region == "" {
					region = "us-east-1"
				}
				want := tt.want
				want.SecretAccessKey = ""
				if got.id.Credentials != want || got.id.Region != region {
					t.Errorf("identity = %+v, want %+v in %s", got.id, want, region)
				}
				if got.id.Service == "" {
					t.Error("identity has no service")
				}
			})
		}
	}
}

func TestVerifyLookupFailure(t *testing.T) {
	boom := errors.New("database is down")
	v := testVerifier(signTime)
	v.Keys = KeyLookupFunc(func(context.Context, string) (Credentials, error) { return Credentials{}, boom })
	r, body := signed{}.build(t, "http://cutover.example")
	_, err := v.Verify(context.Background(), r, body)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapped %v", err, boom)
	}
	if _, ok := errors.AsType[*Error](err); ok {
		t.Fatalf("a lookup failure must not be reported as an authentication error: %v", err)
	}
}

func TestVerifyCachesOnlyVerifiedKeys(t *testing.T) {
	v := testVerifier(signTime)
	bad, body := signed{creds: Credentials{AccessKeyID: alice.AccessKeyID, SecretAccessKey: "wrong"}}.build(t, "http://h")
	if _, err := v.Verify(context.Background(), bad, body); err == nil {
		t.Fatal("bad signature verified")
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("cache has %d entries after a failed verification", n)
	}
	for range 3 {
		good, body := signed{}.build(t, "http://h")
		if _, err := v.Verify(context.Background(), good, body); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("cache has %d entries, want 1", n)
	}

	v.CacheSize = 2
	for _, region := range []string{"eu-west-1", "ap-south-1", "us-west-2"} {
		r, body := signed{region: region}.build(t, "http://h")
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Fatalf("cache has %d entries, want it bounded at 2", n)
	}
}

func TestWriteTrimmed(t *testing.T) {
	tests := []struct {
		in, spaces, whitespace string
	}{
		{"plain", "plain", "plain"},
		{"  lead and trail  ", "lead and trail", "lead and trail"},
		{"a    b     c", "a b c", "a b c"},
		{"a\tb", "a\tb", "a b"},
		{"\t a \t ", "a", "a"},
		{"a \t  b", "a \t b", "a b"},
		{"", "", ""},
	}
	for _, tt := range tests {
		for mode, want := range map[trimMode]string{trimSpaces: tt.spaces, trimWhitespace: tt.whitespace} {
			var b strings.Builder
			writeTrimmed(&b, tt.in, mode)
			if b.String() != want {
				t.Errorf("writeTrimmed(%q, %d) = %q, want %q", tt.in, mode, b.String(), want)
			}
		}
	}
}

func TestCanonicalPathAndQuery(t *testing.T) {
	paths := []struct{ in, norm, escaped string }{
		{"/", "/", "/"},
		{"", "/", "/"},
		{"/a/./b/../c/", "/a/c/", "/a/c/"},
		{"//a//b", "/a/b", "/a/b"},
		{"/..", "/", "/"},
		{"/a%2Fb/c d", "/a%2Fb/c d", "/a%252Fb/c%20d"},
	}
	for _, tt := range paths {
		if got := removeDotSegments(tt.in); got != tt.norm {
			t.Errorf("removeDotSegments(%q) = %q, want %q", tt.in, got, tt.norm)
		}
		if got := escapePath(removeDotSegments(tt.in)); got != tt.escaped {
			t.Errorf("escapePath(%q) = %q, want %q", tt.norm, got, tt.escaped)
		}
	}

	queries := []struct{ in, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1", "a=1&a=2"},
		{"bare&x=", "bare=&x="},
		{"s=a+b&t=a%20b&u=%2B", "s=a%20b&t=a%20b&u=%2B"},
		// Sorting happens after encoding: "a%2Fb" < "a-b" although '/' > '-'.
		{"k=a-b&k=a/b", "k=a%2Fb&k=a-b"},
		{"~u=_.-~", "~u=_.-~"},
	}
	for _, tt := range queries {
		got, err := canonicalQuery(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := canonicalQuery("a=%zz"); err == nil {
		t.Error("canonicalQuery accepted a bad escape")
	}
}

func BenchmarkVerify(b *testing.B) {
	r, body := signed{body: `{"applicationName":"web","deploymentGroupName":"prod"}`}.build(b, "https://cutover.example")
	b.Run("cached", func(b *testing.B) {
		v := testVerifier(signTime)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(context.Background(), r, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		keys := testKeys()
		b.ReportAllocs()
		for b.Loop() {
			v := &Verifier{Keys: keys, Services: []string{"codedeploy"}, Now: func() time.Time { return signTime }}
			if _, err := v.Verify(context.Background(), r, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifyBotocoreFixture checks a request signed by botocore 1.43
// (aws-cli, boto3), whose canonicalisation differs from aws-sdk-go-v2 in two
// places: it normalises the path before signing and collapses every
// whitespace run (not only spaces) in header values. Generated with
// botocore.auth.SigV4Auth(creds, "codedeploy", "us-east-1").add_auth(req).
func TestVerifyBotocoreFixture(t *testing.T) {
	const (
		amzDate = "20261122T011913Z"
		authz   = "AWS4-HMAC-SHA256 Credential=AKIAALICE0000000000A/20261122/us-east-1/codedeploy/aws4_request, " +
			"SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-tabbed, " +
			"Signature=d2654c1717db46494e6d3ae294cb95d6e419766d91f3c9314a9ad1f1226dd9cc"
		body = `{"applicationName":"web"}`
	)
	now, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		tabbed string
		code   string
	}{
		{name: "as signed", tabbed: "a\tb  c"},
		{name: "tab replaced by letter", tabbed: "axb  c", code: CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://cutover.example:8443/a/./b//c/../d?z=1&a=b%20c", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", listApplications)
			r.Header.Set("X-Tabbed", tt.tabbed)
			r.Header.Set("X-Amz-Date", amzDate)
			r.Header.Set("Authorization", authz)
			got := verifyDirect(t, testVerifier(now), r, []byte(body))
			if got.code != tt.code {
				t.Fatalf("code = %q (%q), want %q", got.code, got.msg, tt.code)
			}
		})
	}
}

// TestVerifyDateHeaderVector uses "get-vanilla" from AWS's original SigV4
// test suite, which signs the Date header instead of X-Amz-Date: an
// independent check of the canonicalisation and of the Date fallback.
func TestVerifyDateHeaderVector(t *testing.T) {
	const authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host, " +
		"Signature=b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470"
	example := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	v := &Verifier{
		Keys: KeyLookupFunc(func(_ context.Context, id string) (Credentials, error) {
			if id != example.AccessKeyID {
				return Credentials{}, ErrUnknownKey
			}
			return example, nil
		}),
		Services: []string{"host"},
		Now:      func() time.Time { return time.Date(2011, 9, 9, 23, 40, 0, 0, time.UTC) },
	}
	tests := []struct {
		name, date string
		code       string
	}{
		{name: "as signed", date: "Mon, 09 Sep 2011 23:36:00 GMT"},
		{name: "date changed", date: "Mon, 09 Sep 2011 23:36:01 GMT", code: CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://host.foo.com/", nil)
			r.Header.Set("Date", tt.date)
			r.Header.Set("Authorization", authz)
			got := verifyDirect(t, v, r, nil)
			if got.code != tt.code {
				t.Fatalf("code = %q (%q), want %q", got.code, got.msg, tt.code)
			}
			if tt.code == "" && (got.id.AccessKeyID != "AKIDEXAMPLE" || got.id.Region != "us-east-1" || got.id.Service != "host") {
				t.Errorf("identity = %+v", got.id)
			}
		})
	}
}

// TestBeginRefusesFromHeaders checks that what the headers alone can prove
// wrong is refused by Begin, before anyone reads the body, and that a
// request Begin accepts is still refused by Finish when its body differs.
func TestBeginRefusesFromHeaders(t *testing.T) {
	v := testVerifier(signTime)
	tests := []struct {
		name string
		req  signed
		code string
	}{
		{"unknown key", signed{creds: stranger}, CodeUnrecognizedClient},
		{"revoked key", signed{creds: revoked}, CodeUnrecognizedClient},
		{"foreign service scope", signed{service: "s3"}, CodeInvalidSignature},
		{"expired date", signed{at: signTime.Add(-time.Hour)}, CodeInvalidSignature},
		{"missing authorization", signed{after: func(r *http.Request) { r.Header.Del("Authorization") }}, CodeMissingAuthenticationToken},
		{"unsigned payload", signed{after: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload) }}, CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := tt.req.build(t, "http://cutover.test")
			r.Body = io.NopCloser(failReader{t})
			_, err := v.Begin(context.Background(), r)
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Code != tt.code {
				t.Fatalf("Begin = %v, want %s", err, tt.code)
			}
		})
	}

	r, body := signed{body: `{"nextToken":"a"}`}.build(t, "http://cutover.test")
	p, err := v.Begin(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish([]byte(`{"nextToken":"b"}`)); err == nil {
		t.Fatal("Finish accepted a body other than the signed one")
	}
	id, err := p.Finish(body)
	if err != nil || id.AccessKeyID != alice.AccessKeyID {
		t.Fatalf("Finish = %+v, %v", id, err)
	}
}

type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("body read before the headers were authenticated")
	return 0, io.EOF
}
