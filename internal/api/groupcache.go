package api

import (
	"bytes"
	"encoding/json"
	"sync"

	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

// maxCachedGroups bounds the decoded deployment groups kept by a server;
// past it the cache starts over, which costs only decoding again.
const maxCachedGroups = 4096

// groupCache keeps decoded deployment-group records for read-only
// operations (BatchGetDeploymentGroups), keyed by store key. An entry is
// used only when the bytes just read from the store equal the bytes it
// was decoded from, so a record changed by any writer (another replica,
// the CLI's own store handle) is decoded afresh: the cache never decides
// what is current, the read in the caller's transaction does. Entries are
// shared between requests and must not be modified.
type groupCache struct {
	mu sync.Mutex
	m  map[string]cachedGroup
}

type cachedGroup struct {
	raw []byte
	g   *cd.DeploymentGroupInfo
}

// decode returns the group stored as raw under key, decoding it only if
// the cache holds no entry for exactly these bytes.
func (c *groupCache) decode(key string, raw []byte) (*cd.DeploymentGroupInfo, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.g, nil
	}
	var g cd.DeploymentGroupInfo
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedGroups {
		c.m = make(map[string]cachedGroup)
	}
	c.m[key] = cachedGroup{raw: bytes.Clone(raw), g: &g}
	return &g, nil
}
