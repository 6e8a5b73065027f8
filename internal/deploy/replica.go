package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/lease"
	"github.com/cutoverhq/cutover/internal/store"
)

// Store kinds of the runtime state replicas share.
const (
	kindHostCmd  = "hostcmd"    // queueKey+" "+deployment id -> hostCommand waiting for the host to poll
	kindHostAddr = "hostaddr"   // host -> address its agent last polled from
	kindInbox    = "inbox"      // deployment id+"/"+seq -> inboxEvent for the replica driving it
	kindReply    = "inboxreply" // same key -> inboxReply, once applied
)

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readinessPrefix names the lease each replica takes to prove /readyz.
const readinessPrefix = "replica/"

func leaseName(id string) string         { return "deployment/" + id }
func teardownLeaseName(id string) string { return "teardown/" + id }

// queueKey is the queue of a host identifier in an account and region: the
// same IAM ARN may name instances of several regions.
func queueKey(account, region, host string) string {
	return account + "/" + region + "/" + host
}

func hostCmdKey(queue, id string) string { return queue + " " + id }

// queueHostCommands keeps the host command queue level with the engine:
// a host has a queued command for a deployment exactly when the instance's
// current command is an agent event not yet acknowledged. Only instances
// changed by this step are looked at (every change stamps LastUpdated),
// and of those only the ones whose queued command differs from what the
// loop knows is queued (queued; nil after a resume or a failed commit:
// then every instance is looked at once, and a record already holding the
// instance's command is left alone). It returns what is queued after the
// transaction commits.
func queueHostCommands(ctx context.Context, tx store.Tx, rec *Record, changed func(*engine.Instance) bool, queued map[int]string) (map[int]string, error) {
	done := engine.Terminal(rec.Engine.Status)
	known := queued != nil
	next := make(map[int]string, len(queued))
	for i, id := range queued {
		next[i] = id
	}
	for i, in := range rec.Engine.Instances {
		if known && !changed(in) && !done {
			continue
		}
		want := ""
		if c := in.Cmd; c != nil && !done && !engine.IsTrafficEvent(c.Event) && c.Acked.IsZero() {
			want = c.ID
		}
		have, had := next[i]
		if known && want == have && (want != "" || !had) {
			continue
		}
		key := hostCmdKey(queueKey(rec.Account, rec.Region, in.HostID), rec.ID)
		if want != "" && !known {
			// After a takeover or a failed commit: a record of this very
			// command stays as it is, handed out or not.
			b, err := tx.Get(ctx, kindHostCmd, key)
			if err != nil && !isNotFound(err) {
				return nil, err
			}
			var was hostCommand
			if err == nil && json.Unmarshal(b, &was) == nil && was.ID == want {
				next[i] = want
				continue
			}
		}
		if want != "" {
			c := in.Cmd
			b, err := json.Marshal(hostCommand{ID: c.ID, Deployment: rec.ID, Host: in.HostID, Event: c.Event, Account: rec.Account, Region: rec.Region})
			if err != nil {
				return nil, err
			}
			if err := tx.Put(ctx, kindHostCmd, key, b); err != nil {
				return nil, err
			}
			next[i] = want
			continue
		}
		if _, err := tx.Delete(ctx, kindHostCmd, key); err != nil {
			return nil, err
		}
		delete(next, i)
	}
	return next, nil
}

// inboxEvent is an event for a deployment, written by a replica that does
// not drive it. Each engine event type has exactly one encoding here.
type inboxEvent struct {
	Type      string                 `json:"type"`
	Acked     *engine.Acked          `json:"acked,omitempty"`
	Completed *engine.Completed      `json:"completed,omitempty"`
	Continue  *engine.Continue       `json:"continue,omitempty"`
	Stop      *engine.Stop           `json:"stop,omitempty"`
	AlarmStop *engine.AlarmStop      `json:"alarmStop,omitempty"`
	Judgment  *engine.JudgmentFailed `json:"judgmentFailed,omitempty"`
	Reply     bool                   `json:"reply"`
}

