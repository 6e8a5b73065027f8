package keys

import (
	"sync"
	"time"
)

// Kind is the store kind of access keys: the server follows its changes
// (on every replica, through the change feed) with Forget.
const Kind = kind

// lookupCache keeps opened keys for Lookup, which every request calls. It
// is only correct together with invalidation: Forget on every change of
// the key's record (Revoke, Import, another replica's or the CLI's write),
// and its age bounds staleness when a change is not reported at all.
type lookupCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]cachedKey
}

type cachedKey struct {
	key     Key
	secret  string
	at      time.Time
	version int64 // Manager.Version when read
}

func (c *lookupCache) get(id string, now time.Time, maxAge time.Duration) (cachedKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.at) >= maxAge || now.Before(e.at) {
		return cachedKey{}, false
	}
	return e, true
}

func (c *lookupCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores an answer read at generation gen, unless an invalidation
// happened since (the answer may predate it).
func (c *lookupCache) put(id string, e cachedKey, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]cachedKey{}
	}
	c.m[id] = e
}

func (c *lookupCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if id == "" {
		clear(c.m)
		return
	}
	delete(c.m, id)
}

// Forget drops the cached lookup of an access key id ("" for every key:
// changes may have been missed).
func (m *Manager) Forget(id string) { m.cache.forget(id) }
