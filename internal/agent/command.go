package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverhq/cutover/internal/agent/deployspec"
	"github.com/cutoverhq/cutover/internal/model/commands"
)

// completeTimeout bounds the PutHostCommandComplete call, which must be sent
// even when the command's own context has been cancelled.
const completeTimeout = 30 * time.Second

// Error codes of the Complete diagnostics (§1.6).
const (
	codeSucceeded         = 0
	codeUnknownError      = 5
	codeFailedAfterReboot = 7
)

// Messages fixed by the protocol.
const (
	msgSucceeded   = "Succeeded: "
	msgNoop        = "Succeeded: CompletedNoopCommand"
	msgRestartFail = "Failed: Failing in-progress lifecycle event after an agent restart."
)

// result is the outcome of one command, as reported in the Complete.
type result struct {
	Code       int
	ScriptName string
	Message    string
	Log        string
}

func (r result) succeeded() bool { return r.Code == codeSucceeded }

func failure(err error) result {
	return result{Code: codeUnknownError, Message: err.Error()}
}

// diagnostics is the Complete payload; the field order is the official one.
type diagnostics struct {
	ErrorCode  int    `json:"error_code"`
	ScriptName string `json:"script_name"`
	Message    string `json:"message"`
	Log        string `json:"log"`
}

// poll makes one PollHostCommand call and checks the answer as the official
// agent does (§1.2). It returns nil when there is no work.
func (a *agent) poll(ctx context.Context) (*commands.HostCommandInstance, error) {
	out, err := a.client.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: aws.String(a.cfg.HostIdentifier)})
	if err != nil {
		return nil, err
	}
	hc := out.HostCommand
	if hc == nil {
		return nil, nil
	}
	// The agent's identifier must contain the command's (so an on-prem ARN
	// matches however the server spells the host); a command that fails the
	// checks is never acknowledged.
	hostID := aws.ToString(hc.HostIdentifier)
	if hostID == "" || !strings.Contains(a.cfg.HostIdentifier, hostID) {
		return nil, fmt.Errorf("received command for host %q, but this agent is %q", hostID, a.cfg.HostIdentifier)
	}
	if aws.ToString(hc.CommandName) == "" {
		return nil, errors.New("received command with no CommandName")
	}
	if aws.ToString(hc.HostCommandIdentifier) == "" || aws.ToString(hc.DeploymentExecutionId) == "" {
		return nil, errors.New("received command without HostCommandIdentifier or DeploymentExecutionId")
	}
	return hc, nil
}

// process runs one polled command through spec, ack and execute, and
// returns its outcome, already saved to disk, for the caller to report; nil
// when the server must not hear about it. ctx is the command context: it
// survives the poll loop's cancellation for the shutdown grace period and is
// then cancelled with errShutdown.
func (a *agent) process(ctx context.Context, hc *commands.HostCommandInstance) *outcome {
	hcid := aws.ToString(hc.HostCommandIdentifier)
	name := aws.ToString(hc.CommandName)
	log := a.log.With("command", name, "host_command_id", hcid)

	spec, err := a.fetchSpec(ctx, hc)
	if err != nil {
		// Like Ruby: a command that cannot even be planned is failed without
		// an ack, so the server does not wait for its timeout.
		log.ErrorContext(ctx, "cannot get deployment specification", "err", err)
		return a.finish(ctx, log, hcid, "", name, failure(err))
	}
	log = log.With("deployment_id", spec.DeploymentID, "deployment_group_id", spec.DeploymentGroupID)

	p, err := a.plan(spec, name)
	if err != nil {
		log.ErrorContext(ctx, "cannot plan command", "err", err)
		return a.finish(ctx, log, hcid, spec.DeploymentID, name, failure(err))
	}
	p.hcid = hcid

	status, err := a.acknowledgeRetrying(ctx, log, hcid, p.noop)
	if err != nil && ctx.Err() != nil {
		// Shut down before the server heard of it: it hands the command
		// out again (or fails it at its pickup timeout); nothing ran.
		log.WarnContext(ctx, "acknowledgement not sent before shutdown; the command did not run", "err", err)
		return nil
	}
	if err != nil {
		log.ErrorContext(ctx, "acknowledgement failed", "err", err)
		return a.finish(ctx, log, hcid, spec.DeploymentID, name, failure(err))
	}
	log.DebugContext(ctx, "command acknowledged", "noop", p.noop, "status", status)
	switch status {
	case commands.DeploymentCommandStatusSucceeded:
		// The server already has the outcome; nothing to run or report.
		return nil
	case commands.DeploymentCommandStatusFailed:
		if p.noop {
			return a.finish(ctx, log, hcid, spec.DeploymentID, name, result{Code: codeSucceeded, Message: msgNoop})
		}
		return nil
	}

	if err := a.layout.Track(spec.DeploymentID, hcid); err != nil {
		log.WarnContext(ctx, "cannot write tracking file", "err", err)
	}
	start := time.Now()
	res := a.execute(ctx, log, spec, name, p)
	if !res.succeeded() && errors.Is(context.Cause(ctx), errShutdown) {
		// Whatever the runner made of being killed, say plainly why.
		res = result{
			Code:       codeUnknownError,
			ScriptName: res.ScriptName,
			Message:    fmt.Sprintf("Failed: the Cutover agent was shut down while %s was running and the command was killed", name),
			Log:        res.Log,
		}
	}
	if res.succeeded() {
		log.InfoContext(ctx, "command succeeded", "duration", time.Since(start))
	} else {
		log.ErrorContext(ctx, "command failed", "duration", time.Since(start), "error_code", res.Code, "script", res.ScriptName, "message", res.Message)
	}
	o := a.finish(ctx, log, hcid, spec.DeploymentID, name, res)
	// Once the result is on disk it, not the tracking file, is what a
	// restart reports; a result that could not be saved leaves the
	// tracking file, so a restart at least fails the command at once.
	if o.saved {
		if err := a.layout.UntrackIf(spec.DeploymentID, hcid); err != nil {
			log.WarnContext(ctx, "cannot remove tracking file", "err", err)
		}
	}
	return o
}

