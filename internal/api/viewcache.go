package api

import (
	"context"
	"strings"
	"sync"
)

// Bounds of the read-result cache: entries (past it the cache starts
// over) and key length (longer requests are not cached).
const (
	maxCachedViews = 256
	maxViewKey     = 4096
)

// viewCache keeps the results of read-only operations, each tagged with
// the store's change counter read before the result was computed. An
// entry is served only while the counter still has that value, so any
// commit, this process's or another's (the CLI on the same SQLite file),
// retires every entry at once. Results are shared between requests and
// must not be modified.
type viewCache struct {
	mu sync.Mutex
	m  map[string]viewEntry
}

type viewEntry struct {
	version int64
	result  any
}

// cachedView returns load's result for key, reusing a result computed at
// the store's current version. Without a version source (s.Version nil:
// PostgreSQL) it always calls load. Errors are not cached.
func cachedView[T any](ctx context.Context, s *Server, key []string, load func() (T, error)) (T, error) {
	if s.Version == nil {
		return load()
	}
	k := strings.Join(key, "\x00")
	if len(k) > maxViewKey {
		return load()
	}
	// The version is read before the store is, so a commit racing with
	// load can only make the entry newer than its tag, never older.
	v, err := s.Version(ctx)
	if err != nil {
		return load()
	}
	c := &s.views
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && e.version == v {
		if r, ok := e.result.(T); ok {
			return r, nil
		}
	}
	r, err := load()
	if err != nil {
		return r, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedViews {
		c.m = make(map[string]viewEntry)
	}
	c.m[k] = viewEntry{version: v, result: r}
	return r, nil
}
