package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// pollInterval paces the control plane's waits (health during Apply, drains).
// It is short because a switch should take effect within milliseconds.
const pollInterval = 5 * time.Millisecond

// group is one target group: a listener and its members.
type group struct {
	cfg traffic.TargetGroupConfig
	log *slog.Logger
	ln  net.Listener
	srv *http.Server // http mode only

	snap atomic.Pointer[snapshot]

	applyMu sync.Mutex // serialises Apply so each sees the previous one's result
	mu      sync.Mutex // guards members and the control-plane fields of each member
	members map[string]*member
	closed  bool

	ctx    context.Context // ends at close: health checks, drains, tcp conns
	cancel context.CancelFunc
	bg     sync.WaitGroup
	conns  connSet // tcp mode: client connections, cut at close

	health *http.Client
	out    outage          // no member to send to: what has been logged of it
	obs    RequestObserver // nil: none
}

func startGroup(cfg traffic.TargetGroupConfig, log *slog.Logger, obs RequestObserver) (*group, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("builtin: target group %q: %w", cfg.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{
		cfg:     cfg,
		log:     log,
		ln:      ln,
		members: make(map[string]*member),
		ctx:     ctx,
		cancel:  cancel,
		obs:     obs,
		health: &http.Client{
			// A fresh connection per check also proves the backend accepts
			// connections, and leaves nothing to clean up on removal.
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	g.snap.Store(&snapshot{})
	if cfg.Mode == traffic.ModeTCP {
		g.bg.Add(1)
		go g.serveTCP()
	} else {
		g.srv = &http.Server{
			Handler:           g.newProxy(),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("builtin: listener stopped", "err", err)
			}
		}()
	}
	log.Info("builtin: listening", "addr", ln.Addr().String(), "mode", cfg.Mode)
	return g, nil
}

// rebuildLocked publishes a new snapshot from the current member set.
func (g *group) rebuildLocked() {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].key() < ms[j].key() })
	g.snap.Store(newSnapshot(ms))
}

func (g *group) rebuild() {
	g.mu.Lock()
	g.rebuildLocked()
	g.mu.Unlock()
}

// acquire picks a member for a new request or connection and counts it as
// in flight. The removed check after counting pairs with the drainer, which
// marks a member removed before reading its count: either the request sees
// the mark and picks again, or the drainer sees the request.
func (g *group) acquire(skip *member) *member {
	return g.acquirePreferring(nil, skip)
}

// acquirePreferring is acquire trying want first (a sticky client's member).
func (g *group) acquirePreferring(want, skip *member) *member {
	for range 4 {
		m := want
		want = nil
		if m == nil {
			m = g.snap.Load().pick(skip)
		}
		if m == nil {
			return nil
		}
		m.inFlight.Add(1)
		if !m.removed.Load() {
			return m
		}
		m.inFlight.Add(-1)
	}
	return nil
}

// passiveFailure takes a member that refused a connection out of rotation
// until the health checker sees it pass again. Without health checks nothing
// would bring it back, so then only the retry protects the request.
func (g *group) passiveFailure(m *member, err error) {
	if !g.cfg.HealthCheck.Enabled() || !m.healthy.Load() {
		return
	}
	m.suspect.Store(true)
	if m.healthy.CompareAndSwap(true, false) {
		g.log.Warn("builtin: backend failed, out of rotation until healthy", "id", m.id, "addr", m.addr, "err", err)
		g.rebuild()
	}
}

func (g *group) apply(ctx context.Context, backends []traffic.Backend) error {
	if err := traffic.ValidateBackends(backends); err != nil {
		return fmt.Errorf("builtin: target group %q: %w", g.cfg.Name, err)
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()

	// Phase 1: register and reweigh. Old members keep serving meanwhile.
	want := make(map[*member]bool, len(backends))
	var wait []*member
	var added []string
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fmt.Errorf("builtin: target group %q: router closed", g.cfg.Name)
	}
	for _, b := range backends {
		k := b.ID + "\x00" + b.Addr
		m := g.members[k]
		switch {
		case m == nil:
			m = g.newMemberLocked(b)
			g.members[k] = m
			added = append(added, b.ID)
		case !m.inSet:
			// Re-added while draining (a quick rollback): revive it with
			// its health intact instead of waiting for new checks.
			m.drainGen++
			m.removed.Store(false)
			added = append(added, b.ID)
		}
		m.inSet = true
		m.weight = b.Weight
		want[m] = true
		if b.Weight > 0 {
			wait = append(wait, m)
		}
	}
	g.rebuildLocked()
	g.mu.Unlock()

	if err := g.waitHealthy(ctx, wait); err != nil {
		return err
	}

	// Phase 2: the new members serve, so the old ones can go. The new
	// snapshot is published before members are marked removed, so a request
	// that sees the mark finds the new snapshot when it picks again.
	var removed []*member
	g.mu.Lock()
	for _, m := range g.members {
		if m.inSet && !want[m] {
			m.inSet = false
			removed = append(removed, m)
		}
	}
	g.rebuildLocked()
	for _, m := range removed {
		m.removed.Store(true)
		g.startDrainLocked(m)
	}
	g.mu.Unlock()

	if len(added) > 0 || len(removed) > 0 {
		ids := make([]string, len(removed))
		for i, m := range removed {
			ids[i] = m.id
		}
		g.log.Info("builtin: membership applied", "added", added, "draining", ids)
	}
	return nil
}

