// Package api implements the CodeDeploy operations on top of the store:
// request shapes in, domain records and the deployment engine behind.
// Decoding and model validation happen in the generated dispatcher
// (internal/model/codedeploy); this package adds the rules the model cannot
// express (name character sets, cross-field checks, existence, limits).
package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
	"github.com/cutoverhq/cutover/internal/store"
)

// Deployments is the deployment side of the API (the engine's runner).
// Until it is set, the deployment operations answer an honest error.
type Deployments interface {
	CreateDeployment(ctx context.Context, in *cd.CreateDeploymentInput) (*cd.CreateDeploymentOutput, error)
	GetDeployment(ctx context.Context, in *cd.GetDeploymentInput) (*cd.GetDeploymentOutput, error)
	BatchGetDeployments(ctx context.Context, in *cd.BatchGetDeploymentsInput) (*cd.BatchGetDeploymentsOutput, error)
	ListDeployments(ctx context.Context, in *cd.ListDeploymentsInput) (*cd.ListDeploymentsOutput, error)
	StopDeployment(ctx context.Context, in *cd.StopDeploymentInput) (*cd.StopDeploymentOutput, error)
	ContinueDeployment(ctx context.Context, in *cd.ContinueDeploymentInput) error
	SkipWaitTimeForInstanceTermination(ctx context.Context, in *cd.SkipWaitTimeForInstanceTerminationInput) error
	ListDeploymentTargets(ctx context.Context, in *cd.ListDeploymentTargetsInput) (*cd.ListDeploymentTargetsOutput, error)
	BatchGetDeploymentTargets(ctx context.Context, in *cd.BatchGetDeploymentTargetsInput) (*cd.BatchGetDeploymentTargetsOutput, error)
	GetDeploymentTarget(ctx context.Context, in *cd.GetDeploymentTargetInput) (*cd.GetDeploymentTargetOutput, error)
	ListDeploymentInstances(ctx context.Context, in *cd.ListDeploymentInstancesInput) (*cd.ListDeploymentInstancesOutput, error)
	BatchGetDeploymentInstances(ctx context.Context, in *cd.BatchGetDeploymentInstancesInput) (*cd.BatchGetDeploymentInstancesOutput, error)
	GetDeploymentInstance(ctx context.Context, in *cd.GetDeploymentInstanceInput) (*cd.GetDeploymentInstanceOutput, error)
	PutLifecycleEventHookExecutionStatus(ctx context.Context, in *cd.PutLifecycleEventHookExecutionStatusInput) (*cd.PutLifecycleEventHookExecutionStatusOutput, error)
}

// Sealer seals secrets (GitHub tokens) at rest.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed string, context string) ([]byte, error)
}

// Server serves the CodeDeploy API.
type Server struct {
	cd.Unimplemented
	Store  store.Store
	Sealer Sealer
	Logger *slog.Logger
	Now    func() time.Time
	// PageSize is the number of items per page of list operations.
	PageSize int
	// PageKey signs pagination tokens so forged ones are refused.
	PageKey []byte
	// Deployments serves the deployment operations.
	Deployments Deployments
	// OnDeleteApplication removes an application's deployment records in
	// DeleteApplication's transaction.
	OnDeleteApplication func(ctx context.Context, tx store.Tx, account, region, app string) error
	// OnRename follows a renamed application (group "": all its groups)
	// or deployment group in the deployments' records, in the renaming
	// transaction, so that listing by the new names and access checks of
	// keys limited to applications find the deployments made before.
	OnRename func(ctx context.Context, tx store.Tx, account, region, app, group, newApp, newGroup string) error
	// Destinations, if set, refuses trigger topics and alarms the server
	// does not know (Create/UpdateDeploymentGroup).
	Destinations Destinations
	// TargetGroups, if set, refuses loadBalancerInfo naming target groups
	// the caller in ctx may not use (Create/UpdateDeploymentGroup), with
	// an InvalidLoadBalancerInfoException.
	TargetGroups func(ctx context.Context, names []string) error

	// Version, if set, reads the store's change counter, which moves
	// with every commit of any process (SQLite's data version); read-only
	// operations then reuse results computed at the same version.
	Version func(context.Context) (int64, error)

	callers callerCache
	groups  groupCache
	views   viewCache
	// InUse reports whether a custom deployment config is referenced by an
	// active deployment (DeleteDeploymentConfig).
}

// New returns a server with defaults filled in.
func New(st store.Store, sealer Sealer, logger *slog.Logger) *Server {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Server{Store: st, Sealer: sealer, Logger: logger, Now: time.Now, PageSize: 100, PageKey: key}
	s.Unimplemented = cd.Unimplemented{Err: func(op string) error {
		return awsjson.Errorf("InvalidOperationException", "%s is not available on this server yet", op)
	}}
	return s
}

