package deploy

import (
	"context"
	"github.com/cutoverhq/cutover/internal/engine"
	"time"
)

// Waits is a deployment's blue/green phase and wait deadlines, which the
// API shapes do not carry (dashboards show them as countdowns).
type Waits struct {
	Phase          engine.Phase `json:"phase"`
	ReadyDeadline  time.Time    `json:"readyDeadline,omitzero"`
	TerminationDue time.Time    `json:"terminationDue,omitzero"`
}

// WaitsOf returns the caller's deployment id's phase and deadlines.
func (r *Runner) WaitsOf(ctx context.Context, id string) (Waits, error) {
	rec, err := r.load(ctx, id)
	if err != nil {
		return Waits{}, err
	}
	e := rec.Engine
	return Waits{Phase: e.Phase, ReadyDeadline: e.ReadyDeadline, TerminationDue: e.TerminationDue}, nil
}

// CurrentCommand checks that cmdID is a current command of the calling
// host and returns its deployment id.
func (r *Runner) CurrentCommand(ctx context.Context, cmdID string) (string, error) {
	_, current, err := r.agent.ownCommand(ctx, cmdID)
	if err != nil {
		return "", err
	}
	if !current {
		return "", clientErr("command %s is not current", cmdID)
	}
	return deploymentOfCommand(cmdID), nil
}
