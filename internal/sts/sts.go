// Package sts serves the one AWS Security Token Service action that tools
// built for AWS need from a self-hosted endpoint: GetCallerIdentity, which
// the Terraform AWS provider, aws-cli (`aws sts get-caller-identity`) and
// the SDKs call to learn the account and principal of their credentials.
//
// STS speaks the AWS query protocol, not JSON: the action and its
// parameters are form fields (a POST body of
// application/x-www-form-urlencoded, or the query string of a GET), the
// answer is XML, and errors come as <ErrorResponse>. Requests are signed
// with SigV4 under the service name "sts". The action needs no
// permission, as on AWS: every valid key, of any role, may ask who it is.
package sts

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/sigv4"
)

// SigningName is the SigV4 service name of STS requests.
const SigningName = "sts"

// Version is the STS API version, the Version field of every request.
const Version = "2011-06-15"

const namespace = "https://sts.amazonaws.com/doc/" + Version + "/"

// Bounds of one request: GetCallerIdentity has no parameters beyond
// Action and Version, so a body of a few hundred bytes is all a client
// sends; the cap leaves room for clients that add padding fields.
const (
	DefaultMaxBody     = 64 << 10
	DefaultBodyTimeout = 20 * time.Second
)

// IsRequest reports whether r is meant for STS: signed under the "sts"
// service, or unsigned and shaped as a query-protocol call (an Action
// field in the query string, or a form body without X-Amz-Target), so
// that an unsigned call gets STS's own error rather than another
// protocol's.
func IsRequest(r *http.Request) bool {
	if r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	if svc, ok := sigv4.ScopeService(r); ok {
		return svc == SigningName
	}
	if r.URL.Path != "/" {
		return false
	}
	if r.URL.Query().Has("Action") {
		return true
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && mt == "application/x-www-form-urlencoded"
}

// Handler serves STS requests. Build it with New.
type Handler struct {
	// MaxBody and BodyTimeout bound a request body; zero takes
	// DefaultMaxBody and DefaultBodyTimeout. Set them before first use.
	MaxBody     int64
	BodyTimeout time.Duration

	logger   *slog.Logger
	verifier *sigv4.Verifier
}

// New returns a handler that resolves access keys with keys, as every
// other service on the listener does; now (nil: time.Now) bounds the
// signature's clock skew.
func New(keys sigv4.KeyLookup, now func() time.Time, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{logger: logger, verifier: &sigv4.Verifier{Keys: keys, Services: []string{SigningName}, Now: now}}
}

// Error is an STS error answer.
type Error struct {
	Status  int
	Type    string // Sender or Receiver
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func senderError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Type: "Sender", Code: code, Message: fmt.Sprintf(format, args...)}
}

// authError answers a SigV4 failure with the code STS uses for it (the
// query protocol's names, not the JSON services' exception names).
func authError(err error) error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return err
	}
	code := se.Code
	switch se.Code {
	case sigv4.CodeMissingAuthenticationToken:
		code = "MissingAuthenticationToken"
	case sigv4.CodeIncompleteSignature:
		code = "IncompleteSignature"
	case sigv4.CodeUnrecognizedClient:
		code = "InvalidClientTokenId"
	case sigv4.CodeInvalidSignature:
		code = "SignatureDoesNotMatch"
	}
	return &Error{Status: se.Status, Type: "Sender", Code: code, Message: se.Message}
}

