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
	"github.com/cutoverhq/cutover/internal/engine"
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
}

// TeardownEvent describes original instances leaving a group's fleet.
type TeardownEvent struct {
	DeploymentID     string   `json:"deploymentId"`
	ApplicationName  string   `json:"applicationName"`
	DeploymentGroup  string   `json:"deploymentGroupName"`
	Instances        []string `json:"instances"`
	Terminate        bool     `json:"terminate"` // TERMINATE (true) or KEEP_ALIVE
	InstanceAccounts string   `json:"account"`
}

// Runner runs every deployment of a server.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	lives   map[string]*live
	hosts   map[string]*hostQueue  // host identifier -> pending commands
	addrs   map[string]string      // host identifier -> address it polls from
	index   map[string]*depIndex   // live deployment id -> protocol view
	tgLocks map[string]*sync.Mutex // target group -> lock ordering its pushes
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// live is an active deployment owned by its goroutine.
type live struct {
	id    string
	inbox chan *request
	done  chan struct{} // closed once the loop has retired
	rec   *Record       // owned by the loop; readers ask it for a snapshot
}

// request is an event for a live deployment and its reply.
type request struct {
	ev    any
	reply chan error
	// read asks for a copy of the committed state instead of an event.
	read chan []byte
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
	return &Runner{cfg: cfg, log: cfg.Logger, lives: map[string]*live{}, hosts: map[string]*hostQueue{}, addrs: map[string]string{}, index: map[string]*depIndex{}, tgLocks: map[string]*sync.Mutex{}}
}

func (r *Runner) now() time.Time { return r.cfg.Now().UTC() }

