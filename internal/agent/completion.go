package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cutoverhq/cutover/internal/agent/layout"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
)

// Retry pacing of an undelivered PutHostCommandComplete.
const (
	completeRetryBase = 500 * time.Millisecond
	completeRetryMax  = 30 * time.Second
)

// outcome is a finished command's Complete on its way to the server.
type outcome struct {
	c     layout.Completion
	saved bool // on disk: a restart re-sends it
	log   *slog.Logger
	tries int
	last  error
}

// finish turns a result into the Complete to send and saves it before any
// attempt, so neither a server outage nor an agent restart loses it.
func (a *agent) finish(ctx context.Context, log *slog.Logger, hcid, deploymentID, name string, r result) *outcome {
	status := commands.DeploymentCommandStatusSucceeded
	d := diagnostics{ErrorCode: r.Code, Message: r.Message}
	if r.succeeded() {
		// On success the official agent sends no script output.
		if d.Message == "" {
			d.Message = msgSucceeded
		}
	} else {
		status = commands.DeploymentCommandStatusFailed
		d.ScriptName, d.Log = r.ScriptName, r.Log
	}
	// encoding/json replaces invalid UTF-8 in the log with U+FFFD, so the
	// official "Unknown" fallback payload is never needed, and a struct of
	// strings and an int cannot fail to encode.
	payload, _ := json.Marshal(d)
	o := &outcome{
		c: layout.Completion{HostCommandIdentifier: hcid, DeploymentID: deploymentID, CommandName: name,
			CommandStatus: status, Diagnostics: string(payload), Finished: time.Now().UTC()},
		log: log,
	}
	if err := a.layout.SaveCompletion(o.c); err != nil {
		log.ErrorContext(ctx, "cannot save the command result; it is lost if the agent stops before the server has it", "err", err)
	} else {
		o.saved = true
	}
	return o
}

// report delivers a Complete: at once, then with capped exponential backoff
// (and at once when a poll connects again after failing) until the server
// takes it or the agent stops; a saved outcome then waits on disk for the
// next start.
func (a *agent) report(ctx context.Context, o *outcome) {
	if o.tries == 0 && a.attempt(ctx, o) {
		return
	}
	if o.saved {
		// It will wait: make it survive the host too.
		if err := a.layout.SyncCompletion(o.c.HostCommandIdentifier); err != nil {
			o.log.WarnContext(ctx, "cannot flush the saved command result to disk", "err", err)
		}
	}
	for {
		d := completeBackoff(o.tries)
		o.log.WarnContext(ctx, "cannot report command completion; will retry", "err", o.last, "attempts", o.tries, "retry_in", d)
		if !a.waitRetry(ctx, d) {
			if o.saved {
				o.log.Warn("command completion not yet reported; kept on disk for the next start", "err", o.last)
			} else {
				o.log.Error("command completion lost: not reported and not saved", "err", o.last)
			}
			return
		}
		if a.attempt(ctx, o) {
			return
		}
	}
}

// attempt sends the Complete once (with the client's own short retries) and
// reports whether the outcome is settled: accepted, or refused by the server
// for good.
func (a *agent) attempt(ctx context.Context, o *outcome) bool {
	err := a.sendComplete(ctx, o.c)
	o.tries++
	switch {
	case err == nil:
		if o.tries > 1 {
			o.log.InfoContext(ctx, "command completion reported", "attempts", o.tries)
		}
	case rejected(err):
		// The server answers a late or repeated Complete with success (it
		// keeps the first); an error here is about the request itself, and
		// sending it again would get the same answer.
		o.log.ErrorContext(ctx, "the server refused the command completion; dropping it", "err", err)
	default:
		o.last = err
		return false
	}
	if err := a.layout.RemoveCompletion(o.c.HostCommandIdentifier); err != nil {
		o.log.WarnContext(ctx, "cannot remove the saved command result", "err", err)
	}
	if !o.saved && o.c.DeploymentID != "" {
		// The tracking file stood in for the unsaved result until now.
		if err := a.layout.UntrackIf(o.c.DeploymentID, o.c.HostCommandIdentifier); err != nil {
			o.log.WarnContext(ctx, "cannot remove tracking file", "err", err)
		}
	}
	return true
}

