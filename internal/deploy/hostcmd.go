package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
	"github.com/cutoverhq/cutover/internal/store"
)

// hostCommand is a command waiting for its host to poll, as queued in the
// store (kindHostCmd).
type hostCommand struct {
	ID         string `json:"id"`
	Deployment string `json:"deployment"`
	Host       string `json:"host"`
	Event      string `json:"event"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	// TakenAt is when a poll last handed the command out (replicas). The
	// record stays until the acknowledgement's commit removes it, so that
	// a replica taking the deployment over does not queue it again while
	// the agent's acknowledgement is on its way (the agent would run it
	// twice); a command taken and never acknowledged (the poll's answer
	// was lost with a replica) is handed out again after reofferAfter.
	TakenAt time.Time `json:"takenAt,omitzero"`
}

// depIndex is what the agent protocol needs of a deployment without
// decoding its state: which hosts take part and which commands are current.
// A live deployment's index is updated in place after each commit (see
// update): rebuilding its maps for every commit was the largest allocation
// of a 1,000-host deployment.
type depIndex struct {
	// account and region of the deployment: only hosts signing for them
	// take part (the same IAM ARN may name instances of several regions).
	account, region string

	mu      sync.RWMutex
	hosts   map[string]bool   // host identifiers in the deployment
	current map[string]string // current command id -> host identifier
	insts   []instNote        // per engine instance, what the maps hold of it
}

// instNote is an instance as its depIndex last saw it.
type instNote struct{ host, cmd string }

// member reports whether host takes part in the deployment.
func (idx *depIndex) member(host string) bool {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	return idx.hosts[host]
}

// owner returns the host whose current command cmdID is ("" if none).
func (idx *depIndex) owner(cmdID string) string {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	return idx.current[cmdID]
}

// update brings the index level with rec, changing only the instances
// whose command changed. It reports false, changing nothing, when rec is
// not a later state of the same deployment's instances (then build anew).
func (idx *depIndex) update(rec *Record) bool {
	ins := rec.Engine.Instances
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if rec.Account != idx.account || rec.Region != idx.region || len(ins) < len(idx.insts) {
		return false
	}
	for i, n := range idx.insts {
		if ins[i].HostID != n.host {
			return false
		}
	}
	for i, in := range ins {
		want := ""
		if c := in.Cmd; c != nil && !engine.IsTrafficEvent(c.Event) {
			want = c.ID
		}
		if i == len(idx.insts) {
			idx.insts = append(idx.insts, instNote{host: in.HostID})
			idx.hosts[in.HostID] = true
		}
		n := &idx.insts[i]
		if n.cmd == want {
			continue
		}
		// Two instances never share a command id: each command is one
		// instance's, numbered by the deployment's sequence.
		if n.cmd != "" {
			delete(idx.current, n.cmd)
		}
		if want != "" {
			idx.current[want] = n.host
		}
		n.cmd = want
	}
	return true
}

// inScope reports whether the caller signs for the deployment's account
// and region.
func (idx *depIndex) inScope(c awsjson.Caller) bool {
	return idx.account == c.Account && idx.region == c.Region
}

// signedSpec is a deployment's specification in its signed envelope, made
// once per replica.
type signedSpec struct{ format, payload string }

// maxSpecs bounds the signed specifications a replica keeps.
const maxSpecs = 1024

// take hands out the host's next queued command, once: with replicas, the
// first poll to mark it taken in the store gets it. A single process
// (SQLite) only remembers in memory what it handed out, and the record goes
// with the acknowledgement's commit: a write transaction per handout would
// cost a thousand-host deployment thousands of fsyncs, and after a crash the
// restart hands out again whatever was not acknowledged anyway.
func (r *agentService) take(ctx context.Context, queue string) (hostCommand, bool, error) {
	var items []store.Item
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		items, err = tx.Scan(ctx, kindHostCmd, queue+" ", "", 16)
		return err
	})
	if err != nil || len(items) == 0 {
		return hostCommand{}, false, err
	}
	if r.cfg.Exclusive {
		return r.takeLocal(items)
	}
	for _, it := range items {
		var seen hostCommand
		if json.Unmarshal(it.Value, &seen) == nil && r.handedRecently(seen) {
			continue
		}
		// The record is read again under lock: the scan's copy may be of
		// a command since replaced by the next one of the same deployment,
		// or taken by another poll.
		var c hostCommand
		got := false
		err := r.cfg.Store.Update(ctx, func(tx store.Tx) error {
			b, err := tx.Get(ctx, kindHostCmd, it.Key)
			if isNotFound(err) {
				return nil // acknowledged or replaced meanwhile
			}
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("queued command %s: %w", it.Key, err)
			}
			if r.handedRecently(c) {
				return nil // another poll of this host got it
			}
			c.TakenAt = r.now()
			b, err = json.Marshal(c)
			if err != nil {
				return err
			}
			got = true
			return tx.Put(ctx, kindHostCmd, it.Key, b)
		})
		if err != nil {
			return hostCommand{}, false, err
		}
		if got {
			return c, true, nil
		}
	}
	return hostCommand{}, false, nil
}

// handedRecently reports whether a poll handed c out so recently that its
// acknowledgement may still be on its way.
func (r *agentService) handedRecently(c hostCommand) bool {
	return !c.TakenAt.IsZero() && r.now().Sub(c.TakenAt) < reofferAfter(r.cfg.Engine.PickupTimeout)
}

// reofferAfter is how long a command handed out and not acknowledged waits
// before it is handed out again: long enough for an acknowledgement held
// up by a takeover, short enough to leave most of the pickup timeout.
func reofferAfter(pickup time.Duration) time.Duration {
	return min(30*time.Second, pickup/2)
}

func (r *agentService) takeLocal(items []store.Item) (hostCommand, bool, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		var c hostCommand
		if err := json.Unmarshal(it.Value, &c); err != nil {
			return hostCommand{}, false, fmt.Errorf("queued command %s: %w", it.Key, err)
		}
		if _, done := r.handedOut[c.ID]; done {
			continue
		}
		if len(r.handedOut) >= maxHandedOut {
			// Forget handouts older than any pickup timeout: their
			// commands were acknowledged or failed long ago.
			for id, at := range r.handedOut {
				if now.Sub(at) > r.cfg.Engine.PickupTimeout+time.Minute {
					delete(r.handedOut, id)
				}
			}
		}
		r.handedOut[c.ID] = now
		return c, true, nil
	}
	return hostCommand{}, false, nil
}

// maxHandedOut is the size at which takeLocal prunes its memory.
const maxHandedOut = 100_000

// reindex refreshes the protocol view of a live deployment after a commit.
func (r *executor) reindex(rec *Record) {
	r.mu.Lock()
	idx, live := r.index[rec.ID], r.lives[rec.ID] != nil
	r.mu.Unlock()
	if !live || (idx != nil && idx.update(rec)) {
		return
	}
	idx = indexOf(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.lives[rec.ID]; ok {
		r.index[rec.ID] = idx
	}
}

func indexOf(rec *Record) *depIndex {
	n := len(rec.Engine.Instances)
	idx := &depIndex{hosts: make(map[string]bool, n), current: make(map[string]string, n), account: rec.Account, region: rec.Region}
	idx.update(rec)
	return idx
}

// protocolView returns the protocol view of a deployment: this replica's
// own when it drives it, else one read from the store (nil if none).
// cmdID, when set, is a command the caller expects to be current: the
// store makes a command visible to polls at its commit, a moment before
// the loop refreshes its view, so an unknown one waits for the loop once.
func (r *agentService) protocolView(ctx context.Context, id, cmdID string) (*depIndex, error) {
	idx := r.exec.indexed(id)
	if idx != nil && cmdID != "" && idx.owner(cmdID) == "" {
		r.exec.barrier(id) // passes through the loop: its last commit is indexed
		if i := r.exec.indexed(id); i != nil {
			idx = i
		}
	}
	if idx != nil {
		return idx, nil
	}
	var rec *Record
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = loadRecord(ctx, tx, id)
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return indexOf(rec), nil
}

// addrNote is a host's address as this replica last recorded it.
type addrNote struct {
	addr string
	at   time.Time
}

// addrRefresh is how long a replica trusts that the address it recorded
// for a host is still the stored one (another replica may record another).
const addrRefresh = time.Minute

// noteAddress records the address a host polls from, which is its traffic
// address unless tagged otherwise. It survives restarts and is seen by
// every replica.
func (r *agentService) noteAddress(ctx context.Context, host, addr string) error {
	now := r.now()
	r.mu.Lock()
	n, ok := r.addrSeen[host]
	r.mu.Unlock()
	if ok && n.addr == addr && now.Sub(n.at) < addrRefresh {
		return nil
	}
	err := r.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if b, err := tx.Get(ctx, kindHostAddr, host); err == nil && string(b) == addr {
			return nil
		}
		return tx.Put(ctx, kindHostAddr, host, []byte(addr))
	})
	if err != nil {
		return fmt.Errorf("record the address of %s: %w", host, err)
	}
	r.mu.Lock()
	if len(r.addrSeen) > 100_000 {
		clear(r.addrSeen)
	}
	r.addrSeen[host] = addrNote{addr: addr, at: now}
	r.mu.Unlock()
	return nil
}

// signedSpec returns a deployment's signed specification. It is built and
// signed outside the runner's lock: signing costs milliseconds.
func (r *agentService) signedSpec(ctx context.Context, id string) (signedSpec, error) {
	r.mu.Lock()
	sp, ok := r.specs[id]
	r.mu.Unlock()
	if ok {
		return sp, nil
	}
	var rec *Record
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = loadHeader(ctx, tx, id)
		return err
	})
	if err != nil {
		return sp, err
	}
	sp.format, sp.payload, err = r.cfg.Spec.Sign(r.buildSpec(rec))
	if err != nil {
		return sp, fmt.Errorf("sign deployment specification: %w", err)
	}
	r.mu.Lock()
	if len(r.specs) >= maxSpecs {
		clear(r.specs)
	}
	r.specs[id] = sp
	r.mu.Unlock()
	return sp, nil
}

// ServeCommands implements awsjson.Service for the agent protocol.
func (r *agentService) ServeCommands(ctx context.Context, op string, body []byte) (any, error) {
	out, err := commands.Dispatch(ctx, commandService{r}, op, body)
	if err != nil {
		var de *modelcheck.DecodeError
		var vf *modelcheck.ValidationFailure
		switch {
		case errors.As(err, &de):
			return nil, awsjson.Errorf("SerializationException", "%v", de.Err)
		case errors.As(err, &vf):
			return nil, awsjson.Errorf("ClientException", "%s", vf.Violation.Message)
		case errors.Is(err, modelcheck.ErrUnknownOperation):
			return nil, awsjson.Errorf("UnknownOperationException", "unknown operation %s", op)
		}
		return nil, err
	}
	if out == nil {
		// The agents ignore these bodies; {} is what the service sends.
		return struct{}{}, nil
	}
	return out, nil
}

type commandService struct{ r *agentService }

// host returns the caller's host identifier: the principal ARN of its key,
// which must be the ARN of a registered on-premises instance.
func (r *agentService) host(ctx context.Context) (string, error) {
	c, _ := awsjson.CallerFrom(ctx)
	if r.cfg.InstanceOf == nil {
		return "", errors.New("deploy: InstanceOf is not configured")
	}
	name, err := r.cfg.InstanceOf(ctx)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", &awsjson.Error{Type: "AccessDeniedException", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("%s is not the IAM ARN of a registered on-premises instance", c.Principal)}
	}
	return c.Principal, nil
}

func clientErr(format string, args ...any) error {
	return awsjson.Errorf("ClientException", format, args...)
}

func (s commandService) PollHostCommand(ctx context.Context, in *commands.PollHostCommandInput) (*commands.PollHostCommandOutput, error) {
	r := s.r
	host, err := r.host(ctx)
	if err != nil {
		return nil, err
	}
	if deref(in.HostIdentifier) != host {
		return nil, clientErr("HostIdentifier %q does not match the caller's instance %q", deref(in.HostIdentifier), host)
	}
	if err := r.noteAddress(ctx, host, hostOf(awsjson.RemoteAddr(ctx))); err != nil {
		return nil, err
	}
	caller, _ := awsjson.CallerFrom(ctx)
	queue := queueKey(caller.Account, caller.Region, host)
	timer := time.NewTimer(r.cfg.PollWait)
	defer timer.Stop()
	// A lost change notification delays a command by this much at most.
	recheck := time.NewTicker(pollRecheck)
	defer recheck.Stop()
	for {
		wake := r.hostWaker(queue) // before looking: a command queued meanwhile wakes us
		c, ok, err := r.take(ctx, queue)
		if err != nil {
			return nil, err
		}
		if ok {
			return &commands.PollHostCommandOutput{HostCommand: &commands.HostCommandInstance{
				HostCommandIdentifier: ptr(c.ID),
				HostIdentifier:        ptr(host),
				DeploymentExecutionId: ptr(executionID(c.Region, c.Account, c.Deployment)),
				CommandName:           ptr(c.Event),
			}}, nil
		}
		select {
		case <-wake:
		case <-recheck.C:
		case <-timer.C:
			return &commands.PollHostCommandOutput{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.ctx.Done():
			return &commands.PollHostCommandOutput{}, nil
		case <-r.draining:
			// The HTTP server is shutting down: answer now rather than
			// hold its shutdown for the rest of the long poll.
			return &commands.PollHostCommandOutput{}, nil
		}
	}
}

// StopPolls answers every long poll at once with no command, now and from
// now on: call it when the HTTP server starts shutting down.
func (r *agentService) StopPolls() { r.drainOnce.Do(func() { close(r.draining) }) }

// pollRecheck is how often a long poll looks at the store without being
// woken by the change feed.
const pollRecheck = 5 * time.Second

// executionID is the DeploymentExecutionId of a deployment; it matches the
// model's pattern ^[^/]+/[^/]+/[^/]+/.+$ like AWS's own.
func executionID(region, account, id string) string {
	return "Cutover/" + region + "/" + account + "/" + id
}

func deploymentOfExecution(s string) string {
	return s[strings.LastIndex(s, "/")+1:]
}

// deploymentOfCommand recovers the deployment id from a command id
// ("<deployment id>-<sequence>").
func deploymentOfCommand(id string) string {
	if i := strings.LastIndex(id, "-"); i > 0 {
		return id[:i]
	}
	return ""
}

func (s commandService) GetDeploymentSpecification(ctx context.Context, in *commands.GetDeploymentSpecificationInput) (*commands.GetDeploymentSpecificationOutput, error) {
	r := s.r
	host, err := r.host(ctx)
	if err != nil {
		return nil, err
	}
	if deref(in.HostIdentifier) != host {
		return nil, clientErr("HostIdentifier %q does not match the caller's instance", deref(in.HostIdentifier))
	}
	id := deploymentOfExecution(deref(in.DeploymentExecutionId))
	idx, err := r.protocolView(ctx, id, "")
	if err != nil {
		return nil, err
	}
	caller, _ := awsjson.CallerFrom(ctx)
	if idx == nil || !idx.member(host) || !idx.inScope(caller) {
		return nil, clientErr("no deployment %s for this host", deref(in.DeploymentExecutionId))
	}
	sp, err := r.signedSpec(ctx, id)
	if err != nil {
		return nil, err
	}
	format, payload := sp.format, sp.payload
	return &commands.GetDeploymentSpecificationOutput{
		DeploymentSystem: ptr("CodeDeploy"),
		DeploymentSpecification: &commands.DeploymentSpecification{
			GenericEnvelope: &commands.Envelope{Format: ptr(format), Payload: ptr(payload)},
		},
	}, nil
}

// ownCommand checks that the caller's host owns a current command.
func (r *agentService) ownCommand(ctx context.Context, cmdID string) (host string, current bool, err error) {
	host, err = r.host(ctx)
	if err != nil {
		return "", false, err
	}
	dep := deploymentOfCommand(cmdID)
	idx, err := r.protocolView(ctx, dep, cmdID)
	if err != nil {
		return "", false, err
	}
	caller, _ := awsjson.CallerFrom(ctx)
	if idx != nil && !idx.inScope(caller) {
		return "", false, clientErr("command %s does not belong to this host", cmdID)
	}
	var owner string
	var member bool
	if idx != nil {
		owner = idx.owner(cmdID)
		member = idx.member(host)
	}
	if owner != "" && owner != host {
		return "", false, clientErr("command %s does not belong to this host", cmdID)
	}
	if owner == "" && idx != nil && !member {
		return "", false, clientErr("command %s does not belong to this host", cmdID)
	}
	return host, owner == host, nil
}

func (s commandService) PutHostCommandAcknowledgement(ctx context.Context, in *commands.PutHostCommandAcknowledgementInput) (*commands.PutHostCommandAcknowledgementOutput, error) {
	r := s.r
	id := deref(in.HostCommandIdentifier)
	host, current, err := r.ownCommand(ctx, id)
	if err != nil {
		return nil, err
	}
	if !current {
		// Stale (the deployment moved on or stopped, or the command timed
		// out): the agent must not run it (AGENT-SEMANTICS §1.5).
		r.log.InfoContext(ctx, "acknowledgement of a command no longer current; answered Failed", "host", host, "command", id)
		return &commands.PutHostCommandAcknowledgementOutput{CommandStatus: ptr(commands.DeploymentCommandStatusFailed)}, nil
	}
	res, err := r.exec.deliver(ctx, deploymentOfCommand(id), engine.Acked{CommandID: id})
	if err != nil && err != errNotLive {
		return nil, err
	}
	// The command may have timed out or been stopped between the check
	// and the commit: only an acknowledgement that took runs it.
	if err == errNotLive || !res.took {
		r.log.InfoContext(ctx, "acknowledgement raced the command's end; answered Failed", "host", host, "command", id)
		return &commands.PutHostCommandAcknowledgementOutput{CommandStatus: ptr(commands.DeploymentCommandStatusFailed)}, nil
	}
	return &commands.PutHostCommandAcknowledgementOutput{CommandStatus: ptr(commands.DeploymentCommandStatusInProgress)}, nil
}

func (s commandService) PostHostCommandUpdate(ctx context.Context, in *commands.PostHostCommandUpdateInput) (*commands.PostHostCommandUpdateOutput, error) {
	id := deref(in.HostCommandIdentifier)
	_, current, err := s.r.ownCommand(ctx, id)
	if err != nil {
		return nil, err
	}
	st := commands.DeploymentCommandStatusInProgress
	if !current {
		st = commands.DeploymentCommandStatusFailed
	}
	return &commands.PostHostCommandUpdateOutput{CommandStatus: &st}, nil
}

func (s commandService) PutHostCommandComplete(ctx context.Context, in *commands.PutHostCommandCompleteInput) error {
	r := s.r
	id := deref(in.HostCommandIdentifier)
	host, current, err := r.ownCommand(ctx, id)
	if err != nil {
		return err
	}
	status := deref(in.CommandStatus)
	if status != commands.DeploymentCommandStatusSucceeded && status != commands.DeploymentCommandStatusFailed {
		return clientErr("CommandStatus must be Succeeded or Failed, not %q", status)
	}
	if !current {
		// A repeat, or late (the command timed out or the deployment ended):
		// the first outcome stands and the agent gets {} so it stops
		// retrying (AGENT-SEMANTICS §1.7, §9).
		r.log.InfoContext(ctx, "completion of a command no longer current; ignored", "host", host, "command", id, "status", status)
		return nil
	}
	diag := parseDiagnostics(in.Diagnostics, status == commands.DeploymentCommandStatusSucceeded)
	err = r.exec.send(ctx, deploymentOfCommand(id), engine.Completed{CommandID: id, Succeeded: status == commands.DeploymentCommandStatusSucceeded, Diagnostics: diag})
	if err != nil && err != errNotLive {
		return err
	}
	return nil
}

// maxLogTail is how much script output the service keeps per event.
const maxLogTail = 4096

// parseDiagnostics reads the agent's JSON diagnostics payload. error_code
// may be a number or, in the agent's fallback form, a string.
func parseDiagnostics(env *commands.Envelope, ok bool) engine.Diagnostics {
	if ok {
		return engine.Diagnostics{ErrorCode: "Success", Message: "Succeeded"}
	}
	d := engine.Diagnostics{ErrorCode: "UnknownError", Message: "The agent reported a failure without diagnostics."}
	if env == nil || env.Payload == nil {
		return d
	}
	var p struct {
		ErrorCode  json.RawMessage `json:"error_code"`
		ScriptName string          `json:"script_name"`
		Message    string          `json:"message"`
		Log        string          `json:"log"`
	}
	if err := json.Unmarshal([]byte(*env.Payload), &p); err != nil {
		d.Message = "Unparseable diagnostics: " + *env.Payload
		return d
	}
	var code int
	if json.Unmarshal(p.ErrorCode, &code) != nil {
		code = 5
	}
	d.ErrorCode = lifecycleErrorCode(code)
	d.ScriptName = p.ScriptName
	d.Message = p.Message
	d.LogTail = p.Log
	if len(d.LogTail) > maxLogTail {
		d.LogTail = d.LogTail[len(d.LogTail)-maxLogTail:]
	}
	return d
}

func lifecycleErrorCode(code int) string {
	switch code {
	case 0:
		return "Success"
	case 1:
		return "ScriptMissing"
	case 2:
		return "ScriptNotExecutable"
	case 3:
		return "ScriptTimedOut"
	case 4:
		return "ScriptFailed"
	}
	return "UnknownError"
}
