package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/lease"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// kindApplied records, per HAProxy target group, the membership its pushing
// replica last applied: target group -> appliedRecord.
const kindApplied = "tgapplied"

// appliedRecord is the outcome of the last push of a target group.
type appliedRecord struct {
	Hash  string `json:"hash"` // of the stored desired membership pushed
	Error string `json:"error,omitempty"`
}

// reconciler makes the routers serve the desired membership stored for
// each target group: level-triggered, it re-reads the store and applies the
// whole membership whenever told that it changed (change feed, start-up,
// a traffic event waiting). One worker per target group pushes one state at
// a time; a newer state cancels a push still waiting for health checks
// (Router.Apply then keeps what it registered, and removes nothing).
//
// Every replica runs the builtin routers of its configuration, so every
// replica pushes builtin target groups to its own listeners. An HAProxy is
// shared: only the replica holding the target group's lease pushes to it,
// and it records the outcome (kindApplied) for the replica whose traffic
// event waits on it.
type reconciler struct {
	*shared
	goroutines
	leases *lease.Manager
	poke   chan struct{} // look for free target group leases now

	mu      sync.Mutex
	workers map[string]*tgWorker
	tgHeld  map[string]lease.Lease // haproxy target groups this replica pushes
}

type tgWorker struct {
	poke chan struct{}

	mu       sync.Mutex
	cancel   context.CancelFunc // of the push in flight
	waiters  []chan error       // wait for a push started after they asked
	inflight []chan error
}

func newReconciler(sh *shared, leases *lease.Manager) *reconciler {
	return &reconciler{shared: sh, leases: leases, poke: make(chan struct{}, 1), workers: map[string]*tgWorker{}, tgHeld: map[string]lease.Lease{}}
}

// pushes reports whether this replica pushes tg to its router.
func (c *reconciler) pushes(tg string) bool {
	cfg, ok := c.cfg.TargetGroups[tg]
	if !ok || c.cfg.Traffic == nil {
		return false
	}
	if cfg.Driver != traffic.DriverHAProxy {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, held := c.tgHeld[tg]
	return held
}

func (c *reconciler) pokeAll() {
	for tg := range c.cfg.TargetGroups {
		c.pokeGroup(tg)
	}
}

// pokeGroup asks for tg to be pushed again. A builtin push still waiting
// for health checks is superseded (cancelled: its members stay registered
// and join once healthy). An HAProxy push is not: it runs several runtime
// API commands per server (add, then enable its checks), and one cut
// between them would leave a server in maintenance without checks.
func (c *reconciler) pokeGroup(tg string) {
	if !c.pushes(tg) {
		return
	}
	w := c.worker(tg)
	w.mu.Lock()
	if w.cancel != nil && c.cfg.TargetGroups[tg].Driver != traffic.DriverHAProxy {
		w.cancel()
	}
	w.mu.Unlock()
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

func (c *reconciler) worker(tg string) *tgWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.workers[tg]
	if w == nil {
		w = &tgWorker{poke: make(chan struct{}, 1)}
		c.workers[tg] = w
		c.goOwned(func() { c.run(tg, w) })
	}
	return w
}

func (c *reconciler) run(tg string, w *tgWorker) {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-w.poke:
		}
		ctx, cancel := context.WithTimeout(c.ctx, trafficTimeout)
		w.mu.Lock()
		w.cancel = cancel
		w.inflight = append(w.inflight, w.waiters...)
		w.waiters = nil
		w.mu.Unlock()
		err := c.push(ctx, tg)
		superseded := ctx.Err() == context.Canceled && c.ctx.Err() == nil
		cancel()
		w.mu.Lock()
		w.cancel = nil
		var answer []chan error
		if !superseded {
			answer, w.inflight = w.inflight, nil
		}
		w.mu.Unlock()
		for _, ch := range answer {
			ch <- err
		}
		if err != nil && !superseded && c.ctx.Err() == nil {
			c.log.Warn("applying target group membership", "target_group", tg, "err", err)
		}
	}
}

