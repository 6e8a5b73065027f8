// Package deploy runs deployments: it feeds events to the engine (a pure
// state machine), persists each result in one transaction, and carries out
// the engine's decisions — commands for host agents, traffic changes,
// teardown, rollbacks — at the edges.
//
// Each active deployment has one goroutine that owns its state. Events
// (agent acknowledgements and completions, API calls, timers) queue up while
// a transaction commits and are then applied and committed together: group
// commit, so a thousand agents finishing at once cost a handful of
// transactions, not thousands.
//
// Storage layout: one package owns each store kind, and only it reads or
// writes the kind's records. This package owns the deployment records
// and their indexes, group locks, fleets, desired target-group membership
// and its push outcome, the host command queue and addresses, the store
// inboxes and replies, and teardowns owed (the kind* constants). The
// applications, groups, configurations, revisions, instances and active-
// deployment markers belong to package api, and deploy uses them through
// its functions (LoadGroup, SaveGroup, MarkActive, ClearActive, ...);
// leases belong to package lease. TestStorageKindsOwned keeps it so.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/lease"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// Store kinds owned by this package.
const (
	kindDeployment = "deployment" // id -> Record
	kindDepIndex   = "depidx"     // scope/id -> app/group (listing)
	kindGroupLock  = "dglock"     // group id -> active deployment id
	kindFleet      = "fleet"      // scope/app/group -> Fleet
	kindMember     = "tgmember"   // target group -> []traffic.Backend (desired)
	kindInstRev    = "instrev"    // scope/groupID/instance -> revision key last deployed
	kindTarget     = "dtarget"    // id/<position> -> engine.Instance (a deployment's targets)
	kindTeardown   = "teardown"   // id -> TeardownEvent owed to the operator's hook
)

// Record is a deployment as stored.
type Record struct {
	ID                            string                               `json:"id"`
	Account                       string                               `json:"account"`
	Region                        string                               `json:"region"`
	ApplicationName               string                               `json:"applicationName"`
	GroupName                     string                               `json:"groupName"`
	GroupID                       string                               `json:"groupId"`
	ComputePlatform               string                               `json:"computePlatform"`
	Creator                       string                               `json:"creator"`
	Revision                      cd.RevisionLocation                  `json:"revision"`
	PreviousRevision              *cd.RevisionLocation                 `json:"previousRevision,omitempty"`
	ConfigName                    string                               `json:"configName"`
	Description                   string                               `json:"description,omitempty"`
	FileExistsBehavior            string                               `json:"fileExistsBehavior"`
	IgnoreApplicationStopFailures bool                                 `json:"ignoreApplicationStopFailures"`
	UpdateOutdatedInstancesOnly   bool                                 `json:"updateOutdatedInstancesOnly"`
	AutoRollback                  *cd.AutoRollbackConfiguration        `json:"autoRollback,omitempty"`
	OverrideAlarm                 *cd.AlarmConfiguration               `json:"overrideAlarm,omitempty"`
	TargetInstances               *cd.TargetInstances                  `json:"targetInstances,omitempty"`
	DeploymentStyle               cd.DeploymentStyle                   `json:"deploymentStyle"`
	BlueGreen                     *cd.BlueGreenDeploymentConfiguration `json:"blueGreen,omitempty"`
	LoadBalancerInfo              *cd.LoadBalancerInfo                 `json:"loadBalancerInfo,omitempty"`
	RollbackInfo                  *cd.RollbackInfo                     `json:"rollbackInfo,omitempty"`
	GitHubAccountName             string                               `json:"gitHubAccountName,omitempty"`
	Engine                        *engine.Deployment                   `json:"engine"`
}

// Fleet is a deployment group's explicit membership, set by blue/green
// deployments: after one succeeds the group's fleet is the replacement
// instances, and the originals are retired.
type Fleet struct {
	Members []string `json:"members,omitempty"`
	Retired []string `json:"retired,omitempty"`
}