// fetchSpec calls GetDeploymentSpecification and opens the envelope (§1.4, §4).
func (a *agent) fetchSpec(ctx context.Context, hc *commands.HostCommandInstance) (*deployspec.Spec, error) {
	out, err := a.client.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{
		DeploymentExecutionId: hc.DeploymentExecutionId,
		HostIdentifier:        aws.String(a.cfg.HostIdentifier),
	})
	if err != nil {
		return nil, err
	}
	if sys := aws.ToString(out.DeploymentSystem); sys != "CodeDeploy" {
		return nil, fmt.Errorf("deployment system mismatch: expected CodeDeploy, got %q", sys)
	}
	if out.DeploymentSpecification == nil || out.DeploymentSpecification.GenericEnvelope == nil {
		return nil, errors.New("deployment specification is missing")
	}
	env := out.DeploymentSpecification.GenericEnvelope
	data, err := deployspec.OpenEnvelope(aws.ToString(env.Format), aws.ToString(env.Payload), a.pinned)
	if err != nil {
		return nil, err
	}
	return deployspec.Parse(data)
}

// ackRetryFor bounds how long an acknowledgement is retried while the
// server cannot be reached or is busy: by then the default pickup timeout
// has failed the event anyway.
const ackRetryFor = 5 * time.Minute

// acknowledgeRetrying acknowledges a command, retrying with the Completes'
// backoff while the server is unreachable or busy (a server restarting or
// a replica failing over), so that an outage between poll and ack does
// not fail a command that never ran. Only an answer that refuses the
// acknowledgement, or ackRetryFor, ends it with an error.
func (a *agent) acknowledgeRetrying(ctx context.Context, log *slog.Logger, hcid string, noop bool) (string, error) {
	start := time.Now()
	for n := 1; ; n++ {
		status, err := a.acknowledge(ctx, hcid, noop)
		if err == nil || rejected(err) || time.Since(start) > ackRetryFor {
			return status, err
		}
		d := completeBackoff(n)
		log.WarnContext(ctx, "cannot acknowledge command; will retry", "err", err, "attempts", n, "retry_in", d)
		if !a.waitRetry(ctx, d) {
			return "", err
		}
	}
}

func (a *agent) acknowledge(ctx context.Context, hcid string, noop bool) (string, error) {
	payload, err := json.Marshal(struct {
		IsCommandNoop bool `json:"IsCommandNoop"`
	}{noop})
	if err != nil {
		return "", err
	}
	out, err := a.client.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{
		HostCommandIdentifier: aws.String(hcid),
		Diagnostics:           &commands.Envelope{Format: aws.String("JSON"), Payload: aws.String(string(payload))},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.CommandStatus), nil
}
