// Package haproxy drives a real HAProxy (2.6+) over its runtime API.
//
// Each target group is an haproxy.cfg backend without servers; members are
// dynamic servers ("add server"), so membership changes need no reload and
// drop no connection. A new server is added in maintenance with health
// checks on, and enabled only once its checks pass: HAProxy treats a server
// leaving maintenance as up, whatever its checks said. Removed servers are
// set to drain, then, once idle or after the deregistration delay, put in
// maintenance and deleted.
//
// All state lives in HAProxy, so a restarted Cutover server recovers by
// applying again: server names are derived from backend IDs.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// pollInterval paces waits on HAProxy state.
const pollInterval = 10 * time.Millisecond

// Options tune a Router.
type Options struct {
	Logger *slog.Logger // default slog.Default()
}

// Router drives target groups served by HAProxy.
type Router struct {
	groups map[string]*group
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

var _ traffic.Router = (*Router)(nil)

type group struct {
	cfg traffic.TargetGroupConfig
	api Client
	log *slog.Logger

	applyMu sync.Mutex
	mu      sync.Mutex
	ctx     context.Context   // ends at Router.Close: stops background drains
	ids     map[string]string // server name -> backend ID, for Members
	drains  map[string]int    // server name -> generation of its pending deletion
	gen     int
}

// New returns a Router for the target groups; each names its runtime API
// socket and backend in HAProxy. The Driver field is not consulted.
func New(cfgs []traffic.TargetGroupConfig, opts Options) (*Router, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Router{groups: make(map[string]*group, len(cfgs))}
	for _, c := range cfgs {
		c = c.WithDefaults()
		c.Driver = traffic.DriverHAProxy
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if _, dup := r.groups[c.Name]; dup {
			return nil, fmt.Errorf("haproxy: target group %q configured twice", c.Name)
		}
		r.groups[c.Name] = &group{
			cfg: c, api: Client{Socket: c.HAProxy.Socket},
			log:    log.With("target_group", c.Name, "haproxy_backend", c.HAProxy.Backend),
			ids:    make(map[string]string),
			drains: make(map[string]int),
		}
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	for _, g := range r.groups {
		g.ctx = ctx
	}
	return r, nil
}

func (r *Router) group(tg string) (*group, error) {
	g, ok := r.groups[tg]
	if !ok {
		return nil, fmt.Errorf("haproxy: target group %q: %w", tg, traffic.ErrUnknownTargetGroup)
	}
	return g, nil
}

// ServerName is the HAProxy server name used for a backend ID: the ID itself
// when HAProxy accepts it, else a sanitised form with a hash suffix.
func ServerName(id string) string {
	ok := id != ""
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
			ok = false
		}
	}
	if ok {
		return id
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s-%08x", b, h.Sum32())
}

// Apply implements traffic.Router.
func (r *Router) Apply(ctx context.Context, targetGroup string, backends []traffic.Backend) error {
	g, err := r.group(targetGroup)
	if err != nil {
		return err
	}
	if err := traffic.ValidateBackends(backends); err != nil {
		return fmt.Errorf("haproxy: target group %q: %w", targetGroup, err)
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	return g.apply(ctx, r, backends)
}

func (g *group) srv(name string) string { return g.cfg.HAProxy.Backend + "/" + name }

func (g *group) apply(ctx context.Context, r *Router, backends []traffic.Backend) error {
	cur, err := g.api.servers(ctx, g.cfg.HAProxy.Backend)
	if err != nil {
		return err
	}
	h := g.cfg.HealthCheck
	want := make(map[string]bool, len(backends))
	var toEnable, toWait []string
	g.mu.Lock()
	g.gen++ // cancels pending deletions of servers listed again
	g.mu.Unlock()

	// Phase 1: register, readdress and reweigh; old servers keep serving.
	for _, b := range backends {
		name := ServerName(b.ID)
		want[name] = true
		g.mu.Lock()
		g.ids[name] = b.ID
		delete(g.drains, name)
		g.mu.Unlock()
		s, exists := cur[name]
		if exists && s.addr != b.Addr {
			// A new address is a new server: delete and add again rather
			// than "set server addr", so health starts from scratch.
			if err := g.remove(ctx, name, true); err != nil {
				return err
			}
			exists = false
		}
		if !exists {
			cmd := fmt.Sprintf("add server %s %s weight %d", g.srv(name), b.Addr, b.Weight)
			if h.Enabled() {
				cmd += fmt.Sprintf(" check inter %s rise %d fall %d", ms(h.Interval), h.HealthyThreshold, h.UnhealthyThreshold)
			}
			if err := g.api.exec(ctx, cmd, "New server registered."); err != nil {
				return err
			}
			if g.cfg.StickyCookie != "" {
				// HAProxy 2.6 gives a dynamic server no cookie at "add
				// server"; setting the key again recomputes every server's.
				if err := g.api.exec(ctx, "set dynamic-cookie-key backend "+g.cfg.HAProxy.Backend+" "+dynamicCookieKey(g.cfg.Name), ""); err != nil {
					return err
				}
			}
			if h.Enabled() {
				if err := g.api.exec(ctx, "enable health "+g.srv(name), ""); err != nil {
					return err
				}
			}
			toEnable = append(toEnable, name)
		} else {
			if s.weight != b.Weight {
				if err := g.api.exec(ctx, fmt.Sprintf("set server %s weight %d", g.srv(name), b.Weight), ""); err != nil {
					return err
				}
			}
			switch {
			case s.maint():
				toEnable = append(toEnable, name)
			case s.draining():
				// Listed again while draining (a rollback): its checks kept
				// running, so it can serve at once.
				if err := g.api.exec(ctx, "set server "+g.srv(name)+" state ready", ""); err != nil {
					return err
				}
			}
		}
		if b.Weight > 0 {
			toWait = append(toWait, name)
		}
	}

	// Phase 2: enable servers in maintenance once their checks pass, and
	// wait until every weighted server is up.
	if err := g.waitReady(ctx, toEnable, toWait); err != nil {
		return err
	}

	// Phase 3: drain everything else.
	var removed []string
	for name, s := range cur {
		if want[name] {
			continue
		}
		g.mu.Lock()
		_, pending := g.drains[name]
		g.mu.Unlock()
		if pending {
			continue
		}
		if !s.maint() && !s.draining() {
			if err := g.api.exec(ctx, "set server "+g.srv(name)+" state drain", ""); err != nil {
				return err
			}
		}
		removed = append(removed, name)
		g.startDrain(r, name)
	}
	if len(toEnable) > 0 || len(removed) > 0 {
		g.log.Info("haproxy: membership applied", "enabled", toEnable, "draining", removed)
	}
	return nil
}

// waitReady enables each server of enable once its health checks pass, then
// waits until each server of ready is up and serving.
func (g *group) waitReady(ctx context.Context, enable, ready []string) error {
	pending := make(map[string]bool, len(enable))
	for _, n := range enable {
		pending[n] = true
	}
	checks := g.cfg.HealthCheck.Enabled()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	bad := []string{"no state read from HAProxy yet"}
	for {
		done, err := g.readyStep(ctx, pending, ready, checks, &bad)
		if done {
			return nil
		}
		// A runtime API call can hit the context's deadline a moment
		// before the context reports it; both mean time is up.
		if cause := ctx.Err(); cause != nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return fmt.Errorf("haproxy: target group %q: %w: %s; previous servers keep serving, unhealthy new ones stay in maintenance until the next Apply: %w",
				g.cfg.Name, traffic.ErrNotHealthy, strings.Join(bad, "; "), cause)
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// readyStep enables the pending servers whose checks pass and reports
// whether all of ready serve; *bad lists the ones that do not.
func (g *group) readyStep(ctx context.Context, pending map[string]bool, ready []string, checks bool, bad *[]string) (bool, error) {
	cur, err := g.api.servers(ctx, g.cfg.HAProxy.Backend)
	if err != nil {
		return false, err
	}
	for n := range pending {
		s, ok := cur[n]
		if !ok {
			return false, fmt.Errorf("haproxy: server %s vanished", g.srv(n))
		}
		if checks && !(s.checkRes == checkPass && s.health >= g.cfg.HealthCheck.HealthyThreshold) {
			continue
		}
		if err := g.api.exec(ctx, "enable server "+g.srv(n), ""); err != nil {
			return false, err
		}
		delete(pending, n)
	}
	*bad = (*bad)[:0]
	for _, n := range ready {
		s := cur[n]
		switch {
		case pending[n]:
			*bad = append(*bad, fmt.Sprintf("%s (%s): health checks not passing (check_result=%d)", n, s.addr, s.checkRes))
		case !s.up() || s.maint() || s.draining():
			*bad = append(*bad, fmt.Sprintf("%s (%s): not up (op_state=%d admin_state=%d)", n, s.addr, s.opState, s.adminState))
		}
	}
	return len(*bad) == 0 && len(pending) == 0, nil
}

// startDrain deletes a draining server once it has no sessions or the
// deregistration delay has passed, unless an Apply lists it again first.
func (g *group) startDrain(r *Router, name string) {
	g.mu.Lock()
	gen := g.gen
	g.drains[name] = gen
	g.mu.Unlock()
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		ctx := g.ctx
		deadline := time.Now().Add(g.cfg.DeregistrationDelay)
		for time.Now().Before(deadline) {
			sess, err := g.api.sessions(ctx, g.cfg.HAProxy.Backend)
			if err == nil && sess[name] == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pollInterval):
			}
		}
		g.applyMu.Lock()
		defer g.applyMu.Unlock()
		g.mu.Lock()
		still := g.drains[name] == gen
		if still {
			delete(g.drains, name)
		}
		g.mu.Unlock()
		if !still {
			return
		}
		if err := g.remove(ctx, name, false); err != nil {
			g.log.Warn("haproxy: removing drained server failed; the next Apply retries", "server", name, "err", err)
			return
		}
		g.log.Info("haproxy: server drained and deleted", "server", name)
	}()
}

// remove puts a server in maintenance and deletes it. HAProxy refuses to
// delete a server that still has connections, so remaining sessions are
// shut down (the deregistration delay is over) and the delete retried.
func (g *group) remove(ctx context.Context, name string, force bool) error {
	s := g.srv(name)
	if err := g.api.exec(ctx, "set server "+s+" state maint", ""); err != nil {
		return err
	}
	var err error
	for i := range 50 {
		if err = g.api.exec(ctx, "del server "+s, "Server deleted."); err == nil {
			g.mu.Lock()
			delete(g.ids, name)
			g.mu.Unlock()
			return nil
		}
		if i == 0 || force {
			g.api.Do(ctx, "shutdown sessions server "+s)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(2 * pollInterval):
		}
	}
	return err
}

// Members implements traffic.Router.
func (r *Router) Members(ctx context.Context, targetGroup string) ([]traffic.MemberStatus, error) {
	g, err := r.group(targetGroup)
	if err != nil {
		return nil, err
	}
	cur, err := g.api.servers(ctx, g.cfg.HAProxy.Backend)
	if err != nil {
		return nil, err
	}
	sess, err := g.api.sessions(ctx, g.cfg.HAProxy.Backend)
	if err != nil {
		return nil, err
	}
	out := make([]traffic.MemberStatus, 0, len(cur))
	g.mu.Lock()
	for name, s := range cur {
		id, ok := g.ids[name]
		if !ok {
			id = name // added before a restart: the name is the best ID we have
		}
		st := traffic.MemberStatus{
			Backend:  traffic.Backend{ID: id, Addr: s.addr, Weight: s.weight},
			Healthy:  s.up() && (s.checkState&0x04 == 0 || s.checkRes == checkPass || s.health >= g.cfg.HealthCheck.HealthyThreshold),
			InFlight: sess[name],
		}
		_, pending := g.drains[name]
		switch {
		case pending || s.draining() || s.weight == 0:
			st.State = traffic.StateDraining
		case s.maint() || !st.Healthy:
			st.State = traffic.StateUnhealthy
		default:
			st.State = traffic.StateServing
		}
		if s.maint() && s.checkRes != checkPass {
			st.Healthy = false
		}
		out = append(out, st)
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// WaitDrained implements traffic.Router.
func (r *Router) WaitDrained(ctx context.Context, targetGroup string) error {
	g, err := r.group(targetGroup)
	if err != nil {
		return err
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		g.mu.Lock()
		n := len(g.drains)
		g.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: target group %q: %d servers still draining: %w", targetGroup, n, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops background drains. HAProxy keeps its state; the next
// Router's Apply takes over.
func (r *Router) Close() error {
	r.cancel()
	r.bg.Wait()
	return nil
}