// Start resumes every deployment that was active when the server stopped,
// and re-applies the desired traffic of every target group.
func (r *Runner) Start(ctx context.Context) error {
	r.ctx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	var recs []*Record
	var members map[string][]traffic.Backend
	var teardowns []TeardownEvent
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		locks, err := tx.Scan(ctx, kindGroupLock, "", "", 0)
		if err != nil {
			return err
		}
		for _, l := range locks {
			rec, err := loadRecord(ctx, tx, string(l.Value))
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		if members, err = loadMembers(ctx, tx); err != nil {
			return err
		}
		owed, err := tx.Scan(ctx, kindTeardown, "", "", 0)
		for _, it := range owed {
			var ev TeardownEvent
			if err := json.Unmarshal(it.Value, &ev); err != nil {
				return err
			}
			teardowns = append(teardowns, ev)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("resume deployments: %w", err)
	}
	for _, ev := range teardowns {
		go r.teardown(ev)
	}
	if r.cfg.Traffic != nil {
		for tg, bs := range members {
			if err := r.cfg.Traffic.Apply(ctx, tg, bs); err != nil {
				r.log.Warn("re-applying target group membership", "target_group", tg, "err", err)
			}
		}
	}
	for _, rec := range recs {
		r.resume(rec, true)
	}
	return nil
}

// Close stops the deployment loops (state is already persisted).
func (r *Runner) Close() error {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
	return nil
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

func loadMembers(ctx context.Context, tx store.Tx) (map[string][]traffic.Backend, error) {
	items, err := tx.Scan(ctx, kindMember, "", "", 0)
	if err != nil {
		return nil, err
	}
	out := map[string][]traffic.Backend{}
	for _, it := range items {
		var bs []traffic.Backend
		if err := json.Unmarshal(it.Value, &bs); err != nil {
			return nil, err
		}
		out[it.Key] = bs
	}
	return out, nil
}

// resume starts the loop of an active deployment whose state is persisted,
// re-queueing the commands it was waiting on.
func (r *Runner) resume(rec *Record, restarted bool) {
	if restarted {
		// Before the loop owns it: commands handed out again get a fresh
		// pickup clock (persisted with the next commit, or redone after
		// another restart).
		_, _ = engine.Step(rec.Engine, r.cfg.Engine, engine.Resumed{}, r.now())
	}
	l := &live{id: rec.ID, inbox: make(chan *request, 64), done: make(chan struct{}), rec: rec}
	r.mu.Lock()
	r.lives[rec.ID] = l
	r.mu.Unlock()
	var acts []engine.Action
	for _, in := range rec.Engine.Instances {
		c := in.Cmd
		if c == nil {
			continue
		}
		if engine.IsTrafficEvent(c.Event) {
			acts = append(acts, engine.Traffic{Instance: in.Name, Allow: c.Event == engine.AllowTraffic, Command: *c})
		} else if c.Acked.IsZero() {
			// Sent but not acknowledged before the restart: the agent has
			// not started it (an agent acks before it executes), so it is
			// safe to hand out again.
			acts = append(acts, engine.Dispatch{Instance: in.Name, HostID: in.HostID, Command: *c})
		}
	}
	r.reindex(rec)
	r.wg.Add(1)
	go r.loop(l)
	r.perform(l, rec, acts)
	if rec.Engine.Status == engine.StatusCreated {
		// Committed but not started (new, or the server stopped right
		// after creating it). Start is queued like any other event, so
		// CreateDeployment answers at once.
		go r.sendRetrying(rec.ID, engine.Start{})
	}
}

// sendRetrying delivers an event nobody waits on, retrying transient
// failures (a failed commit) until the deployment ends or the server stops.
func (r *Runner) sendRetrying(id string, ev any) {
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

// send queues an event for a live deployment and waits for its commit.
func (r *Runner) send(ctx context.Context, id string, ev any) error {
	r.mu.Lock()
	l := r.lives[id]
	r.mu.Unlock()
	if l == nil {
		return errNotLive
	}
	req := &request{ev: ev, reply: make(chan error, 1)}
	select {
	case l.inbox <- req:
	case <-l.done:
		return errNotLive
	case <-ctx.Done():
		return ctx.Err()
	case <-r.ctx.Done():
		return errors.New("server shutting down")
	}
	select {
	case err := <-req.reply:
		return err
	case <-l.done:
		// Retired: a request that raced the retirement is answered here.
		select {
		case err := <-req.reply:
			return err
		default:
			return errNotLive
		}
	case <-r.ctx.Done():
		return errors.New("server shutting down")
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNotLive = errors.New("deployment is not active")

// loop owns one live deployment until it reaches a terminal status.
func (r *Runner) loop(l *live) {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
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
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(r.now()), 0) + time.Millisecond)
		} else {
			timer.Reset(time.Hour)
		}
		var batch []*request
		select {
		case <-r.ctx.Done():
			return
		case req := <-l.inbox:
			batch = append(batch, req)
		case <-timer.C:
			batch = append(batch, &request{ev: engine.Tick{}})
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
		r.apply(l, batch)
	}
}

// apply steps the engine through a batch, commits once, then replies and
// performs the decisions.
func (r *Runner) apply(l *live, batch []*request) {
	ctx := r.ctx
	rec := l.rec
	now := r.now()
	var acts []engine.Action
	var reads []*request
	errs := make([]error, len(batch))
	events := 0
	was := before(rec)
	for i, req := range batch {
		if req.read != nil {
			reads = append(reads, req)
			continue
		}
		events++
		a, err := engine.Step(rec.Engine, r.cfg.Engine, req.ev, now)
		errs[i] = err
		acts = append(acts, a...)
	}
	var post []func()
	if events > 0 {
		if err := r.commit(ctx, rec, was, now, acts, &post); err != nil {
			// Nothing was written: go back to the committed state and report.
			r.log.Error("commit deployment step", "deployment", l.id, "err", err)
			_ = r.cfg.Store.View(ctx, func(tx store.Tx) error {
				old, lerr := loadRecord(ctx, tx, l.id)
				if lerr == nil {
					l.rec = old
				}
				return lerr
			})
			for _, req := range batch {
				if req.reply != nil {
					req.reply <- fmt.Errorf("commit: %w", err)
				}
				if req.read != nil {
					req.read <- nil
				}
			}
			return
		}
		r.reindex(rec)
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
			req.reply <- errs[i]
		}
	}
	r.perform(l, rec, acts)
	for _, f := range post {
		f()
	}
}

// retire removes a finished deployment from the live set.
func (r *Runner) retire(l *live) {
	r.mu.Lock()
	delete(r.lives, l.id)
	delete(r.index, l.id)
	r.mu.Unlock()
	defer close(l.done)
	// Answer anything still queued: the deployment is complete.
	for {
		select {
		case req := <-l.inbox:
			if req.read != nil {
				req.read <- nil // the caller reads the store instead
				continue
			}
			_, err := engine.Step(l.rec.Engine, r.cfg.Engine, req.ev, r.now())
			if req.reply != nil {
				req.reply <- err
			}
		default:
			return
		}
	}
}

// snapshot returns the committed state of a live deployment, if live. The
// loop that owns the state encodes it between batches, so a reader never
// sees a half-applied batch and the loop never encodes state nobody reads.
func (r *Runner) snapshot(id string) (*Record, bool) {
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
// one transaction. post collects work to run after the commit (starting a
// rollback's loop).
func (r *Runner) commit(ctx context.Context, rec *Record, was Step, now time.Time, acts []engine.Action, post *[]func()) error {
	var rollback *Record
	var observed []func()
	err := r.cfg.Store.Update(ctx, func(tx store.Tx) error {
		rollback, observed = nil, nil
		for _, a := range acts {
			switch a := a.(type) {
			case engine.Traffic:
				weight := weightRemove
				switch {
				case a.Allow:
					weight = weightServe
				case a.Keep:
					weight = weightDrain
				}
				if err := r.setMembership(ctx, tx, rec, a.Instance, weight); err != nil {
					return err
				}
			case engine.Prewarm:
				for _, name := range a.Instances {
					if err := r.setMembership(ctx, tx, rec, name, weightPrewarm); err != nil {
						return err
					}
				}
			case engine.Terminate:
				if err := retireFromFleet(ctx, tx, rec, a.Instances); err != nil {
					return err
				}
				for _, name := range a.Instances {
					if err := r.setMembership(ctx, tx, rec, name, weightRemove); err != nil {
						return err
					}
				}
				if len(a.Instances) > 0 {
					b, err := json.Marshal(teardownEvent(rec, a))
					if err != nil {
						return err
					}
					if err := tx.Put(ctx, kindTeardown, rec.ID, b); err != nil {
						return err
					}
				}
			case engine.Finished:
				if err := r.dropPrewarmed(ctx, tx, rec); err != nil {
					return err
				}
				rb, err := r.finish(ctx, tx, rec)
				if err != nil {
					return err
				}
				rollback = rb
			}
		}
		if err := r.recordInstanceRevisions(ctx, tx, rec); err != nil {
			return err
		}
		if err := r.observe(ctx, tx, was, rec, now, &observed); err != nil {
			return err
		}
		return saveRecord(ctx, tx, rec, func(in *engine.Instance) bool { return !in.LastUpdated.Before(now) })
	})
	if err == nil {
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

// startLive begins a committed, newly created deployment.
func (r *Runner) startLive(rec *Record) { r.resume(rec, false) }

// finish records a terminal deployment on its group and, when asked,
// creates the rollback deployment in the same transaction.
func (r *Runner) finish(ctx context.Context, tx store.Tx, rec *Record) (*Record, error) {
	e := rec.Engine
	if _, err := tx.Delete(ctx, kindGroupLock, rec.GroupID); err != nil {
		return nil, err
	}
	if _, err := tx.Delete(ctx, api.ActiveKind, api.ScopeKey(rec.Account, rec.Region)+rec.ID); err != nil {
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
	summary := &cd.LastDeploymentInfo{DeploymentId: &rec.ID, Status: &e.Status, EndTime: ts, CreateTime: timeOf(e.Created)}
	g.LastAttemptedDeployment = summary
	if e.Status == engine.StatusSucceeded {
		g.LastSuccessfulDeployment = summary
		rev := rec.Revision
		if !(rec.Engine.BlueGreen && rec.Engine.Rollback) {
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
	outcome := map[string]string{engine.StatusSucceeded: "succeeded", engine.StatusFailed: "failed", engine.StatusStopped: "was stopped"}[rb.Engine.Status]
	msg := fmt.Sprintf("Rollback deployment %s %s.", rb.ID, outcome)
	if orig.RollbackInfo == nil {
		orig.RollbackInfo = &cd.RollbackInfo{}
	}
	orig.RollbackInfo.RollbackMessage = &msg
	// A header-only record: its targets stay as they are.
	return saveRecord(ctx, tx, orig, func(*engine.Instance) bool { return false })
}