// CallerIdentity is the answer to GetCallerIdentity.
type CallerIdentity struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type response struct {
	XMLName   xml.Name       `xml:"GetCallerIdentityResponse"`
	Xmlns     string         `xml:"xmlns,attr"`
	Result    CallerIdentity `xml:"GetCallerIdentityResult"`
	RequestID string         `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := awsjson.NewRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	id, err := h.serve(r.Context(), w, r)
	if err != nil {
		h.writeError(r.Context(), w, reqID, err)
		return
	}
	writeXML(w, http.StatusOK, response{Xmlns: namespace, Result: id, RequestID: reqID})
}

// serve authenticates r and answers its action. The signature is checked
// before the action is looked at, as AWS does: an unsigned caller learns
// nothing about which actions exist.
func (h *Handler) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) (CallerIdentity, error) {
	limit, timeout := h.MaxBody, h.BodyTimeout
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()

	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		return CallerIdentity{}, senderError(http.StatusMethodNotAllowed, "InvalidAction", "STS accepts only GET and POST requests.")
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return CallerIdentity{}, tooLarge(limit)
	}
	pending, err := h.verifier.Begin(ctx, r)
	if err != nil {
		w.Header().Set("Connection", "close")
		return CallerIdentity{}, authError(err)
	}
	body, err := readBody(r.Body, limit)
	if err != nil {
		w.Header().Set("Connection", "close")
		return CallerIdentity{}, err
	}
	caller, err := pending.Finish(body)
	if err != nil {
		return CallerIdentity{}, authError(err)
	}
	form, err := parseForm(r, body)
	if err != nil {
		return CallerIdentity{}, err
	}
	action, version := form.Get("Action"), form.Get("Version")
	switch {
	case action == "":
		return CallerIdentity{}, senderError(http.StatusBadRequest, "MissingAction", "Missing Action")
	case action != "GetCallerIdentity" || version != Version:
		return CallerIdentity{}, senderError(http.StatusBadRequest, "InvalidAction",
			"Could not find operation %s for version %s", echo(action), echo(version))
	}
	return Identity(caller.Account, caller.PrincipalARN), nil
}

// Identity is what GetCallerIdentity answers for a principal of account.
func Identity(account, arn string) CallerIdentity {
	return CallerIdentity{Arn: arn, UserID: UserID(account, arn), Account: account}
}

// UserID returns the unique id AWS would show for a principal, in AWS's
// shapes: the account id for the account's root, "AIDA…" for an IAM user,
// "AROA…:SESSION" for a role session. Cutover keeps no separate id per
// principal, so the 17 characters after the prefix are derived from the
// ARN: stable across restarts and replicas, the same for every key of one
// principal, as on AWS.
func UserID(account, arn string) string {
	switch {
	case arn == "arn:aws:iam::"+account+":root":
		return account
	case access.IsIAMSessionArn(arn):
		// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
		rest := arn[strings.Index(arn, ":assumed-role/")+len(":assumed-role/"):]
		role, session, _ := strings.Cut(rest, "/")
		return "AROA" + uniqueSuffix("role/"+account+"/"+role) + ":" + session
	default:
		return "AIDA" + uniqueSuffix(arn)
	}
}

func uniqueSuffix(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// parseForm returns the request's fields: the query string's, and for a
// POST those of its form body.
func parseForm(r *http.Request, body []byte) (url.Values, error) {
	form, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, senderError(http.StatusBadRequest, "MalformedQueryString", "The query string is not correctly encoded.")
	}
	if r.Method != http.MethodPost || len(body) == 0 {
		return form, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, senderError(http.StatusBadRequest, "InvalidParameterValue",
			"The request body must be application/x-www-form-urlencoded.")
	}
	fields, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, senderError(http.StatusBadRequest, "MalformedQueryString", "The request body is not correctly form-encoded.")
	}
	for k, vs := range fields {
		form[k] = append(form[k], vs...)
	}
	return form, nil
}

// readBody reads at most limit bytes; the caller has set the deadline.
func readBody(src io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, senderError(http.StatusRequestTimeout, "RequestTimeout", "The request body was not received in time.")
	case err != nil:
		return nil, senderError(http.StatusBadRequest, "MalformedQueryString", "The request body could not be read.")
	case int64(len(b)) > limit:
		return nil, tooLarge(limit)
	}
	return b, nil
}

func tooLarge(limit int64) *Error {
	return senderError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body exceeds the %d-byte limit.", limit)
}

// maxEcho bounds how much of a client's value an error message quotes.
const maxEcho = 128

func echo(s string) string {
	if len(s) > maxEcho {
		return s[:maxEcho] + "..."
	}
	return s
}

func (h *Handler) writeError(ctx context.Context, w http.ResponseWriter, reqID string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		h.logger.ErrorContext(ctx, "sts: internal failure", "request_id", reqID, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Type: "Receiver", Code: "InternalFailure",
			Message: "The request processing has failed because of an unknown error. Request ID: " + reqID}
	}
	writeXML(w, e.Status, errorResponse{Xmlns: namespace, Type: e.Type, Code: e.Code, Message: e.Message, RequestID: reqID})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		// Only strings are marshalled; this cannot happen.
		status, b = http.StatusInternalServerError, nil
	}
	b = append([]byte(xml.Header), b...)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
