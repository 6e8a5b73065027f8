package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/cutoverhq/cutover/internal/revstore"
	"github.com/cutoverhq/cutover/internal/sigv4"
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
		Logger:        s.log,
		Now:           s.cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("revision store: %w", err)
	}
	s.Revisions = rs
	return nil
}

// authorizeRevisions lets an on-premises instance's key read revisions (the
// agent downloads bundles with it) but not change them, whatever region
// the request was signed for.
func (s *Server) authorizeRevisions(ctx context.Context, id sigv4.Identity, write bool) error {
	if !write {
		return nil
	}
	name, err := s.API.InstanceOfPrincipal(ctx, id.Account, id.PrincipalARN)
	if err != nil {
		return fmt.Errorf("looking up the caller: %w", err)
	}
	if name != "" {
		return fmt.Errorf("the key of on-premises instance %s may only read revisions", name)
	}
	return nil
}

// withRevisions sends S3 requests to the revision store and the rest to h.
func (s *Server) withRevisions(h http.Handler) http.Handler {
	if s.Revisions == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if revstore.IsS3Request(r) {
			s.Revisions.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
