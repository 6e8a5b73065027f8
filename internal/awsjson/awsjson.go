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
	"slices"
	"strings"
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

// RequestID returns the x-amzn-RequestId of the request being served.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// Authenticator checks a request before it is dispatched. It returns the
// caller, or an error (an *Error to choose the answer, e.g. 403).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte) (Caller, error)
}

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

// Handler is the http.Handler for the protocol.
type Handler struct {
	Auth    Authenticator
	Routes  []Route
	Logger  *slog.Logger
	MaxBody int64 // default 8 MiB
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

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	w.Header().Set("x-amzn-RequestId", reqID)
	ctx := context.WithValue(r.Context(), requestIDKey{}, reqID)
	ctx = context.WithValue(ctx, remoteKey{}, r.RemoteAddr)

	if r.Method != http.MethodPost {
		WriteError(w, &Error{Type: "UnknownOperationException", Message: "only POST is supported", Status: http.StatusBadRequest})
		return
	}
	limit := h.MaxBody
	if limit <= 0 {
		limit = 8 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		WriteError(w, Errorf("SerializationException", "could not read request body: %v", err))
		return
	}
	if int64(len(body)) > limit {
		WriteError(w, &Error{Type: "SerializationException", Message: "request body too large", Status: http.StatusRequestEntityTooLarge})
		return
	}

	caller, err := h.Auth.Authenticate(ctx, r, body)
	if err != nil {
		h.writeErr(ctx, w, "", err)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	prefix, op, ok := strings.Cut(target, ".")
	if !ok || op == "" {
		WriteError(w, Errorf("UnknownOperationException", "unknown operation %q", target))
		return
	}
	rt, ok := h.route(prefix)
	if !ok {
		WriteError(w, Errorf("UnknownOperationException", "unknown operation %q", target))
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

func (h *Handler) writeErr(ctx context.Context, w http.ResponseWriter, target string, err error) {
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

// WriteError writes e in the AWS JSON 1.1 error form.
func WriteError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.Type, e.Message})
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