// Config configures a Runner.
type Config struct {
	Store   store.Store
	Logger  *slog.Logger
	Now     func() time.Time
	Engine  engine.Config
	Traffic *traffic.Mux // nil: no target groups configured
	// TargetGroups holds each configured target group's backend port.
	TargetGroups map[string]traffic.TargetGroupConfig
	// PollWait bounds PollHostCommand's long poll.
	PollWait time.Duration
	// Pager pages list results with the API's opaque tokens.
	Pager interface {
		Page(op string, names []string, token *string) ([]string, *string, error)
	}
	// Spec signs deployment specifications for agents.
	Spec SpecSigner
	// Sealer opens stored GitHub tokens.
	Sealer api.Sealer
	// InstanceOf returns the on-premises instance registered with the
	// caller's principal ARN ("" if none): agent authentication.
	InstanceOf func(ctx context.Context) (string, error)
	// Teardown is called when blue/green retires original instances.
	Teardown func(ctx context.Context, t TeardownEvent) error
	// Observer, if set, sees every committed step.
	Observer Observer
	// Destinations, if set, refuses override alarms the server does not
	// define (CreateDeployment).
	Destinations api.Destinations

	// Changes is the store's change feed (see WatchedKinds): it wakes long
	// polls, brings events to the replica owning a deployment and makes
	// routers follow the desired membership. Nil: a feed of this process
	// only, fed by nothing (a single server still works, on timers).
	Changes *changefeed.Feed
	// ReplicaID names this process in lease records; default random.
	ReplicaID string
	// Exclusive is set when no other process uses the store (SQLite):
	// leases left by a previous run are taken at once.
	Exclusive bool
	// LeaseTTL is how long a deployment's lease outlives its owner's last
	// renewal (default 6s; renewed every third of it).
	LeaseTTL time.Duration
}

// WatchedKinds are the store kinds whose changes the runner (and the
// caches of the API and keys) follow through the change feed.
var WatchedKinds = []string{kindHostCmd, kindInbox, kindReply, kindMember, kindGroupLock, kindTeardown, kindDeployment, lease.Kind}

// TeardownEvent describes original instances leaving a group's fleet.
type TeardownEvent struct {
	DeploymentID    string   `json:"deploymentId"`
	ApplicationName string   `json:"applicationName"`
	DeploymentGroup string   `json:"deploymentGroupName"`
	Instances       []string `json:"instances"`
	Terminate       bool     `json:"terminate"` // TERMINATE (true) or KEEP_ALIVE
	Account         string   `json:"account"`   // the deployment's account and region
	Region          string   `json:"region"`
}

// Runner runs the deployments this replica holds the lease of, and answers
// the agent protocol and the deployment API for every deployment: events
// for a deployment another replica drives reach it through the store.
//
// It wires three parts, each owning its state and its goroutines:
//   - the executor holds deployment and teardown leases, steps the engine
//     and commits each step (runner.go, replica.go, actions.go,
//     handlers.go);
//   - the agent-protocol service answers PollHostCommand and the rest of
//     the agent protocol from the host command queue (hostcmd.go);
//   - the reconciler makes the routers serve the stored desired
//     membership, and holds the leases of the HAProxy target groups this
//     replica pushes (reconcile.go).
//
// The Runner itself answers the deployment API and routes the change feed
// to the part waiting on each change.
type Runner struct {
	*shared
	leases *lease.Manager
	exec   *executor
	agent  *agentService
	recon  *reconciler
	feed   *changefeed.Feed
	sub    *changefeed.Subscription
	goroutines
	stop context.CancelFunc
}

// shared is what the runner's parts have in common: configuration and the
// runner's lifetime (ctx, set by Start, ended by Close).
type shared struct {
	cfg Config
	log *slog.Logger
	ctx context.Context
}

func (s *shared) now() time.Time { return s.cfg.Now().UTC() }

// goroutines are the goroutines a part owns; its owner joins them.
type goroutines struct{ wg sync.WaitGroup }

