package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
)

// defaultCacheSize bounds the derived-key cache. A signing key is valid for
// one (secret, day, region, service), so the live set is roughly
// active keys x regions x services; a thousand entries covers a large
// installation while keeping memory trivial (~100 bytes per entry).
const defaultCacheSize = 1024

type cacheKey struct {
	secret, date, region, service string
}

// keyCache memoises SigV4 signing-key derivation, which costs four HMACs
// (eight SHA-256 compressions plus setup) per request otherwise.
//
// Eviction is arbitrary (whatever map iteration yields first) rather than
// LRU: entries expire naturally when the UTC day changes, the working set is
// small, and only requests whose signature verified are inserted, so an
// unauthenticated client cannot churn the cache.
type keyCache struct {
	mu sync.Mutex
	m  map[cacheKey][]byte
}

func (c *keyCache) get(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.m[k]
	return key, ok
}

func (c *keyCache) put(k cacheKey, key []byte, limit int) {
	if limit <= 0 {
		limit = defaultCacheSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[cacheKey][]byte)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= limit {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = key
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// deriveKey computes the SigV4 signing key:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveKey(k cacheKey) []byte {
	key := hmacSHA256([]byte("AWS4"+k.secret), k.date)
	key = hmacSHA256(key, k.region)
	key = hmacSHA256(key, k.service)
	return hmacSHA256(key, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