// rejected reports whether err is the server's final word on a Complete: a
// client error about the request that no retry would change. Errors about
// the caller's credentials are not: a server restored from the wrong backup,
// a clock set wrong or a key being rotated can all be fixed, and the result
// must still be there when they are.
func rejected(err error) bool {
	var apiErr *protocol.APIError
	if !errors.As(err, &apiErr) || apiErr.Retryable() ||
		apiErr.StatusCode < http.StatusBadRequest || apiErr.StatusCode >= http.StatusInternalServerError {
		return false
	}
	switch apiErr.Type {
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"IncompleteSignatureException", "MissingAuthenticationTokenException", "ExpiredTokenException",
		"InvalidClientTokenId", "SignatureDoesNotMatch":
		return false
	}
	return apiErr.StatusCode != http.StatusUnauthorized && apiErr.StatusCode != http.StatusForbidden
}

func (a *agent) sendComplete(ctx context.Context, c layout.Completion) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), completeTimeout)
	defer cancel()
	return a.client.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{
		HostCommandIdentifier: aws.String(c.HostCommandIdentifier),
		CommandStatus:         aws.String(c.CommandStatus),
		Diagnostics:           &commands.Envelope{Format: aws.String("JSON"), Payload: aws.String(c.Diagnostics)},
	})
}

// completeBackoff is the wait after the n-th failed attempt: doubling from
// 0.5 s, capped at 30 s, with jitter so a fleet that lost its server does
// not come back in lockstep.
func completeBackoff(n int) time.Duration {
	d := completeRetryMax
	if n < 16 {
		d = min(completeRetryMax, completeRetryBase<<max(n-1, 0))
	}
	return d/2 + rand.N(d/2+1)
}

// waitRetry waits d, or less if a poll connects to the server again; false
// when the agent is stopping.
func (a *agent) waitRetry(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-a.serverReached():
	}
	return true
}

// serverReached returns a channel closed when a poll next connects after
// failing.
func (a *agent) serverReached() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reached == nil {
		a.reached = make(chan struct{})
	}
	return a.reached
}

// serverBack wakes the Completes waiting to retry: the server answers again.
func (a *agent) serverBack() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reached != nil {
		close(a.reached)
		a.reached = nil
	}
}

// recoverResults gathers what a previous run left to report: saved results
// first, then commands it left in progress (§9), which are failed at once
// rather than after the server's timeout. Like the v2 agent every tracked
// command is reported, not just the newest.
func (a *agent) recoverResults(ctx context.Context) []*outcome {
	saved, err := a.layout.ListCompletions()
	if err != nil {
		a.log.WarnContext(ctx, "cannot read every saved command result", "err", err)
	}
	var out []*outcome
	have := map[string]bool{}
	for _, c := range saved {
		have[c.HostCommandIdentifier] = true
		log := a.log.With("command", c.CommandName, "host_command_id", c.HostCommandIdentifier, "deployment_id", c.DeploymentID)
		log.InfoContext(ctx, "re-sending the result of a command finished before the restart", "status", c.CommandStatus, "finished", c.Finished)
		out = append(out, &outcome{c: c, saved: true, log: log})
	}
	tracked, err := a.layout.ListTracked(time.Now(), trackingMaxAge)
	if err != nil {
		a.log.WarnContext(ctx, "cannot list in-progress commands of a previous run", "err", err)
	}
	for _, t := range tracked {
		log := a.log.With("deployment_id", t.DeploymentID, "host_command_id", t.HostCommandIdentifier)
		// No command, or one whose result was saved: nothing more to say.
		if t.HostCommandIdentifier == "" || have[t.HostCommandIdentifier] {
			if err := a.layout.UntrackIf(t.DeploymentID, t.HostCommandIdentifier); err != nil {
				log.WarnContext(ctx, "cannot remove tracking file", "err", err)
			}
			continue
		}
		log.InfoContext(ctx, "failing command left in progress by a previous run")
		o := a.finish(ctx, log, t.HostCommandIdentifier, t.DeploymentID, "", result{Code: codeFailedAfterReboot, Message: msgRestartFail})
		if o.saved {
			if err := a.layout.UntrackIf(t.DeploymentID, t.HostCommandIdentifier); err != nil {
				log.WarnContext(ctx, "cannot remove tracking file", "err", err)
			}
		}
		out = append(out, o)
	}
	return out
}