func (g *group) newMemberLocked(b traffic.Backend) *member {
	m := &member{id: b.ID, addr: b.Addr, token: traffic.StickyToken(g.cfg.Name, b.ID)}
	if g.cfg.Mode == traffic.ModeHTTP {
		m.transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return m.dial(ctx, "tcp")
			},
			// Every client connection may need its own backend connection;
			// a small idle pool would make each burst redial.
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true, // pass encodings through untouched
			ExpectContinueTimeout: time.Second,
		}
	}
	if !g.cfg.HealthCheck.Enabled() {
		m.healthy.Store(true)
		return m
	}
	ctx, cancel := context.WithCancel(g.ctx)
	m.stopCheck = cancel
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		g.runChecks(ctx, m)
	}()
	return m
}

// waitHealthy waits until every member in ms is healthy.
func (g *group) waitHealthy(ctx context.Context, ms []*member) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		all := true
		for _, m := range ms {
			if !m.healthy.Load() {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			var bad []string
			g.mu.Lock()
			for _, m := range ms {
				if !m.healthy.Load() {
					bad = append(bad, fmt.Sprintf("%s (%s): %v", m.id, m.addr, m.lastErr))
				}
			}
			g.mu.Unlock()
			return fmt.Errorf("builtin: target group %q: %w: %s; previous members keep serving: %w",
				g.cfg.Name, traffic.ErrNotHealthy, strings.Join(bad, "; "), ctx.Err())
		case <-t.C:
		}
	}
}

// startDrainLocked removes m once its in-flight work is done or the
// deregistration delay has passed, whichever is first.
func (g *group) startDrainLocked(m *member) {
	m.drainGen++
	gen := m.drainGen
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		deadline := time.NewTimer(g.cfg.DeregistrationDelay)
		defer deadline.Stop()
		t := time.NewTicker(pollInterval)
		defer t.Stop()
	wait:
		for m.inFlight.Load() > 0 {
			select {
			case <-g.ctx.Done():
				return
			case <-deadline.C:
				break wait
			case <-t.C:
			}
		}
		g.mu.Lock()
		if m.drainGen != gen || m.inSet {
			g.mu.Unlock()
			return // re-added meanwhile
		}
		delete(g.members, m.key())
		if m.stopCheck != nil {
			m.stopCheck()
		}
		g.mu.Unlock()
		left := m.inFlight.Load()
		m.conns.closeAll()
		if m.transport != nil {
			m.transport.CloseIdleConnections()
		}
		g.log.Info("builtin: backend drained and removed", "id", m.id, "addr", m.addr, "cut_in_flight", left)
	}()
}

func (g *group) waitDrained(ctx context.Context) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		draining := 0
		g.mu.Lock()
		for _, m := range g.members {
			if !m.inSet {
				draining++
			}
		}
		g.mu.Unlock()
		if draining == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("builtin: target group %q: %d backends still draining: %w", g.cfg.Name, draining, ctx.Err())
		case <-t.C:
		}
	}
}

func (g *group) statuses() []traffic.MemberStatus {
	g.mu.Lock()
	out := make([]traffic.MemberStatus, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m.status())
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

func (g *group) close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()

	var err error
	if g.srv != nil {
		err = g.srv.Close()
	} else {
		err = g.ln.Close()
		g.conns.closeAll()
	}
	g.cancel()
	g.mu.Lock()
	for _, m := range g.members {
		m.conns.closeAll()
		if m.transport != nil {
			m.transport.CloseIdleConnections()
		}
	}
	g.mu.Unlock()
	g.bg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("builtin: target group %q: %w", g.cfg.Name, err)
	}
	return nil
}
