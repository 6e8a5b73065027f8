package api

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/store"

	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

func groupKey(sc scope, app, group string) string { return appKey(sc, app) + "/" + group }

// renameGroupApp rewrites the application name stored in a group record.
func renameGroupApp(v []byte, app string) ([]byte, error) {
	var g cd.DeploymentGroupInfo
	if err := decodeInto(v, &g); err != nil {
		return nil, err
	}
	g.ApplicationName = &app
	return json.Marshal(g)
}

// InstanceOfCaller returns the on-premises instance registered with the
// caller's principal ARN, or "" for other callers.
func (s *Server) InstanceOfCaller(ctx context.Context) (string, error) {
	c, ok := awsjson.CallerFrom(ctx)
	if !ok || c.Principal == "" {
		return "", nil
	}
	sc := scopeOf(ctx)
	key := sc.prefix() + c.Principal
	if name, ok := s.callers.get(key); ok {
		return name, nil
	}
	gen := s.callers.generation()
	var name string
	err := s.Store.View(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, kindIamArn, key)
		if notFound(err) {
			return nil
		}
		name = string(b)
		return err
	})
	if err == nil {
		s.callers.put(key, name, gen)
	}
	return name, err
}

// callerCache remembers which principals are on-premises instances: every
// request asks. This server's API invalidates an entry after committing a
// registration change; other replicas' changes arrive through the change
// feed (CallerChanged). A lookup that started before an invalidation does
// not store its (possibly stale) answer.
type callerCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]string
}

func (c *callerCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *callerCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *callerCache) put(key, name string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) > 100_000 {
		c.m = map[string]string{}
	}
	c.m[key] = name
}

func (c *callerCache) invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if key == "" {
		clear(c.m)
		return
	}
	delete(c.m, key)
}

// CallerKind is the store kind mapping principals to on-premises
// instances; its changes (on any replica) must reach CallerChanged.
const CallerKind = kindIamArn

// CallerChanged drops what the caller cache knows of key, a record of
// CallerKind ("" for all of them: changes may have been missed).
func (s *Server) CallerChanged(key string) { s.callers.invalidate(key) }

// GroupByID returns the deployment group with the given ID, looked up by
// its names first and, when renames moved it, among the caller's groups.
func GroupByID(ctx context.Context, tx store.Tx, account, region, app, group, id string) (*cd.DeploymentGroupInfo, error) {
	if g, err := LoadGroup(ctx, tx, account, region, app, group); err == nil && deref(g.DeploymentGroupId) == id {
		return g, nil
	}
	items, err := tx.Scan(ctx, kindGroup, scope{account, region}.prefix(), "", 0)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		var g cd.DeploymentGroupInfo
		if err := decodeInto(it.Value, &g); err != nil {
			return nil, err
		}
		if deref(g.DeploymentGroupId) == id {
			return &g, nil
		}
	}
	return nil, awsjson.Errorf("DeploymentGroupDoesNotExistException", "The deployment group %s no longer exists.", group)
}
