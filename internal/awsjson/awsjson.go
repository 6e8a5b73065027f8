// Package awsjson serves the AWS JSON 1.1 protocol: POST / with an
// X-Amz-Target header naming "<prefix>.<Operation>", a JSON body in and a
// JSON body out, errors as {"__type": ..., "message": ...}.
//
// It knows nothing about CodeDeploy: services register under their target
// prefix and receive the operation name and the raw body. Authentication is
// a pluggable step that runs before dispatch, so every operation of every
// service is covered by it.
package awsjson

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"
)

// ContentType is the media type of requests and responses.
const ContentType = "application/x-amz-json-1.1"

// Error is an error answered to the client. Status defaults to 400, which is
// what every modelled CodeDeploy exception uses.
type Error struct {
	Type    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Errorf returns a 400 error of the given exception type.
func Errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// Caller is the authenticated principal of a request.
type Caller struct {
	AccessKeyID string
	Account     string
	Region      string
	Principal   string // e.g. arn:aws:iam::123456789012:user/alice
	Service     string // SigV4 signing service name
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored by the handler.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

type requestIDKey struct{}

type remoteKey struct{}

// RemoteAddr returns the network address the request came from.
func RemoteAddr(ctx context.Context) string {
	s, _ := ctx.Value(remoteKey{}).(string)
	return s
}

// WithRemoteAddr returns ctx carrying the client's address, as the
// handler records it (for entry points other than the handler, such as
// the dashboard, whose calls are audited with it).
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

// RequestID returns the x-amzn-RequestId of the request being served.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// Authenticator checks a request before it is dispatched, in two steps so
// that a request its headers already condemn (an unknown key, a foreign
// credential scope, a stale date) is refused before its body is read.
// Authenticate sees only the headers and returns the check that completes
// authentication over the body, or an error (an *Error to choose the
// answer, e.g. 403).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (BodyCheck, error)
}

// BodyCheck completes authentication over the request body and returns the
// caller.
type BodyCheck func(body []byte) (Caller, error)

// Service serves the operations of one target prefix. A nil output with a
// nil error answers 200 with an empty body (operations without an output
// shape).
type Service interface {
	Serve(ctx context.Context, op string, body []byte) (any, error)
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context, op string, body []byte) (any, error)

// Serve calls f.
func (f ServiceFunc) Serve(ctx context.Context, op string, body []byte) (any, error) {
	return f(ctx, op, body)
}

// Route binds a target prefix to a service and to the SigV4 service names
// allowed to call it.
type Route struct {
	Prefix       string
	SigningNames []string
	Service      Service
}

// Defaults of the Handler's bounds on unauthenticated input.
const (
	// DefaultMaxBody is ample for every CodeDeploy operation: the model
	// bounds every input to tens of KiB, except inline AppSpec content,
	// which is an AppSpec file.
	DefaultMaxBody = 1 << 20
	// DefaultBodyTimeout bounds the reading of one request body.
	DefaultBodyTimeout = 20 * time.Second
	// DefaultUnverifiedBytes bounds the bytes of request bodies held at
	// once before their signatures are verified.
	DefaultUnverifiedBytes = 16 << 20
)

// Handler is the http.Handler for the protocol. Do not copy it after first
// use.
type Handler struct {
	Auth   Authenticator
	Routes []Route
	Logger *slog.Logger
	// MaxBody caps a request body; a larger one is answered 413
	// SerializationException without being read. Default DefaultMaxBody.
	MaxBody int64
	// BodyTimeout bounds the time from the end of the headers to the end of
	// the body; a slower client is answered 408 and disconnected. Default
	// DefaultBodyTimeout. The response is not bounded by it (long polls).
	BodyTimeout time.Duration
	// UnverifiedBytes bounds the memory of bodies being read or verified:
	// a request whose headers pass reserves its buffer from it as the
	// buffer grows, and returns it once its signature is checked. A request
	// that finds no room within BodyTimeout gets ThrottlingException.
	// Default DefaultUnverifiedBytes (raised to MaxBody+1 if smaller).
	UnverifiedBytes int64

	budgetOnce sync.Once
	budget     *semaphore.Weighted
}

func (h *Handler) bodyBudget(limit int64) *semaphore.Weighted {
	h.budgetOnce.Do(func() {
		n := h.UnverifiedBytes
		if n <= 0 {
			n = DefaultUnverifiedBytes
		}
		h.budget = semaphore.NewWeighted(max(n, limit+1))
	})
	return h.budget
}

func (h *Handler) route(prefix string) (Route, bool) {
	for _, r := range h.Routes {
		if r.Prefix == prefix {
			return r, true
		}
	}
	return Route{}, false
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

// NewRequestID returns a fresh request id (a random UUID), the form AWS
// uses for x-amzn-RequestId.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := NewRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	ctx := context.WithValue(r.Context(), requestIDKey{}, reqID)
	ctx = WithRemoteAddr(ctx, r.RemoteAddr)

	limit, timeout := h.MaxBody, h.BodyTimeout
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if timeout <= 0 {
		timeout = DefaultBodyTimeout
	}
	// The deadline bounds the body read and, for a request refused before
	// its body was read, the draining net/http does before it can reuse
	// the connection. It is lifted once the body is in, so a long poll's
	// connection is not cut while the handler waits. Where the connection
	// cannot take a deadline (a test recorder), there is none to lift.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(timeout)
	_ = rc.SetReadDeadline(deadline)

	if r.Method != http.MethodPost {
		refuse(w, &Error{Type: "UnknownOperationException", Message: "only POST is supported", Status: http.StatusBadRequest})
		return
	}
	if r.ContentLength > limit {
		refuse(w, tooLarge(limit))
		return
	}
	caller, body, err := h.authenticate(ctx, r, limit, deadline)
	if err != nil {
		h.writeErr(ctx, w, "", err)
		return
	}
	_ = rc.SetReadDeadline(time.Time{})

	target := r.Header.Get("X-Amz-Target")
	prefix, op, ok := strings.Cut(target, ".")
	// No operation name comes near the bound; services may then quote the
	// name they do not know without shortening it.
	if !ok || op == "" || len(op) > maxOperation {
		WriteError(w, Errorf("UnknownOperationException", "unknown operation %q", Echo(target)))
		return
	}
	rt, ok := h.route(prefix)
	if !ok {
		WriteError(w, Errorf("UnknownOperationException", "unknown operation %q", Echo(target)))
		return
	}
	if !slices.Contains(rt.SigningNames, caller.Service) {
		WriteError(w, &Error{Type: "InvalidSignatureException", Status: http.StatusForbidden,
			Message: fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", rt.SigningNames[0])})
		return
	}
	ctx = WithCaller(ctx, caller)
	out, err := rt.Service.Serve(ctx, op, body)
	if err != nil {
		h.writeErr(ctx, w, target, err)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	if out == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeErr(ctx, w, target, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// authenticate checks the headers, then reads the body (at most limit
// bytes, by deadline) and completes the check over it. A refusal before
// the body is read asks the client to close the connection, as its unread
// body may still be coming.
func (h *Handler) authenticate(ctx context.Context, r *http.Request, limit int64, deadline time.Time) (Caller, []byte, error) {
	check, err := h.Auth.Authenticate(ctx, r)
	if err != nil {
		return Caller{}, nil, closing(err)
	}
	budget := h.bodyBudget(limit)
	var held int64
	defer func() { budget.Release(held) }()
	reserve := func(n int64) error {
		actx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		if err := budget.Acquire(actx, n); err != nil {
			return closing(&Error{Type: "ThrottlingException", Status: http.StatusBadRequest,
				Message: "Rate exceeded: too many request bodies are being received; retry later"})
		}
		held += n
		return nil
	}
	body, err := readBody(r.Body, r.ContentLength, limit, reserve)
	if err != nil {
		return Caller{}, nil, err
	}
	caller, err := check(body)
	return caller, body, err
}

// readBody reads the whole body, declared to be declared bytes long (-1:
// unknown), and refuses one longer than limit. The buffer grows as bytes
// arrive rather than as the client declares, each step reserved first, so
// a client that announces a large body and stalls holds little.
func readBody(src io.Reader, declared, limit int64, reserve func(int64) error) ([]byte, error) {
	first := int64(4 << 10)
	if declared >= 0 {
		first = min(declared+1, 64<<10) // +1: room to see EOF
	}
	if err := reserve(first); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, first)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return nil, closing(tooLarge(limit))
			}
			more := min(int64(cap(buf)), limit+1-int64(len(buf)))
			if err := reserve(more); err != nil {
				return nil, err
			}
			grown := make([]byte, len(buf), int64(cap(buf))+more)
			copy(grown, buf)
			buf = grown
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case int64(len(buf)) > limit:
			return nil, closing(tooLarge(limit))
		case err == io.EOF:
			return buf, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, closing(&Error{Type: "RequestTimeoutException", Status: http.StatusRequestTimeout,
				Message: "the request body was not received in time"})
		case err != nil:
			return nil, closing(Errorf("SerializationException", "could not read request body: %s", Echo(err.Error())))
		}
	}
}

func tooLarge(limit int64) *Error {
	return &Error{Type: "SerializationException", Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body exceeds the %d-byte limit", limit)}
}

// closeError is an answer after which the connection is closed: the
// request's body was not read to its end.
type closeError struct{ error }

func (e closeError) Unwrap() error { return e.error }

func closing(err error) error { return closeError{err} }

// refuse answers e and closes the connection.
func refuse(w http.ResponseWriter, e *Error) {
	w.Header().Set("Connection", "close")
	WriteError(w, e)
}

func (h *Handler) writeErr(ctx context.Context, w http.ResponseWriter, target string, err error) {
	if errors.As(err, new(closeError)) {
		w.Header().Set("Connection", "close")
	}
	var ae *Error
	if errors.As(err, &ae) {
		WriteError(w, ae)
		return
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// The client went away; nobody reads the answer.
		WriteError(w, &Error{Type: "RequestCanceled", Message: "request canceled", Status: 499})
		return
	}
	h.logger().ErrorContext(ctx, "internal failure", "request_id", RequestID(ctx), "target", target, "err", err)
	WriteError(w, &Error{Type: "InternalFailure", Status: http.StatusInternalServerError,
		Message: "The request processing has failed because of an unknown error, exception or failure. Request ID: " + RequestID(ctx)})
}

// maxOperation bounds the length of an operation name.
const maxOperation = 128

// MaxEcho is how many characters of a client's value an error message
// quotes; the rest is elided, so an oversized input never comes back whole.
const MaxEcho = 256

// Echo returns s for quoting in an error message: whole if it has at most
// MaxEcho characters, else its first MaxEcho followed by a count of the
// rest.
func Echo(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxEcho {
			return fmt.Sprintf("%s...(%d more characters)", s[:i], utf8.RuneCountInString(s[i:]))
		}
		n++
	}
	return s
}

// maxMessage caps a whole error message, a backstop for messages that
// quote client input without Echo.
const maxMessage = 4 * MaxEcho

// WriteError writes e in the AWS JSON 1.1 error form.
func WriteError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	msg := e.Message
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Type, msg})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
