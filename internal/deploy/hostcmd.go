package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

// hostCommand is a command waiting for its host to poll.
type hostCommand struct {
	id, deployment, host, event, account, region string
}

// hostQueue holds a host's undelivered commands and wakes its long polls.
type hostQueue struct {
	pending []hostCommand
	wake    chan struct{}
}

// depIndex is what the agent protocol needs of a live deployment without
// decoding its state: which hosts take part and which commands are current.
type depIndex struct {
	hosts   map[string]bool   // host identifiers in the deployment
	current map[string]string // current command id -> host identifier
	acked   map[string]bool
	spec    []byte // deployment specification JSON
	// format and payload are spec's signed envelope, made once.
	format, payload string
	// account and region of the deployment: only hosts signing for them
	// take part (the same IAM ARN may name instances of several regions).
	account, region string
}

// queueKey is the queue of a host identifier in an account and region.
func queueKey(account, region, host string) string {
	return account + "/" + region + "/" + host
}

func (r *Runner) enqueue(host string, c hostCommand) {
	host = queueKey(c.account, c.region, host)
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.hosts[host]
	if q == nil {
		q = &hostQueue{wake: make(chan struct{})}
		r.hosts[host] = q
	}
	for _, p := range q.pending {
		if p.id == c.id {
			return
		}
	}
	q.pending = append(q.pending, c)
	close(q.wake)
	q.wake = make(chan struct{})
}

// take hands out the host's next current command in an account and
// region, dropping stale ones.
func (r *Runner) take(account, region, host string) (hostCommand, bool, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.hosts[queueKey(account, region, host)]
	if q == nil {
		q = &hostQueue{wake: make(chan struct{})}
		r.hosts[queueKey(account, region, host)] = q
	}
	for len(q.pending) > 0 {
		c := q.pending[0]
		q.pending = q.pending[1:]
		idx := r.index[c.deployment]
		if idx == nil || idx.current[c.id] != host || idx.acked[c.id] {
			continue
		}
		return c, true, nil
	}
	return hostCommand{}, false, q.wake
}

// reindex refreshes the protocol view of a deployment after a commit.
func (r *Runner) reindex(rec *Record) {
	cur := map[string]string{}
	acked := map[string]bool{}
	for _, in := range rec.Engine.Instances {
		if c := in.Cmd; c != nil && !engine.IsTrafficEvent(c.Event) {
			cur[c.ID] = in.HostID
			if !c.Acked.IsZero() {
				acked[c.ID] = true
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := r.index[rec.ID]
	if idx == nil {
		hosts := map[string]bool{}
		for _, in := range rec.Engine.Instances {
			hosts[in.HostID] = true
		}
		idx = &depIndex{account: rec.Account, region: rec.Region, hosts: hosts, spec: r.buildSpec(rec)}
		r.index[rec.ID] = idx
	}
	idx.current, idx.acked = cur, acked
}

// inScope reports whether the caller signs for the deployment's account
// and region.
func (idx *depIndex) inScope(c awsjson.Caller) bool {
	return idx.account == c.Account && idx.region == c.Region
}

// ServeCommands implements awsjson.Service for the agent protocol.
func (r *Runner) ServeCommands(ctx context.Context, op string, body []byte) (any, error) {
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

type commandService struct{ r *Runner }

// host returns the caller's host identifier: the principal ARN of its key,
// which must be the ARN of a registered on-premises instance.
func (r *Runner) host(ctx context.Context) (string, error) {
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
	caller, _ := awsjson.CallerFrom(ctx)
	r.mu.Lock()
	r.addrs[host] = hostOf(awsjson.RemoteAddr(ctx))
	r.mu.Unlock()
	timer := time.NewTimer(r.cfg.PollWait)
	defer timer.Stop()
	for {
		c, ok, wake := r.take(caller.Account, caller.Region, host)
		if ok {
			return &commands.PollHostCommandOutput{HostCommand: &commands.HostCommandInstance{
				HostCommandIdentifier: ptr(c.id),
				HostIdentifier:        ptr(host),
				DeploymentExecutionId: ptr(executionID(c.region, c.account, c.deployment)),
				CommandName:           ptr(c.event),
			}}, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return &commands.PollHostCommandOutput{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.ctx.Done():
			return &commands.PollHostCommandOutput{}, nil
		}
	}
}

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
	caller, _ := awsjson.CallerFrom(ctx)
	r.mu.Lock()
	idx := r.index[id]
	var spec []byte
	var format, payload string
	ok := idx != nil && idx.hosts[host] && idx.inScope(caller)
	if ok {
		spec, format, payload = idx.spec, idx.format, idx.payload
	}
	r.mu.Unlock()
	if !ok {
		return nil, clientErr("no deployment %s for this host", deref(in.DeploymentExecutionId))
	}
	if format == "" {
		var err error
		format, payload, err = r.cfg.Spec.Sign(spec)
		if err != nil {
			return nil, fmt.Errorf("sign deployment specification: %w", err)
		}
		r.mu.Lock()
		idx.format, idx.payload = format, payload
		r.mu.Unlock()
	}
	return &commands.GetDeploymentSpecificationOutput{
		DeploymentSystem: ptr("CodeDeploy"),
		DeploymentSpecification: &commands.DeploymentSpecification{
			GenericEnvelope: &commands.Envelope{Format: ptr(format), Payload: ptr(payload)},
		},
	}, nil
}

// ownCommand checks that the caller's host owns a current command.
func (r *Runner) ownCommand(ctx context.Context, cmdID string) (host string, current bool, err error) {
	host, err = r.host(ctx)
	if err != nil {
		return "", false, err
	}
	dep := deploymentOfCommand(cmdID)
	caller, _ := awsjson.CallerFrom(ctx)
	r.mu.Lock()
	idx := r.index[dep]
	var owner string
	var member bool
	if idx != nil && !idx.inScope(caller) {
		r.mu.Unlock()
		return "", false, clientErr("command %s does not belong to this host", cmdID)
	}
	if idx != nil {
		owner = idx.current[cmdID]
		member = idx.hosts[host]
	}
	r.mu.Unlock()
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
	if err := r.send(ctx, deploymentOfCommand(id), engine.Acked{CommandID: id}); err != nil && err != errNotLive {
		return nil, err
	}
	// The command may have timed out or been stopped between the check
	// and the commit: only an acknowledgement that took runs it.
	r.mu.Lock()
	idx := r.index[deploymentOfCommand(id)]
	took := idx != nil && idx.acked[id]
	r.mu.Unlock()
	if !took {
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
	err = r.send(ctx, deploymentOfCommand(id), engine.Completed{CommandID: id, Succeeded: status == commands.DeploymentCommandStatusSucceeded, Diagnostics: diag})
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