// goOwned runs f on a goroutine that wait waits for.
func (g *goroutines) goOwned(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

func (g *goroutines) wait() { g.wg.Wait() }

// executor drives the deployments whose leases this replica holds: one
// loop per deployment steps the engine and commits, and the scheduler
// takes over the deployments and teardowns whose leases are free.
type executor struct {
	*shared
	goroutines
	leases *lease.Manager
	recon  *reconciler

	mu      sync.Mutex
	lives   map[string]*live
	index   map[string]*depIndex     // live deployment id -> protocol view
	waiters map[string]chan struct{} // kind+" "+key -> closed on its change
	tearing map[string]bool          // teardowns running here
	poke    chan struct{}            // wakes the lease scheduler
}

// indexed returns the protocol view of a deployment this replica drives
// (nil if none).
func (r *executor) indexed(id string) *depIndex {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.index[id]
}

// agentService answers the agent protocol for every deployment, from the
// host command queue in the store; it asks the executor about the
// deployments it drives and hands it the agents' events.
type agentService struct {
	*shared
	exec *executor

	mu        sync.Mutex
	wakers    map[string]chan struct{} // host queue -> closed when a command may be queued
	specs     map[string]signedSpec    // deployment id -> signed specification
	addrSeen  map[string]addrNote      // host -> address last recorded
	handedOut map[string]time.Time     // commands this process handed out (Exclusive)
	draining  chan struct{}            // closed by StopPolls
	drainOnce sync.Once
}

// live is an active deployment owned by its goroutine.
type live struct {
	id    string
	lease lease.Lease
	inbox chan *request
	poke  chan struct{} // events wait in the store's inbox
	done  chan struct{} // closed once the loop has retired
	ctx   context.Context
	lost  context.CancelFunc // the lease is gone: stop at once
	rec   *Record            // owned by the loop; readers ask it for a snapshot
	// queued maps instance positions to the command queued for their host
	// in the store, as of the last commit (nil: not known).
	queued map[int]string
}

// request is an event for a live deployment and its reply.
type request struct {
	ev    engine.Event
	reply chan result
	// read asks for a copy of the committed state instead of an event.
	read chan []byte
	// sync, closed once the batch it joined is done, is a barrier.
	sync chan struct{}
	// inboxKey is set for an event that came through the store; it is
	// removed, and its reply recorded, in the commit that applies it.
	inboxKey  string
	wantReply bool
}

// result is the outcome of one event.
type result struct {
	err error
	// took is set for an acknowledgement that made its command run.
	took bool
}

// New returns a runner; Start loads and resumes active deployments.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 40 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 6 * time.Second
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = randomID()
	}
	feed := cfg.Changes
	if feed == nil {
		feed = &changefeed.Feed{}
	}
	sh := &shared{cfg: cfg, log: cfg.Logger}
	leases := &lease.Manager{Store: cfg.Store, Owner: cfg.ReplicaID, TTL: cfg.LeaseTTL, Now: cfg.Now, Exclusive: cfg.Exclusive}
	recon := newReconciler(sh, leases)
	exec := &executor{shared: sh, leases: leases, recon: recon,
		lives: map[string]*live{}, index: map[string]*depIndex{}, waiters: map[string]chan struct{}{},
		tearing: map[string]bool{}, poke: make(chan struct{}, 1)}
	agent := &agentService{shared: sh, exec: exec,
		wakers: map[string]chan struct{}{}, specs: map[string]signedSpec{}, addrSeen: map[string]addrNote{},
		handedOut: map[string]time.Time{}, draining: make(chan struct{})}
	return &Runner{shared: sh, leases: leases, exec: exec, agent: agent, recon: recon, feed: feed}
}

// ReplicaID is the name this runner holds leases under.
func (r *Runner) ReplicaID() string { return r.cfg.ReplicaID }

// Drives reports whether this replica holds deployment id's lease in the
// store now: stricter than Active, which also lists a deployment whose
// lease is being taken, or has just passed to another replica.
func (r *Runner) Drives(ctx context.Context, id string) (bool, error) {
	return r.leases.Holds(ctx, leaseName(id))
}