func encodeEvent(ev engine.Event) (inboxEvent, error) {
	switch e := ev.(type) {
	case engine.Start:
		return inboxEvent{Type: "Start"}, nil
	case engine.Acked:
		return inboxEvent{Type: "Acked", Acked: &e}, nil
	case engine.Completed:
		return inboxEvent{Type: "Completed", Completed: &e}, nil
	case engine.Continue:
		return inboxEvent{Type: "Continue", Continue: &e}, nil
	case engine.Stop:
		return inboxEvent{Type: "Stop", Stop: &e}, nil
	case engine.AlarmStop:
		return inboxEvent{Type: "AlarmStop", AlarmStop: &e}, nil
	case engine.JudgmentFailed:
		return inboxEvent{Type: "JudgmentFailed", Judgment: &e}, nil
	case engine.Tick, engine.Resumed:
		// Made by the loop driving the deployment, never sent to it.
	}
	return inboxEvent{}, fmt.Errorf("deploy: event %T cannot travel between replicas", ev)
}

func (e inboxEvent) event() (engine.Event, error) {
	switch {
	case e.Type == "Start":
		return engine.Start{}, nil
	case e.Type == "Acked" && e.Acked != nil:
		return *e.Acked, nil
	case e.Type == "Completed" && e.Completed != nil:
		return *e.Completed, nil
	case e.Type == "Continue" && e.Continue != nil:
		return *e.Continue, nil
	case e.Type == "Stop" && e.Stop != nil:
		return *e.Stop, nil
	case e.Type == "AlarmStop" && e.AlarmStop != nil:
		return *e.AlarmStop, nil
	case e.Type == "JudgmentFailed" && e.Judgment != nil:
		return *e.Judgment, nil
	}
	return nil, fmt.Errorf("deploy: unknown inbox event %q", e.Type)
}

// inboxReply is the outcome of an inbox event, as its sender reads it.
type inboxReply struct {
	NotApplicable string `json:"notApplicable,omitempty"`
	Err           string `json:"err,omitempty"`
	Took          bool   `json:"took,omitempty"`
}

func encodeReply(res result) []byte {
	var rep inboxReply
	var na *engine.ErrNotApplicable
	switch {
	case errors.As(res.err, &na):
		rep.NotApplicable = string(na.Reason)
	case res.err != nil:
		rep.Err = res.err.Error()
	}
	rep.Took = res.took
	b, _ := json.Marshal(rep)
	return b
}

func (rep inboxReply) result() result {
	res := result{took: rep.Took}
	switch {
	case rep.NotApplicable != "":
		res.err = &engine.ErrNotApplicable{Reason: engine.Reason(rep.NotApplicable)}
	case rep.Err != "":
		res.err = errors.New(rep.Err)
	}
	return res
}

// readInbox returns the events waiting in the store for a live deployment.
func (r *executor) readInbox(l *live) []*request {
	var items []store.Item
	err := r.cfg.Store.View(l.ctx, func(tx store.Tx) error {
		var err error
		items, err = tx.Scan(l.ctx, kindInbox, l.id+"/", "", 1024)
		return err
	})
	if err != nil {
		if l.ctx.Err() == nil {
			r.log.Warn("reading deployment inbox", "deployment", l.id, "err", err)
		}
		return nil
	}
	var out []*request
	for _, it := range items {
		var ie inboxEvent
		err := json.Unmarshal(it.Value, &ie)
		var ev engine.Event
		if err == nil {
			ev, err = ie.event()
		}
		if err != nil {
			// Dropped by the commit, answered as an error.
			r.log.Warn("undecodable inbox event", "key", it.Key, "err", err)
			out = append(out, &request{ev: engine.Tick{}, inboxKey: it.Key, wantReply: ie.Reply})
			continue
		}
		out = append(out, &request{ev: ev, inboxKey: it.Key, wantReply: ie.Reply})
	}
	return out
}

// maxInboxWait bounds how long a replica waits for the owner of a
// deployment to apply an event it sent through the store: a takeover
// after the owner died takes about LeaseTTL plus a scheduling round.
const maxInboxWait = 30 * time.Second

