package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// authorization is the parsed form of an
// "Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." header.
type authorization struct {
	accessKeyID   string
	date          string // YYYYMMDD from the credential scope
	region        string
	service       string
	scope         string // date/region/service/aws4_request, as signed
	signedHeaders []string
	signedList    string // SignedHeaders exactly as sent; it is part of the canonical request
	signature     string
}

const (
	algorithm  = "AWS4-HMAC-SHA256"
	terminator = "aws4_request"
	// maxEcho bounds how much of a malformed Authorization header is echoed
	// back in an error message, as AWS does, without reflecting arbitrarily
	// large client input.
	maxEcho = 512
)

func echo(s string) string {
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}

// parseAuthorization parses the header value. Errors are reported as
// IncompleteSignatureException with AWS's wording, so a client debugging
// its signer sees the same text it would see from AWS.
func parseAuthorization(h string) (authorization, *Error) {
	var a authorization
	alg, rest, _ := strings.Cut(strings.TrimLeft(h, " "), " ")
	if alg != algorithm {
		if strings.HasPrefix(alg, "AWS4-") {
			return a, incomplete("Unsupported AWS 'algorithm': '%s'.", echo(alg))
		}
		// Anything else (Basic, Bearer, SigV2, garbage) lacks every part
		// SigV4 needs; AWS answers with the missing-parameter message.
		return a, incomplete("Authorization header requires 'Credential' parameter. "+
			"Authorization header requires 'Signature' parameter. "+
			"Authorization header requires 'SignedHeaders' parameter. Authorization=%s", echo(h))
	}

	var credential, signedHeaders, signature string
	var haveCred, haveSH, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, incomplete("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", echo(part), echo(h))
		}
		var dup bool
		switch k {
		case "Credential":
			dup, haveCred, credential = haveCred, true, val
		case "SignedHeaders":
			dup, haveSH, signedHeaders = haveSH, true, val
		case "Signature":
			dup, haveSig, signature = haveSig, true, val
		default:
			// AWS tolerates unknown parameters; they are not signed.
		}
		if dup {
			return a, incomplete("Authorization header has duplicate '%s' parameter. Authorization=%s", k, echo(h))
		}
	}
	var missing []string
	if !haveCred || credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSig || signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !haveSH || signedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if len(missing) > 0 {
		return a, incomplete("%s Authorization=%s", strings.Join(missing, " "), echo(h))
	}

	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" {
		return a, incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", echo(credential))
	}
	a.accessKeyID, a.date, a.region, a.service = parts[0], parts[1], parts[2], parts[3]
	if parts[4] != terminator {
		return a, incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", echo(parts[4]))
	}
	if len(a.date) != 8 || !allDigits(a.date) {
		return a, incomplete("Credential should be scoped to a valid date (YYYYMMDD), not '%s'. ", echo(a.date))
	}
	if a.region == "" {
		return a, incomplete("Credential should be scoped to a valid region. ")
	}
	if a.service == "" {
		return a, incomplete("Credential should be scoped to a valid service. ")
	}
	a.scope = credential[len(a.accessKeyID)+1:]

	// The signer's list is lower-case, sorted and duplicate-free. Holding
	// clients to that keeps the canonical request unambiguous: we rebuild the
	// canonical headers in exactly the order the client claims to have used.
	a.signedList = signedHeaders
	a.signedHeaders = strings.Split(signedHeaders, ";")
	for i, name := range a.signedHeaders {
		if name == "" || name != strings.ToLower(name) || (i > 0 && a.signedHeaders[i-1] >= name) {
			return a, incomplete("SignedHeaders must be a lower-case, sorted, ';'-separated list of header names, got '%s'.", echo(signedHeaders))
		}
	}

	if len(signature) != 64 || !isHex(signature) {
		return a, incomplete("Signature must be 64 hexadecimal characters. Authorization=%s", echo(h))
	}
	a.signature = signature
	return a, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// canonicalURIs returns the canonical URI candidates for the request path.