// Start takes the leases of active deployments nobody drives (on SQLite:
// all of them) and resumes them, then keeps doing so in the background.
// It never waits on traffic: routers catch up with the stored membership
// on their own goroutines.
func (r *Runner) Start(ctx context.Context) error {
	r.ctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	r.sub = r.feed.Subscribe(WatchedKinds...)
	err := r.exec.schedule(ctx)
	if err == nil {
		err = r.recon.holdTrafficLeases(ctx)
	}
	if err != nil {
		r.stop()
		r.sub.Close()
		return fmt.Errorf("resume deployments: %w", err)
	}
	r.recon.pokeAll()
	r.goOwned(r.dispatchChanges)
	r.exec.goOwned(r.exec.scheduleLoop)
	r.exec.goOwned(r.exec.renewLoop)
	r.recon.goOwned(r.recon.leaseLoop)
	return nil
}

// ServeCommands implements awsjson.Service for the agent protocol.
func (r *Runner) ServeCommands(ctx context.Context, op string, body []byte) (any, error) {
	return r.agent.ServeCommands(ctx, op, body)
}

// StopPolls answers every long poll at once with no command, now and from
// now on: call it when the HTTP server starts shutting down.
func (r *Runner) StopPolls() { r.agent.StopPolls() }

// Close stops the deployment loops (state is already persisted) and every
// goroutine of the runner, and waits for them.
func (r *Runner) Close() error {
	if r.stop != nil {
		r.stop()
	}
	// In this order: the change router pokes the others, and the
	// executor's traffic events start reconciler workers.
	r.wait()
	r.exec.wait()
	r.recon.wait()
	if r.sub != nil {
		r.sub.Close()
	}
	// Give the leases up so that other replicas take over at once instead
	// of after expiry. The loops have stopped: nothing commits any more.
	held := append(r.exec.held(), r.recon.held()...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, l := range held {
		if err := r.leases.Release(ctx, l); err != nil {
			r.log.Warn("giving up a lease at shutdown; it expires on its own", "lease", l.Name, "err", err)
		}
	}
	return nil
}

// held returns the deployment leases the executor holds.
func (r *executor) held() []lease.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	var held []lease.Lease
	for _, l := range r.lives {
		if l != nil {
			held = append(held, l.lease)
		}
	}
	return held
}

// loadHeader reads a deployment without its targets.
func loadHeader(ctx context.Context, tx store.Tx, id string) (*Record, error) {
	b, err := tx.Get(ctx, kindDeployment, id)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode deployment %s: %w", id, err)
	}
	return &rec, nil
}