// sendStore writes an event to a deployment's store inbox and waits for the
// replica driving it to apply it and reply.
func (r *executor) sendStore(ctx context.Context, id string, ev engine.Event) (result, error) {
	ie, err := encodeEvent(ev)
	if err != nil {
		return result{}, err
	}
	ie.Reply = true
	if done, err := r.terminal(ctx, id); err != nil {
		return result{}, err
	} else if done {
		return result{}, errNotLive
	}
	b, err := json.Marshal(ie)
	if err != nil {
		return result{}, err
	}
	key := fmt.Sprintf("%s/%020d-%s", id, r.now().UnixNano(), randomID())
	ctx, cancel := context.WithTimeout(ctx, maxInboxWait)
	defer cancel()
	// Watch for the reply before asking, so it cannot slip by unseen.
	wake := r.waitFor(kindReply, key)
	defer r.unwait(kindReply, key, wake)
	if err := r.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.Put(ctx, kindInbox, key, b) }); err != nil {
		return result{}, err
	}
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	for {
		rb, err := store.Get(ctx, r.cfg.Store, kindReply, key)
		if err == nil {
			var rep inboxReply
			_ = json.Unmarshal(rb, &rep)
			_ = r.cfg.Store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
				_, err := tx.Delete(ctx, kindReply, key)
				return err
			})
			return rep.result(), nil
		}
		if !isNotFound(err) && ctx.Err() == nil {
			return result{}, err
		}
		if done, _ := r.terminal(ctx, id); done {
			// Finished before applying it: take the event back unless the
			// owner got it in the meantime (then its reply is coming).
			var took bool
			_ = r.cfg.Store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
				var err error
				took, err = tx.Delete(ctx, kindInbox, key)
				return err
			})
			if took {
				return result{}, errNotLive
			}
		}
		select {
		case <-wake:
			wake = r.waitFor(kindReply, key)
		case <-recheck.C:
		case <-r.ctx.Done():
			return result{}, errShutdown
		case <-ctx.Done():
			return result{}, fmt.Errorf("deployment %s: no replica applied the event in time: %w", id, ctx.Err())
		}
	}
}

// terminal reports whether a stored deployment has ended (or does not exist).
func (r *executor) terminal(ctx context.Context, id string) (bool, error) {
	var done bool
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		rec, err := loadHeader(ctx, tx, id)
		if isNotFound(err) {
			done = true
			return nil
		}
		if err != nil {
			return err
		}
		done = engine.Terminal(rec.Engine.Status)
		return nil
	})
	return done, err
}

// waitFor returns a channel closed at the next change of kind/key.
func (r *executor) waitFor(kind, key string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := kind + " " + key
	ch := r.waiters[k]
	if ch == nil {
		ch = make(chan struct{})
		r.waiters[k] = ch
	}
	return ch
}

func (r *executor) unwait(kind, key string, ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := kind + " " + key
	if r.waiters[k] == ch {
		delete(r.waiters, k)
	}
}

// hostWaker returns a channel closed when a command may be queued in a
// host's queue (queueKey).
func (r *agentService) hostWaker(host string) chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.wakers[host]
	if ch == nil {
		ch = make(chan struct{})
		r.wakers[host] = ch
	}
	return ch
}

// dispatchChanges routes the change feed to what waits on it: long polls,
// senders waiting for replies, live deployments' inboxes, the lease
// scheduler and the routers.
func (r *Runner) dispatchChanges() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.sub.Ready():
		}
		changes, reset := r.sub.Take()
		if reset {
			r.wakeAll()
			continue
		}
		for _, c := range changes {
			switch c.Topic {
			case kindHostCmd:
				host, _, _ := strings.Cut(c.ID, " ")
				if c.ID == "" {
					r.wakeAll()
					continue
				}
				r.agent.wakeHost(host)
			case kindReply:
				r.exec.replied(c.ID)
			case kindInbox:
				dep, _, _ := strings.Cut(c.ID, "/")
				if !r.exec.pokeInbox(dep) && c.ID == "" {
					r.wakeAll()
				}
			case kindMember:
				if c.ID == "" {
					r.recon.pokeAll()
				} else {
					r.recon.pokeGroup(c.ID)
				}
			case kindTeardown, lease.Kind:
				// A lease given up, a teardown owed. New deployments are not
				// raced for: their creator takes them, the others look once
				// a second in case it died first.
				r.exec.pokeScheduler()
				r.recon.pokeLeases()
			}
		}
	}
}