// push applies the stored desired membership of tg to this replica's
// router; for HAProxy it records the outcome for other replicas.
func (c *reconciler) push(ctx context.Context, tg string) error {
	var bs []traffic.Backend
	var hash string
	err := c.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		bs, hash, err = loadMembership(ctx, tx, tg)
		return err
	})
	if err != nil {
		return err
	}
	err = c.cfg.Traffic.Apply(ctx, tg, bs)
	if c.cfg.TargetGroups[tg].Driver == traffic.DriverHAProxy && !errors.Is(err, context.Canceled) {
		rec := appliedRecord{Hash: hash}
		if err != nil {
			rec.Error = err.Error()
		}
		b, _ := json.Marshal(rec)
		c.mu.Lock()
		l, held := c.tgHeld[tg]
		c.mu.Unlock()
		if held {
			werr := c.cfg.Store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
				if err := c.leases.Check(ctx, tx, l); err != nil {
					return err
				}
				return tx.Put(ctx, kindApplied, tg, b)
			})
			if werr != nil {
				c.log.Warn("recording target group push", "target_group", tg, "err", werr)
			}
		}
	}
	return err
}

// sync waits until tg's router serves the desired membership stored now:
// for a target group this replica pushes, a push that starts after the
// call; for an HAProxy pushed by another replica, its recorded outcome for
// this very membership.
func (c *reconciler) sync(ctx context.Context, tg string) error {
	if c.cfg.TargetGroups[tg].Driver == traffic.DriverHAProxy && !c.pushes(tg) {
		return c.awaitApplied(ctx, tg)
	}
	w := c.worker(tg)
	ch := make(chan error, 1)
	w.mu.Lock()
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	c.pokeGroup(tg)
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitApplied waits for the pushing replica of an HAProxy target group to
// record that it applied the stored membership.
func (c *reconciler) awaitApplied(ctx context.Context, tg string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var want string
		var got appliedRecord
		err := c.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			if _, want, err = loadMembership(ctx, tx, tg); err != nil {
				return err
			}
			b, err := tx.Get(ctx, kindApplied, tg)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &got)
		})
		if err != nil {
			return err
		}
		if got.Hash == want {
			if got.Error != "" {
				return errors.New(got.Error)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the replica pushing HAProxy target group %s: %w", tg, ctx.Err())
		case <-t.C:
		}
	}
}

func trafficLeaseName(tg string) string { return "traffic/" + tg }

// holdTrafficLeases takes the free leases of HAProxy target groups; on
// taking one it re-applies the stored membership (idempotent), so the new
// pusher starts from a known state.
func (c *reconciler) holdTrafficLeases(ctx context.Context) error {
	if c.cfg.Traffic == nil {
		return nil
	}
	for tg, cfg := range c.cfg.TargetGroups {
		if cfg.Driver != traffic.DriverHAProxy {
			continue
		}
		c.mu.Lock()
		_, held := c.tgHeld[tg]
		c.mu.Unlock()
		if held {
			continue
		}
		l, ok, err := c.leases.Acquire(ctx, trafficLeaseName(tg))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		c.mu.Lock()
		c.tgHeld[tg] = l
		c.mu.Unlock()
		c.log.Info("pushing HAProxy target group", "target_group", tg, "replica", c.cfg.ReplicaID)
		c.pokeGroup(tg)
	}
	return nil
}

// renewTrafficLeases renews the HAProxy target group leases held here.
func (c *reconciler) renewTrafficLeases() {
	c.mu.Lock()
	held := make(map[string]lease.Lease, len(c.tgHeld))
	for tg, l := range c.tgHeld {
		held[tg] = l
	}
	c.mu.Unlock()
	for tg, l := range held {
		err := c.leases.Renew(c.ctx, l)
		if errors.Is(err, lease.ErrLost) {
			c.mu.Lock()
			delete(c.tgHeld, tg)
			c.mu.Unlock()
		} else if err != nil && c.ctx.Err() == nil {
			c.log.Warn("renewing target group lease", "target_group", tg, "err", err)
		}
	}
}

// leaseLoop takes the leases of HAProxy target groups nobody pushes (when
// poked, as a lease is given up, and once per scheduling round) and renews
// the ones held here.
func (c *reconciler) leaseLoop() {
	take := time.NewTicker(scheduleEvery)
	defer take.Stop()
	renew := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer renew.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-renew.C:
			c.renewTrafficLeases()
			continue
		case <-take.C:
		case <-c.poke:
		}
		if err := c.holdTrafficLeases(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn("looking for target groups to push", "err", err)
		}
	}
}

// pokeLeases asks for free target group leases to be taken now.
func (c *reconciler) pokeLeases() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// held returns the target group leases this replica holds.
func (c *reconciler) held() []lease.Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := make([]lease.Lease, 0, len(c.tgHeld))
	for _, l := range c.tgHeld {
		held = append(held, l)
	}
	return held
}