func loadRecord(ctx context.Context, tx store.Tx, id string) (*Record, error) {
	rec, err := loadHeader(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	items, err := tx.Scan(ctx, kindTarget, id+"/", "", 0)
	if err != nil {
		return nil, err
	}
	rec.Engine.Instances = make([]*engine.Instance, 0, len(items))
	for _, it := range items {
		var in engine.Instance
		if err := json.Unmarshal(it.Value, &in); err != nil {
			return nil, fmt.Errorf("decode target %s: %w", it.Key, err)
		}
		rec.Engine.Instances = append(rec.Engine.Instances, &in)
	}
	return rec, nil
}

// resume starts the loop of an active deployment whose state is persisted
// and whose lease this replica holds.
func (r *executor) resume(rec *Record, l lease.Lease, restarted bool) {
	ctx, lost := context.WithCancel(r.ctx)
	lv := &live{id: rec.ID, lease: l, inbox: make(chan *request, 64), poke: make(chan struct{}, 1), done: make(chan struct{}), ctx: ctx, lost: lost, rec: rec}
	r.mu.Lock()
	r.lives[rec.ID] = lv
	r.mu.Unlock()
	r.reindex(rec)
	var first []*request
	if restarted {
		// Unacknowledged commands get a fresh pickup clock; their queue
		// records stay as they are (one an agent took keeps its handout,
		// so that it is not run twice), missing ones are written again.
		// The engine asks again for the traffic changes in flight.
		first = append(first, &request{ev: engine.Resumed{}})
	}
	r.wg.Add(1)
	go r.loop(lv, first)
	if rec.Engine.Status == engine.StatusCreated {
		// Committed but not started (new, or the server stopped right
		// after creating it). Start is queued like any other event, so
		// CreateDeployment answers at once.
		r.goOwned(func() { r.sendRetrying(rec.ID, engine.Start{}) })
	}
}

// sendRetrying delivers an event nobody waits on, retrying transient
// failures (a failed commit) until the deployment ends or the server stops.
func (r *executor) sendRetrying(id string, ev engine.Event) {
	for {
		err := r.send(r.ctx, id, ev)
		var na *engine.ErrNotApplicable
		if err == nil || err == errNotLive || errors.As(err, &na) || r.ctx.Err() != nil {
			return
		}
		r.log.Warn("retrying deployment event", "deployment", id, "event", fmt.Sprintf("%T", ev), "err", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// send delivers an event to a deployment, wherever it runs, and waits for
// its commit.
func (r *executor) send(ctx context.Context, id string, ev engine.Event) error {
	res, err := r.deliver(ctx, id, ev)
	if err != nil {
		return err
	}
	return res.err
}

// deliver hands an event to the deployment's loop: directly when this
// replica drives it, else through the store's inbox to the replica that
// does (or will, after a takeover).
func (r *executor) deliver(ctx context.Context, id string, ev engine.Event) (result, error) {
	r.mu.Lock()
	l := r.lives[id]
	r.mu.Unlock()
	if l != nil {
		res, err := r.sendLocal(ctx, l, ev)
		if err != errNotLive {
			return res, err
		}
		// Retired, or the lease moved: the store knows which.
	}
	return r.sendStore(ctx, id, ev)
}

// sendLocal queues an event for a live deployment and waits for its commit.
func (r *executor) sendLocal(ctx context.Context, l *live, ev engine.Event) (result, error) {
	req := &request{ev: ev, reply: make(chan result, 1)}
	select {
	case l.inbox <- req:
	case <-l.done:
		return result{}, errNotLive
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-r.ctx.Done():
		return result{}, errShutdown
	}
	select {
	case res := <-req.reply:
		return res, nil
	case <-l.done:
		// Retired: a request that raced the retirement is answered here.
		select {
		case res := <-req.reply:
			return res, nil
		default:
			return result{}, errNotLive
		}
	case <-r.ctx.Done():
		return result{}, errShutdown
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

var (
	errNotLive  = errors.New("deployment is not active")
	errShutdown = errors.New("server shutting down")
)

// loop owns one live deployment until it reaches a terminal status or
// loses its lease.
func (r *executor) loop(l *live, first []*request) {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Whatever waits in the store's inbox joins the first batch.
	batch := append(first, r.readInbox(l)...)
	if len(batch) > 0 && !r.apply(l, batch) {
		r.abandon(l)
		return
	}
	for {
		rec := l.rec
		if engine.Terminal(rec.Engine.Status) {
			r.retire(l)
			return
		}
		wake := rec.Engine.NextWake(r.cfg.Engine)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		// Without a deadline the loop still looks at its store inbox now
		// and then, in case a change notification was lost.
		d := inboxRecheck
		if !wake.IsZero() {
			d = min(max(wake.Sub(r.now()), 0)+time.Millisecond, d)
		}
		timer.Reset(d)
		var batch []*request
		select {
		case <-r.ctx.Done():
			return
		case <-l.ctx.Done():
			if r.ctx.Err() != nil {
				// Shutting down (l.ctx ends with r.ctx): the lease is not
				// lost, and Close gives it up for a prompt takeover.
				return
			}
			r.abandon(l)
			return
		case req := <-l.inbox:
			batch = append(batch, req)
		case <-l.poke:
			batch = append(batch, r.readInbox(l)...)
		case <-timer.C:
			batch = append(batch, &request{ev: engine.Tick{}})
			batch = append(batch, r.readInbox(l)...)
		}
		// Take whatever else queued up while we were busy: these commit
		// together.
	drain:
		for len(batch) < 4096 {
			select {
			case req := <-l.inbox:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		if len(batch) > 0 && !r.apply(l, batch) {
			r.abandon(l)
			return
		}
	}
}

// inboxRecheck is how often a live deployment re-reads its store inbox
// without being told to.
const inboxRecheck = 5 * time.Second

// apply steps the engine through a batch, commits once, then replies and
// performs the decisions. It returns false when the lease was lost.
func (r *executor) apply(l *live, batch []*request) bool {
	ctx := r.ctx
	rec := l.rec
	now := r.now()
	var acts []engine.Action
	var reads []*request
	res := make([]result, len(batch))
	events := 0
	was := before(rec)
	for i, req := range batch {
		if req.read != nil {
			reads = append(reads, req)
			continue
		}
		if req.sync != nil {
			defer close(req.sync)
			continue
		}
		events++
		a, err := engine.Step(rec.Engine, r.cfg.Engine, req.ev, now)
		res[i].err = err
		if ack, ok := req.ev.(engine.Acked); ok {
			res[i].took = ackTook(rec, ack.CommandID)
		}
		acts = append(acts, a...)
	}
	var post []func()
	if events > 0 {
		// The protocol view is updated before the commit makes the new
		// commands visible to polls, so an acknowledgement never finds
		// its command unknown; after a failed commit it is put back.
		r.reindex(rec)
		if err := r.commit(ctx, l, was, now, acts, batch, res, &post); err != nil {
			lost := errors.Is(err, lease.ErrLost)
			if !lost {
				r.log.Error("commit deployment step", "deployment", l.id, "err", err)
			}
			// Nothing was written: go back to the committed state and report.
			_ = r.cfg.Store.View(ctx, func(tx store.Tx) error {
				old, lerr := loadRecord(ctx, tx, l.id)
				if lerr == nil {
					l.rec = old
				}
				return lerr
			})
			r.reindex(l.rec)
			for _, req := range batch {
				if req.reply != nil {
					if lost {
						req.reply <- result{err: errNotLive}
					} else {
						req.reply <- result{err: fmt.Errorf("commit: %w", err)}
					}
				}
				if req.read != nil {
					req.read <- nil
				}
			}
			return !lost
		}
	}
	if len(reads) > 0 {
		// Readers get the committed state, encoded once for all of them.
		snap, _ := json.Marshal(rec)
		for _, req := range reads {
			req.read <- snap
		}
	}
	for i, req := range batch {
		if req.reply != nil {
			req.reply <- res[i]
		}
	}
	r.perform(rec, acts)
	for _, f := range post {
		f()
	}
	return true
}

// ackTook reports whether an acknowledgement made its command run: the
// command is current and acknowledged (it may have timed out or been
// stopped before the acknowledgement arrived).
func ackTook(rec *Record, cmdID string) bool {
	for _, in := range rec.Engine.Instances {
		if c := in.Cmd; c != nil && c.ID == cmdID {
			return !c.Acked.IsZero()
		}
	}
	return false
}

// retire removes a finished deployment from the live set.
func (r *executor) retire(l *live) {
	r.forget(l)
	defer close(l.done)
	// Answer anything still queued: the deployment is complete.
	for {
		select {
		case req := <-l.inbox:
			if req.read != nil {
				req.read <- nil // the caller reads the store instead
				continue
			}
			if req.sync != nil {
				close(req.sync)
				continue
			}
			_, err := engine.Step(l.rec.Engine, r.cfg.Engine, req.ev, r.now())
			if req.reply != nil {
				req.reply <- result{err: err}
			}
		default:
			return
		}
	}
}

// abandon stops driving a deployment whose lease was lost: requests still
// queued go through the store to the new owner.
func (r *executor) abandon(l *live) {
	r.log.Warn("deployment lease lost; another replica drives it now", "deployment", l.id)
	r.forget(l)
	close(l.done)
	for {
		select {
		case req := <-l.inbox:
			if req.read != nil {
				req.read <- nil
			}
			if req.sync != nil {
				close(req.sync)
			}
			if req.reply != nil {
				req.reply <- result{err: errNotLive}
			}
		default:
			return
		}
	}
}

func (r *executor) forget(l *live) {
	l.lost()
	r.mu.Lock()
	if r.lives[l.id] == l {
		delete(r.lives, l.id)
		delete(r.index, l.id)
	}
	r.mu.Unlock()
}

// barrier waits until the loop of a live deployment has finished the batch
// in progress (no-op when it is not live here).
func (r *executor) barrier(id string) {
	r.mu.Lock()
	l := r.lives[id]
	r.mu.Unlock()
	if l == nil {
		return
	}
	req := &request{sync: make(chan struct{})}
	select {
	case l.inbox <- req:
	case <-l.done:
		return
	case <-r.ctx.Done():
		return
	}
	select {
	case <-req.sync:
	case <-l.done:
	case <-r.ctx.Done():
	}
}

// snapshot returns the committed state of a live deployment, if live. The
// loop that owns the state encodes it between batches, so a reader never
// sees a half-applied batch and the loop never encodes state nobody reads.
func (r *executor) snapshot(id string) (*Record, bool) {
	r.mu.Lock()
	l := r.lives[id]
	r.mu.Unlock()
	if l == nil {
		return nil, false
	}
	req := &request{read: make(chan []byte, 1)}
	select {
	case l.inbox <- req:
	case <-l.done:
		return nil, false
	case <-r.ctx.Done():
		return nil, false
	}
	var snap []byte
	select {
	case snap = <-req.read:
	case <-l.done:
		select {
		case snap = <-req.read:
		default:
		}
	case <-r.ctx.Done():
	}
	if snap == nil {
		return nil, false
	}
	var rec Record
	if err := json.Unmarshal(snap, &rec); err != nil {
		return nil, false
	}
	return &rec, true
}

// commit persists the record and the side records its decisions imply, in
// one transaction fenced by the deployment's lease: the host command
// queue, desired target-group membership, teardown owed, the store inbox
// events the batch applied and their replies. post collects work to run
// after the commit (starting a rollback's loop).
func (r *executor) commit(ctx context.Context, l *live, was Step, now time.Time, acts []engine.Action, batch []*request, res []result, post *[]func()) error {
	rec := l.rec
	var rollback *Record
	var queued map[int]string
	var observed []func()
	err := r.cfg.Store.Update(ctx, func(tx store.Tx) error {
		rollback, observed = nil, nil
		if err := r.leases.Check(ctx, tx, l.lease); err != nil {
			return err
		}
		for i, req := range batch {
			if req.inboxKey == "" {
				continue
			}
			if _, err := tx.Delete(ctx, kindInbox, req.inboxKey); err != nil {
				return err
			}
			if req.wantReply {
				if err := tx.Put(ctx, kindReply, req.inboxKey, encodeReply(res[i])); err != nil {
					return err
				}
			}
		}
		st := &stepTx{l: l, rec: rec}
		for _, a := range acts {
			if err := r.handlerOf(a).inTx(ctx, tx, st); err != nil {
				return err
			}
		}
		rollback = st.rollback
		if err := r.recordInstanceRevisions(ctx, tx, rec); err != nil {
			return err
		}
		changed := func(in *engine.Instance) bool { return !in.LastUpdated.Before(now) }
		var err error
		if queued, err = queueHostCommands(ctx, tx, rec, changed, l.queued); err != nil {
			return err
		}
		if err := r.observe(ctx, tx, was, rec, now, &observed); err != nil {
			return err
		}
		return saveRecord(ctx, tx, rec, changed)
	})
	// What is queued is known again only once a commit went through.
	l.queued = nil
	if err == nil {
		l.queued = queued
		*post = append(*post, observed...)
	}
	if err == nil && rollback != nil {
		rb := rollback
		*post = append(*post, func() { r.startLive(rb) })
	}
	return err
}

// saveRecord writes a deployment: its header, and the targets for which
// changed reports true. Targets are records of their own so that a step
// touching a few instances of a large deployment writes only those.
// The engine stamps LastUpdated on every instance it changes.
func saveRecord(ctx context.Context, tx store.Tx, rec *Record, changed func(*engine.Instance) bool) error {
	insts := rec.Engine.Instances
	rec.Engine.Instances = nil
	b, err := json.Marshal(rec)
	rec.Engine.Instances = insts
	if err != nil {
		return err
	}
	if err := tx.Put(ctx, kindDeployment, rec.ID, b); err != nil {
		return err
	}
	for i, in := range insts {
		if !changed(in) {
			continue
		}
		ib, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if err := tx.Put(ctx, kindTarget, targetKey(rec.ID, i), ib); err != nil {
			return err
		}
	}
	return nil
}

func targetKey(id string, i int) string { return fmt.Sprintf("%s/%06d", id, i) }

// startLive begins a committed, newly created deployment, unless another
// replica's scheduler took its lease first (it then drives it).
func (r *executor) startLive(rec *Record) {
	if err := r.takeOver(r.ctx, rec.ID, rec); err != nil {
		r.log.Warn("taking the lease of a new deployment; the scheduler retries", "deployment", rec.ID, "err", err)
		r.pokeScheduler()
	}
}

// finish records a terminal deployment on its group and, when asked,
// creates the rollback deployment in the same transaction.
func (r *executor) finish(ctx context.Context, tx store.Tx, rec *Record) (*Record, error) {
	e := rec.Engine
	if _, err := tx.Delete(ctx, kindGroupLock, rec.GroupID); err != nil {
		return nil, err
	}
	if err := api.ClearActive(ctx, tx, rec.Account, rec.Region, rec.ID); err != nil {
		return nil, err
	}
	if err := noteRollbackOutcome(ctx, tx, rec); err != nil {
		return nil, err
	}
	g, err := api.GroupByID(ctx, tx, rec.Account, rec.Region, rec.ApplicationName, rec.GroupName, rec.GroupID)
	var ae *awsjson.Error
	if errors.As(err, &ae) {
		// The group was deleted meanwhile; nothing to record on it.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ts := timeOf(e.Completed)
	summary := &cd.LastDeploymentInfo{DeploymentId: &rec.ID, Status: ptr(string(e.Status)), EndTime: ts, CreateTime: timeOf(e.Created)}
	g.LastAttemptedDeployment = summary
	if e.Status == engine.StatusSucceeded {
		g.LastSuccessfulDeployment = summary
		rev := rec.Revision
		if !rec.Engine.Kind.IsReroute() {
			g.TargetRevision = &rev
		}
	}
	if err := api.SaveGroup(ctx, tx, rec.Account, rec.Region, g); err != nil {
		return nil, err
	}
	if !e.RollbackWanted {
		return nil, nil
	}
	return r.createRollback(ctx, tx, rec, g)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// noteRollbackOutcome updates the rollbackMessage of the deployment a
// finished rollback was rolling back, so it tells how the rollback ended.
func noteRollbackOutcome(ctx context.Context, tx store.Tx, rb *Record) error {
	if rb.RollbackInfo == nil || rb.RollbackInfo.RollbackTriggeringDeploymentId == nil {
		return nil
	}
	orig, err := loadHeader(ctx, tx, *rb.RollbackInfo.RollbackTriggeringDeploymentId)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	outcome := map[engine.Status]string{engine.StatusSucceeded: "succeeded", engine.StatusFailed: "failed", engine.StatusStopped: "was stopped"}[rb.Engine.Status]
	msg := fmt.Sprintf("Rollback deployment %s %s.", rb.ID, outcome)
	if orig.RollbackInfo == nil {
		orig.RollbackInfo = &cd.RollbackInfo{}
	}
	orig.RollbackInfo.RollbackMessage = &msg
	// A header-only record: its targets stay as they are.
	return saveRecord(ctx, tx, orig, func(*engine.Instance) bool { return false })
}