// wakeAll wakes every waiter after changes may have been missed.
func (r *Runner) wakeAll() {
	r.agent.wakeAll()
	r.exec.wakeAll()
	r.recon.pokeAll()
	r.exec.pokeScheduler()
	r.recon.pokeLeases()
}

// wakeHost wakes the long polls of a host queue.
func (r *agentService) wakeHost(queue string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch := r.wakers[queue]; ch != nil {
		close(ch)
		delete(r.wakers, queue)
	}
}

// wakeAll wakes every long poll.
func (r *agentService) wakeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, ch := range r.wakers {
		close(ch)
		delete(r.wakers, k)
	}
}

// replied wakes the sender waiting for the reply to an inbox event.
func (r *executor) replied(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch := r.waiters[kindReply+" "+key]; ch != nil {
		close(ch)
		delete(r.waiters, kindReply+" "+key)
	}
}

// pokeInbox tells a live deployment that events wait in its store inbox;
// it reports whether the deployment is live here.
func (r *executor) pokeInbox(id string) bool {
	r.mu.Lock()
	l := r.lives[id]
	r.mu.Unlock()
	if l == nil {
		return false
	}
	select {
	case l.poke <- struct{}{}:
	default:
	}
	return true
}

// wakeAll wakes every sender waiting for a reply and every live
// deployment's inbox.
func (r *executor) wakeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, ch := range r.waiters {
		close(ch)
		delete(r.waiters, k)
	}
	for _, l := range r.lives {
		if l == nil {
			continue
		}
		select {
		case l.poke <- struct{}{}:
		default:
		}
	}
}

func (r *executor) pokeScheduler() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// scheduleEvery is how often a replica looks for work whose lease is free.
const scheduleEvery = time.Second

func (r *executor) scheduleLoop() {
	t := time.NewTicker(scheduleEvery)
	defer t.Stop()
	lastGC := time.Now()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.poke:
		}
		if err := r.schedule(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Warn("looking for deployments to take over", "err", err)
		}
		if time.Since(lastGC) > gcEvery {
			lastGC = time.Now()
			if err := r.collectGarbage(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("removing stale replies", "err", err)
			}
		}
	}
}

// gcEvery is how often a replica removes replies nobody read.
const gcEvery = time.Minute

// collectGarbage removes the replies to inbox events whose sender gave up
// waiting (it timed out or died), and the readiness leases of replicas
// long gone: both would otherwise accumulate.
func (r *executor) collectGarbage(ctx context.Context) error {
	cutoff := r.now().Add(-2 * maxInboxWait)
	return r.cfg.Store.Update(ctx, func(tx store.Tx) error {
		replies, err := tx.Scan(ctx, kindReply, "", "", 1000)
		if err != nil {
			return err
		}
		for _, it := range replies {
			_, seq, _ := strings.Cut(it.Key, "/")
			ns, err := strconv.ParseInt(strings.SplitN(seq, "-", 2)[0], 10, 64)
			if err == nil && time.Unix(0, ns).Before(cutoff) {
				if _, err := tx.Delete(ctx, kindReply, it.Key); err != nil {
					return err
				}
			}
		}
		return r.leases.DropExpired(ctx, tx, readinessPrefix, time.Hour)
	})
}