// Serve implements awsjson.Service.
func (s *Server) Serve(ctx context.Context, op string, body []byte) (any, error) {
	if _, ok := cd.Operations[op]; !ok {
		return nil, awsjson.Errorf("UnknownOperationException", "unknown operation %s", op)
	}
	out, err := cd.Dispatch(ctx, s, op, body)
	if err == nil {
		return out, nil
	}
	var de *modelcheck.DecodeError
	var vf *modelcheck.ValidationFailure
	switch {
	case errors.As(err, &de):
		return nil, awsjson.Errorf("SerializationException", "%v", de.Err)
	case errors.As(err, &vf):
		v := vf.Violation
		if v.Kind == modelcheck.Length && strings.Contains(v.Message, "Value '' at") {
			// An empty string for a name is a missing name to AWS.
			v.Kind = modelcheck.Required
		}
		return nil, awsjson.Errorf(exceptionFor(op, v), "%s", v.Message)
	case errors.Is(err, modelcheck.ErrUnknownOperation):
		return nil, awsjson.Errorf("UnknownOperationException", "unknown operation %s", op)
	}
	return nil, err
}

func (s *Server) now() time.Time { return s.Now().UTC() }

// scope identifies the account and region of the caller.
type scope struct{ Account, Region string }

func (sc scope) prefix() string { return sc.Account + "/" + sc.Region + "/" }

func (sc scope) arn(resource string) string {
	return fmt.Sprintf("arn:aws:codedeploy:%s:%s:%s", sc.Region, sc.Account, resource)
}

func scopeOf(ctx context.Context) scope {
	c, _ := awsjson.CallerFrom(ctx)
	if c.Account == "" {
		c.Account = "000000000000"
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	return scope{Account: c.Account, Region: c.Region}
}

// ScopeKey is the store key prefix of an account and region.
func ScopeKey(account, region string) string { return scope{account, region}.prefix() }

// nameRE is the character set of application, group and config names.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9.\-_+=,@]{1,100}$`)

// CheckName validates a required application, deployment group or
// deployment configuration name, answering the operation's exceptions.
func CheckName(v *string, required, invalid, what string) (string, error) {
	return checkName(v, required, invalid, what)
}

// checkName validates a required name with the operation's exceptions.
func checkName(v *string, required, invalid, what string) (string, error) {
	if v == nil || *v == "" {
		return "", awsjson.Errorf(required, "The %s must be specified.", what)
	}
	if !nameRE.MatchString(*v) {
		return "", awsjson.Errorf(invalid, "The %s %q is not valid: use 1-100 characters from A-Z a-z 0-9 . _ + = , @ -", what, *v)
	}
	return *v, nil
}

func getJSON(ctx context.Context, tx store.Tx, kind, key string, v any) error {
	b, err := tx.Get(ctx, kind, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", kind, key, err)
	}
	return nil
}

func putJSON(ctx context.Context, tx store.Tx, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", kind, key, err)
	}
	return tx.Put(ctx, kind, key, b)
}

func insertJSON(ctx context.Context, tx store.Tx, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", kind, key, err)
	}
	return tx.Insert(ctx, kind, key, b)
}

func notFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// newID returns a random UUID (version 4) string.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Pagination tokens carry the last key served and an HMAC over it, so a
// token is opaque to clients and one the server did not issue is refused.
type pageToken struct {
	Op    string `json:"o"`
	After string `json:"a"`
}

func (s *Server) encodeToken(op, after string) *string {
	b, _ := json.Marshal(pageToken{Op: op, After: after})
	m := hmac.New(sha256.New, s.PageKey)
	m.Write(b)
	tok := base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	return &tok
}

func (s *Server) decodeToken(op string, tok *string) (string, error) {
	if tok == nil || *tok == "" {
		return "", nil
	}
	bad := awsjson.Errorf("InvalidNextTokenException", "The next token was specified in an invalid format.")
	payload, sig, ok := strings.Cut(*tok, ".")
	if !ok {
		return "", bad
	}
	b, err1 := base64.RawURLEncoding.DecodeString(payload)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return "", bad
	}
	m := hmac.New(sha256.New, s.PageKey)
	m.Write(b)
	if !hmac.Equal(got, m.Sum(nil)[:16]) {
		return "", bad
	}
	var pt pageToken
	if err := json.Unmarshal(b, &pt); err != nil || pt.Op != op {
		return "", bad
	}
	return pt.After, nil
}

// pageNames lists the names of a kind's records in the caller's scope
// (plus extra), sorted, and returns the page the token asks for.
func (s *Server) pageNames(ctx context.Context, op, kind string, token *string, extra ...string) ([]string, *string, error) {
	sc := scopeOf(ctx)
	names := extra
	err := s.Store.View(ctx, func(tx store.Tx) error {
		items, err := tx.Scan(ctx, kind, sc.prefix(), "", 0)
		for _, it := range items {
			names = append(names, it.Key[len(sc.prefix()):])
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	return s.page(op, names, token)
}

// page returns one page of names from a sorted list, after the token.
func (s *Server) page(op string, names []string, token *string) ([]string, *string, error) {
	after, err := s.decodeToken(op, token)
	if err != nil {
		return nil, nil, err
	}
	start := 0
	if after != "" {
		for start < len(names) && names[start] <= after {
			start++
		}
	}
	end := min(start+s.PageSize, len(names))
	out := names[start:end]
	var next *string
	if end < len(names) {
		next = s.encodeToken(op, names[end-1])
	}
	if out == nil {
		out = []string{}
	}
	return out, next, nil
}

func str(s string) *string { return &s }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Page is the shared pager, for list operations served outside this
// package (deployments).
func (s *Server) Page(op string, names []string, token *string) ([]string, *string, error) {
	return s.page(op, names, token)
}
