package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/background"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// guard puts a service behind the access check of its family and records
// the calls that change something in the audit log.
func (s *Server) guard(family access.Service, next awsjson.ServiceFunc) awsjson.ServiceFunc {
	return func(ctx context.Context, op string, body []byte) (any, error) {
		svc := family
		if family == access.AdminAPI && adminReads[op] {
			svc = access.CodeDeploy
		}
		c, _ := awsjson.CallerFrom(ctx)
		out, err := s.authorize(ctx, svc, c, op, body)
		if err == nil {
			out, err = next(ctx, op, body)
		}
		if audited(svc, op) {
			s.record(ctx, svc, c, op, body, err)
		}
		return out, err
	}
}

// adminReads are the admin operations that only read CodeDeploy resources
// (named by applicationName and deploymentGroupName): they are checked as
// the CodeDeploy reads are, not as key management.
var adminReads = map[string]bool{"GetDeploymentGroupFleet": true}

// authorize answers nil, nil when the caller's key allows the call.
func (s *Server) authorize(ctx context.Context, svc access.Service, c awsjson.Caller, op string, body []byte) (any, error) {
	k, err := s.callerKey(ctx, c.AccessKeyID)
	if errors.Is(err, keys.ErrNotFound) {
		// Revoked between the signature check and now.
		return nil, &awsjson.Error{Type: "UnrecognizedClientException", Status: http.StatusForbidden,
			Message: "The security token included in the request is invalid."}
	}
	if err != nil {
		return nil, err
	}
	req := access.Request{Service: svc, Op: op, Principal: k.Arn, Account: k.Account, Region: c.Region}
	resolve := func() error {
		var err error
		req.Resources, err = access.Resolve(ctx, op, body, func(ctx context.Context, id string) (string, string, bool, error) {
			return s.Runner.DeploymentGroupOf(ctx, k.Account, c.Region, id)
		})
		return err
	}
	switch svc {
	case access.CodeDeploy:
		// Only keys limited to applications need the resources to decide;
		// for the others they only name the resource of a denial.
		if len(k.Applications) > 0 {
			if err := resolve(); err != nil {
				return nil, err
			}
		} else if access.Authorize(k.Grant, req) != nil {
			if err := resolve(); err != nil {
				return nil, err
			}
		}
	case access.AdminAPI:
		var in struct{ UserName string }
		if json.Unmarshal(body, &in) == nil && in.UserName != "" {
			req.Target = keys.UserArn(k.Account, in.UserName)
		}
	case access.Agent:
		if k.Role == access.Host {
			if req.Instance, err = s.API.InstanceOfCaller(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := access.Authorize(k.Grant, req); err != nil {
		var d *access.Denied
		if errors.As(err, &d) {
			return nil, awsjson.Errorf("AccessDeniedException", "%s", d.Error())
		}
		return nil, err
	}
	return nil, nil
}

// keyMemo holds the key record the signature check of a request read, so
// that the access check of the same request does not read it again.
type keyMemo struct {
	key keys.Key
	ok  bool
}

type keyMemoKey struct{}

// withKeyMemo gives every request a keyMemo for lookupKey to fill.
func withKeyMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyMemoKey{}, &keyMemo{})))
	})
}

func rememberKey(ctx context.Context, k keys.Key) {
	if m, ok := ctx.Value(keyMemoKey{}).(*keyMemo); ok {
		m.key, m.ok = k, true
		m.key.Sealed = ""
	}
}

// callerKey returns the live key of the request: the record its
// signature was checked against, else a fresh read.
func (s *Server) callerKey(ctx context.Context, id string) (keys.Key, error) {
	if m, ok := ctx.Value(keyMemoKey{}).(*keyMemo); ok && m.ok && m.key.AccessKeyID == id {
		return m.key, nil
	}
	k, err := s.Keys.Get(ctx, id)
	if errors.Is(err, keys.ErrNotFound) && s.cfg.Open {
		// Open mode (cutover dev): the signature check accepted an unknown
		// key as the root account's administrator (open.go).
		c, _ := awsjson.CallerFrom(ctx)
		return keys.Key{AccessKeyID: id, Account: c.Account, Arn: c.Principal, Grant: access.Grant{Role: access.Admin}}, nil
	}
	return k, err
}