// schedule takes the free leases of active deployments and owed teardowns
// and starts driving them.
func (r *executor) schedule(ctx context.Context) error {
	var deps []string
	var teardowns []TeardownEvent
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		locks, err := tx.Scan(ctx, kindGroupLock, "", "", 0)
		if err != nil {
			return err
		}
		for _, l := range locks {
			id := string(l.Value)
			if r.claimed(id) {
				continue
			}
			if free, err := r.leases.Free(ctx, tx, leaseName(id)); err != nil {
				return err
			} else if free {
				deps = append(deps, id)
			}
		}
		owed, err := tx.Scan(ctx, kindTeardown, "", "", 0)
		if err != nil {
			return err
		}
		for _, it := range owed {
			var ev TeardownEvent
			if err := json.Unmarshal(it.Value, &ev); err != nil {
				return err
			}
			r.mu.Lock()
			running := r.tearing[ev.DeploymentID]
			r.mu.Unlock()
			if running {
				continue
			}
			if free, err := r.leases.Free(ctx, tx, teardownLeaseName(ev.DeploymentID)); err != nil {
				return err
			} else if free {
				teardowns = append(teardowns, ev)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range deps {
		if err := r.takeOver(ctx, id, nil); err != nil {
			return err
		}
	}
	for _, ev := range teardowns {
		l, ok, err := r.leases.Acquire(ctx, teardownLeaseName(ev.DeploymentID))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		r.mu.Lock()
		running := r.tearing[ev.DeploymentID]
		r.tearing[ev.DeploymentID] = true
		r.mu.Unlock()
		if running {
			continue
		}
		r.goOwned(func() { r.teardown(ev, l) })
	}
	return nil
}

// claimed reports whether this replica drives (or is starting) a deployment.
func (r *executor) claimed(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.lives[id]
	return ok
}

// takeOver takes a free deployment lease and resumes the deployment from
// its committed state. created is a deployment this replica just created
// (nil: load it, and restart its commands' pickup clocks).
func (r *executor) takeOver(ctx context.Context, id string, created *Record) error {
	r.mu.Lock()
	if _, ok := r.lives[id]; ok {
		r.mu.Unlock()
		return nil
	}
	// A placeholder keeps startLive and the scheduler from both starting it.
	r.lives[id] = nil
	r.mu.Unlock()
	started := false
	defer func() {
		if !started {
			r.mu.Lock()
			if l, ok := r.lives[id]; ok && l == nil {
				delete(r.lives, id)
			}
			r.mu.Unlock()
		}
	}()
	l, ok, err := r.leases.Acquire(ctx, leaseName(id))
	if err != nil || !ok {
		return err
	}
	rec := created
	if rec == nil {
		err = r.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = loadRecord(ctx, tx, id)
			return err
		})
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			_ = r.leases.Release(ctx, l)
			return err
		}
		if engine.Terminal(rec.Engine.Status) {
			return r.leases.Release(ctx, l)
		}
		r.log.Info("driving deployment", "deployment", id, "replica", r.cfg.ReplicaID, "epoch", l.Epoch)
	}
	started = true
	r.resume(rec, l, created == nil)
	return nil
}

// renewLoop renews the leases of the deployments this replica drives; a
// lease found lost stops its deployment's loop at once.
func (r *executor) renewLoop() {
	t := time.NewTicker(r.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		lives := make([]*live, 0, len(r.lives))
		for _, l := range r.lives {
			if l != nil {
				lives = append(lives, l)
			}
		}
		r.mu.Unlock()
		for _, l := range lives {
			err := r.leases.Renew(l.ctx, l.lease)
			if errors.Is(err, lease.ErrLost) {
				l.lost()
			} else if err != nil && l.ctx.Err() == nil {
				r.log.Warn("renewing deployment lease", "deployment", l.id, "err", err)
			}
		}
	}
}

// Ready reports whether this replica can work: the store answers and it can
// take and renew leases (it writes a lease of its own).
func (r *Runner) Ready(ctx context.Context) error {
	l, ok, err := r.leases.Acquire(ctx, readinessPrefix+r.cfg.ReplicaID)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("another process holds this replica's lease: replica ids must differ")
	}
	_ = l
	return nil
}
