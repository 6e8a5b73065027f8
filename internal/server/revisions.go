package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/revstore"
	"github.com/cutoverhq/cutover/internal/sigv4"
	"github.com/cutoverhq/cutover/internal/store"
)

// openRevisions opens the embedded revision store in <data-dir>/revisions,
// unless cfg turns it off (several replicas share an external S3 service
// instead: each replica's data directory is its own).
func (s *Server) openRevisions() error {
	if s.cfg.S3Disabled {
		return nil
	}
	rs, err := revstore.New(revstore.Config{
		Dir:           filepath.Join(s.cfg.DataDir, "revisions"),
		Keys:          sigv4.KeyLookupFunc(s.keyLookup()),
		Authorize:     s.authorizeRevisions,
		MaxObjectSize: s.cfg.S3MaxObjectSize,
		AutoBucket:    s.cfg.S3AutoBucket,
		Account:       s.revisionsAccount,
		DefaultOwner:  s.cfg.RootAccount,
		Logger:        s.log,
		Now:           s.cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("revision store: %w", err)
	}
	s.Revisions = rs
	return nil
}

// authorizeRevisions decides by the key's declared role. Revisions are
// shared by every application and region, so only an admin or deployer
// key without limits may change them (a limited key could replace another
// application's bundle); every other key may read them, a host key only
// while its instance is registered with it (its agent downloads bundles).
func (s *Server) authorizeRevisions(ctx context.Context, id sigv4.Identity, write bool) error {
	k, err := s.Keys.Get(ctx, id.AccessKeyID)
	switch {
	case errors.Is(err, keys.ErrNotFound) && s.cfg.Open:
		// Open mode (cutover dev): an unknown key is the root admin.
		return nil
	case err != nil:
		return fmt.Errorf("looking up the caller: %w", err)
	}
	switch {
	case k.Role == access.Host:
		if write {
			return fmt.Errorf("the host key of on-premises instance %s may only read revisions", k.Instance)
		}
		return s.hostRegistered(ctx, k)
	case k.Role == access.ReadOnly:
		if write {
			return errors.New("a read-only key may only read revisions")
		}
	case k.Role == access.Admin, k.Role == access.Deployer:
		if write && k.Narrowed() {
			return errors.New("a key limited to applications or regions may only read revisions")
		}
	default:
		return fmt.Errorf("a key of role %q has no access to revisions", k.Role)
	}
	return nil
}

// revisionsAccount is the account owning the buckets a caller creates and
// the only account whose buckets it may use (open mode: an unknown key is
// the root admin's).
func (s *Server) revisionsAccount(ctx context.Context, id sigv4.Identity) (string, error) {
	k, err := s.Keys.Get(ctx, id.AccessKeyID)
	switch {
	case errors.Is(err, keys.ErrNotFound) && s.cfg.Open:
		return s.cfg.RootAccount, nil
	case err != nil:
		return "", fmt.Errorf("looking up the caller: %w", err)
	}
	return k.Account, nil
}

// hostRegistered checks that a host key's instance is registered with the
// key's principal.
func (s *Server) hostRegistered(ctx context.Context, k keys.Key) error {
	return s.Store.View(ctx, func(tx store.Tx) error {
		in, err := api.LoadInstance(ctx, tx, k.Account, k.Region, k.Instance)
		if err != nil || in.DeregisterTime != nil || in.IamUserArn == nil || *in.IamUserArn != k.Arn {
			return fmt.Errorf("on-premises instance %s is not registered with this key", k.Instance)
		}
		return nil
	})
}

// withRevisions sends S3 requests to the revision store and the rest to h.
func (s *Server) withRevisions(h http.Handler) http.Handler {
	if s.Revisions == nil {
		return h
	}
	revisions := s.auditS3(s.Revisions)
	timeout := s.cfg.BodyTimeout
	if timeout <= 0 {
		timeout = awsjson.DefaultBodyTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if revstore.IsS3Request(r) && !caRequest(r) {
			// Bounds the draining of a body the store refuses unread (a
			// stalled client would otherwise hold the connection); the
			// store sets its own deadline for a body it reads.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
			revisions.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