// audited reports the calls that change something: every admin call and
// every CodeDeploy call but reads. The agent protocol's progress reports
// are kept in the deployments themselves.
func audited(svc access.Service, op string) bool {
	switch svc {
	case access.AdminAPI:
		return true
	case access.CodeDeploy:
		return !access.IsRead(op)
	}
	return false
}

var servicePrefix = map[access.Service]string{access.CodeDeploy: "codedeploy:", access.AdminAPI: "cutover-admin:", access.Agent: "codedeploy-commands:"}

func (s *Server) record(ctx context.Context, svc access.Service, c awsjson.Caller, op string, body []byte, callErr error) {
	e := audit.Entry{
		Time: s.cfg.Now(), AccessKeyID: c.AccessKeyID, Principal: c.Principal, Account: c.Account, Region: c.Region,
		Operation: servicePrefix[svc] + op, Resources: access.Names(body), Source: awsjson.RemoteAddr(ctx),
		Outcome: audit.Success, RequestID: awsjson.RequestID(ctx),
	}
	if callErr != nil {
		var ae *awsjson.Error
		if errors.As(callErr, &ae) {
			e.Outcome, e.Message = ae.Type, ae.Message
		} else {
			e.Outcome = "InternalFailure"
		}
	}
	// The call's own context may be gone (client hung up); the record of
	// what it did must still be written.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := audit.Record(rctx, s.Store, e); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "operation", e.Operation, "access_key", e.AccessKeyID, "err", err)
	}
}

// initKeys ensures the environment's root key, gives keys stored before
// roles existed their role, and warns about a revoked root key.
func (s *Server) initKeys(ctx context.Context) error {
	cfg := s.cfg
	if cfg.RootAccessKeyID != "" || cfg.RootSecretAccessKey != "" {
		if cfg.RootAccessKeyID == "" || cfg.RootSecretAccessKey == "" {
			return errors.New("CUTOVER_ROOT_ACCESS_KEY_ID and CUTOVER_ROOT_SECRET_ACCESS_KEY must be set together")
		}
	}
	changed, err := s.Keys.Migrate(ctx, migrateGrant)
	if err != nil {
		return fmt.Errorf("migrate access keys: %w", err)
	}
	for _, k := range changed {
		s.log.Warn("access key given a role (stored before roles existed)", "access_key", k.AccessKeyID, "arn", k.Arn, "role", k.Role, "scope", k.Grant.String())
	}
	if cfg.RootAccessKeyID == "" {
		return nil
	}
	st, err := s.Keys.EnsureRoot(ctx, cfg.RootAccount, cfg.RootAccessKeyID, cfg.RootSecretAccessKey)
	if err != nil {
		return err
	}
	if st.Revoked {
		s.log.Warn("the root access key named by CUTOVER_ROOT_ACCESS_KEY_ID is revoked and stays revoked; remove it from the environment", "access_key", cfg.RootAccessKeyID)
	}
	if st.SecretMismatch {
		s.log.Warn("CUTOVER_ROOT_SECRET_ACCESS_KEY differs from the stored root key's secret; the stored secret stays in force", "access_key", cfg.RootAccessKeyID)
	}
	return nil
}

// migrateGrant is the role of a key stored before roles existed, from what
// it could do then: a key whose principal is the IAM ARN of an on-premises
// instance was its agent's key, so it becomes a host key bound to that
// instance (a deregistered one too: it then has no power left); any other
// key was an administrator.
func migrateGrant(ctx context.Context, tx store.Tx, k keys.Key) (access.Grant, error) {
	region, name, ok, err := api.InstanceOfArn(ctx, tx, k.Account, k.Arn)
	if err != nil {
		return access.Grant{}, err
	}
	if ok {
		return access.Grant{Role: access.Host, Region: region, Instance: name}, nil
	}
	return access.Grant{Role: access.Admin}, nil
}