//
// AWS specifies that for services other than S3 the path is normalised
// (RFC 3986 dot-segment removal, and AWS also collapses empty segments) and
// each segment is URI-encoded a second time. botocore normalises before
// signing; aws-sdk-go-v2 signs the path as sent. Both agree for ordinary
// paths; when they do not, both forms are returned so either client is
// accepted. Routing in this service never depends on the path, so accepting
// both does not let a signature be replayed against a different resource.
func canonicalURIs(r *http.Request) []string {
	raw := r.URL.EscapedPath()
	if raw == "" {
		raw = "/"
	}
	norm := escapePath(removeDotSegments(raw))
	plain := escapePath(raw)
	if norm == plain {
		return []string{norm}
	}
	return []string{norm, plain}
}

// removeDotSegments mirrors botocore's remove_dot_segments: "." and empty
// segments are dropped, ".." pops, and leading/trailing slashes are kept.
func removeDotSegments(p string) string {
	if p == "" {
		return "/"
	}
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// escapePath encodes every byte outside the RFC 3986 unreserved set except
// '/'. Applied to the already-escaped path this is AWS's "double encoding"
// for non-S3 services ("%2F" becomes "%252F").
func escapePath(p string) string {
	const hexUpper = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(p); i++ {
		if !unreserved(p[i]) && p[i] != '/' {
			n++
		}
	}
	if n == 0 {
		return p
	}
	b := make([]byte, 0, len(p)+2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if unreserved(c) || c == '/' {
			b = append(b, c)
		} else {
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalQuery decodes each name and value and re-encodes them with SigV4's
// rules (unreserved characters kept, everything else %XX, space as %20),
// then sorts by encoded name and value. Sorting happens after encoding, as
// the specification requires. '+' decodes to a space, matching Go's
// url.Values, which is what aws-sdk-go-v2 signs.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var pairs []pair
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", err
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", err
		}
		pairs = append(pairs, pair{encodeQueryComponent(dk), encodeQueryComponent(dv)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

func encodeQueryComponent(s string) string {
	// url.QueryEscape matches SigV4 except that it writes a space as '+';
	// a literal '+' is already "%2B", so only spaces are rewritten.
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// trimMode selects how runs of whitespace inside header values are collapsed.
// The SigV4 "Trimall" step is implemented differently by the SDKs this
// service must accept: aws-sdk-go-v2 collapses runs of spaces only, botocore
// (aws-cli, boto3) collapses any whitespace run to one space.
type trimMode int

const (
	trimSpaces     trimMode = iota // aws-sdk-go-v2
	trimWhitespace                 // botocore: ' '.join(value.split())
)

// headerValues returns the values of a signed header as the client saw them.
// Go's server moves Host out of the header map into r.Host, and a
// client-side http.Request carries Content-Length only in r.ContentLength,
// so both are recovered from there.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		return []string{r.Host}
	case "content-length":
		if vs := r.Header.Values("Content-Length"); len(vs) > 0 {
			return vs
		}
		if r.ContentLength > 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	}
	return r.Header.Values(name)
}

// canonicalHeaders writes "name:value\n" for every signed header, joining
// multiple values with ',' after trimming each, as AWS does. It reports
// whether any value has whitespace other than spaces, i.e. whether the other
// trimMode could give a different result.
func canonicalHeaders(b *strings.Builder, r *http.Request, signed []string, mode trimMode) (ambiguous bool) {
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range headerValues(r, name) {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.ContainsAny(v, "\t\r\n\v\f") {
				ambiguous = true
			}
			writeTrimmed(b, v, mode)
		}
		b.WriteByte('\n')
	}
	return ambiguous
}

func writeTrimmed(b *strings.Builder, v string, mode trimMode) {
	isSpace := func(c byte) bool { return c == ' ' }
	if mode == trimWhitespace {
		isSpace = func(c byte) bool {
			return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
		}
	}
	// Both SDKs strip all leading and trailing whitespace (Go: TrimSpace,
	// Python: split); they differ only inside the value.
	v = strings.TrimSpace(v)
	inSpace := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSpace(c) {
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
			continue
		}
		inSpace = false
		b.WriteByte(c)
	}
}

// ScopeService returns the service named by the credential scope of r's
// Authorization header (".../<date>/<region>/<service>/aws4_request"),
// without checking anything else: it tells a server which protocol a
// signed request speaks before the request is verified.
func ScopeService(r *http.Request) (string, bool) {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return "", false
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return "", false
	}
	return parts[3], true
}