// startPruner deletes audit entries and ended trigger deliveries past
// their retention at start and then hourly, until Close.
func (s *Server) startPruner() {
	keepAudit := s.cfg.AuditRetention
	if keepAudit <= 0 {
		keepAudit = 90 * 24 * time.Hour
	}
	keepDeliveries := s.cfg.DeliveryRetention
	if keepDeliveries <= 0 {
		keepDeliveries = 30 * 24 * time.Hour
	}
	prune := func(ctx context.Context, what string, keep time.Duration, f func(context.Context, store.Store, time.Time) (int, error)) {
		if n, err := f(ctx, s.Store, s.cfg.Now().Add(-keep)); err != nil && ctx.Err() == nil {
			s.log.Warn("prune "+what, "err", err)
		} else if n > 0 {
			s.log.Info(what+" pruned", "count", n)
		}
	}
	var task background.Task
	task.Start(context.Background(), func(ctx context.Context) {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			prune(ctx, "audit entries", keepAudit, audit.Prune)
			prune(ctx, "trigger deliveries", keepDeliveries, trigger.Prune)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	s.closers = append(s.closers, func() error { task.Close(); return nil })
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// s3Operation names an S3 request that changes something, "" for reads.
func s3Operation(r *http.Request) string {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		switch {
		case key == "":
			return "CreateBucket"
		case q.Has("partNumber"):
			return "UploadPart"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodDelete:
		switch {
		case key == "" && bucket != "":
			return "DeleteBucket"
		case q.Has("uploadId"):
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload"
		case q.Has("uploadId"):
			return "CompleteMultipartUpload"
		case q.Has("delete"):
			return "DeleteObjects"
		}
		return "PostObject"
	}
	return ""
}

// auditS3 records the revision-store requests that changed something.
// Only successful ones are kept: the signature of a refused S3 request is
// not known to be valid here, and anyone could fill the log with them.
func (s *Server) auditS3(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := s3Operation(r)
		if op == "" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK // nothing written: net/http answers 200
		}
		if sw.status < 200 || sw.status > 299 {
			return
		}
		// Credential=<key id>/<date>/<region>/s3/aws4_request
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		scope := strings.Split(strings.SplitN(cred, ",", 2)[0], "/")
		e := audit.Entry{Time: s.cfg.Now(), AccessKeyID: scope[0], Operation: "s3:" + op,
			Resources: []string{"s3:" + strings.TrimPrefix(r.URL.Path, "/")}, Source: r.RemoteAddr, Outcome: audit.Success}
		if len(scope) > 2 {
			e.Region = scope[2]
		}
		if len(e.Resources[0]) > 256 {
			e.Resources[0] = e.Resources[0][:256]
		}
		ctx := context.WithoutCancel(r.Context())
		if k, err := s.Keys.Get(ctx, e.AccessKeyID); err == nil {
			e.Principal, e.Account = k.Arn, k.Account
		} else if s.cfg.Open {
			e.Principal, e.Account = "arn:aws:iam::"+s.cfg.RootAccount+":root", s.cfg.RootAccount
		}
		// The owner is named too: the entry is the caller's, the bucket
		// may be another's (a deleted bucket was the caller's own).
		owner := e.Account
		if bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); bucket != "" && s.Revisions != nil {
			if o, ok, err := s.Revisions.BucketOwner(bucket); err == nil && ok {
				owner = o
			}
		}
		if owner != "" {
			e.Resources = append(e.Resources, "bucket-owner:"+owner)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := audit.Record(rctx, s.Store, e); err != nil {
			s.log.ErrorContext(ctx, "audit record lost", "operation", e.Operation, "access_key", e.AccessKeyID, "err", err)
		}
	})
}
