package deploy

import (
	"context"
	"errors"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/engine"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

func asAWS(err error, target **awsjson.Error) bool { return errors.As(err, target) }

func (r *Runner) page(ctx context.Context, op string, names []string, token *string) ([]string, *string, error) {
	return r.cfg.Pager.Page(op, names, token)
}

// StopDeployment implements the operation: nothing more is scheduled, work
// in flight finishes, and the answer is Pending until it has.
func (r *Runner) StopDeployment(ctx context.Context, in *cd.StopDeploymentInput) (*cd.StopDeploymentOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if engine.Terminal(rec.Engine.Status) {
		return nil, awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed (%s).", id, rec.Engine.Status)
	}
	if err := r.groupExists(ctx, rec); err != nil {
		return nil, err
	}
	err = r.exec.send(ctx, id, engine.Stop{Rollback: in.AutoRollbackEnabled})
	if err == errNotLive {
		// It completed between our read and the stop.
		return nil, awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed.", id)
	}
	if err != nil {
		var na *engine.ErrNotApplicable
		if errors.As(err, &na) {
			return nil, awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed.", id)
		}
		return nil, err
	}
	rec, err = r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if engine.Terminal(rec.Engine.Status) {
		return &cd.StopDeploymentOutput{Status: ptr(cd.StopStatusSucceeded), StatusMessage: ptr("No more commands will be scheduled for execution in the deployment instances")}, nil
	}
	return &cd.StopDeploymentOutput{Status: ptr(cd.StopStatusPending), StatusMessage: ptr("Stopping Pending. Stopping to schedule commands in the deployment instances")}, nil
}

func (r *Runner) groupExists(ctx context.Context, rec *Record) error {
	return r.cfg.Store.View(ctx, func(tx store.Tx) error {
		_, err := api.GroupByID(ctx, tx, rec.Account, rec.Region, rec.ApplicationName, rec.GroupName, rec.GroupID)
		return err
	})
}

// ContinueDeployment implements the operation (the seed page).
func (r *Runner) ContinueDeployment(ctx context.Context, in *cd.ContinueDeploymentInput) error {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return err
	}
	wait := deref(in.DeploymentWaitType)
	if wait != "" && !cd.ValidDeploymentWaitType(wait) {
		return awsjson.Errorf("InvalidDeploymentWaitTypeException", "The wait type %q is not valid: use READY_WAIT or TERMINATION_WAIT.", wait)
	}
	return r.continueWait(ctx, id, wait, false)
}

// SkipWaitTimeForInstanceTermination is the deprecated TERMINATION_WAIT.
func (r *Runner) SkipWaitTimeForInstanceTermination(ctx context.Context, in *cd.SkipWaitTimeForInstanceTerminationInput) error {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return err
	}
	return r.continueWait(ctx, id, cd.DeploymentWaitTypeTERMINATIONWAIT, true)
}

func (r *Runner) continueWait(ctx context.Context, id, wait string, legacy bool) error {
	rec, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	if engine.Terminal(rec.Engine.Status) {
		return awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed (%s).", id, rec.Engine.Status)
	}
	err = r.exec.send(ctx, id, engine.Continue{WaitType: wait})
	if err == errNotLive {
		return awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed.", id)
	}
	var na *engine.ErrNotApplicable
	if errors.As(err, &na) {
		switch na.Reason {
		case engine.ReasonNotReady:
			if legacy {
				return awsjson.Errorf("DeploymentNotStartedException", "The deployment %s has not reached its termination wait.", id)
			}
			return awsjson.Errorf("DeploymentIsNotInReadyStateException", "The deployment %s does not have a status of Ready and can't continue yet.", id)
		case engine.ReasonNoTerminationWait:
			if legacy {
				return awsjson.Errorf("UnsupportedActionForDeploymentTypeException", "The deployment %s is not waiting to terminate original instances.", id)
			}
			return awsjson.Errorf("InvalidDeploymentStatusException", "The deployment %s is not waiting to terminate original instances.", id)
		case engine.ReasonUnsupported:
			return awsjson.Errorf("UnsupportedActionForDeploymentTypeException", "The deployment %s is an in-place deployment; only blue/green deployments wait for ContinueDeployment.", id)
		case engine.ReasonBadWaitType:
			return awsjson.Errorf("InvalidDeploymentWaitTypeException", "The wait type %q is not valid.", wait)
		default:
			return awsjson.Errorf("DeploymentAlreadyCompletedException", "The deployment %s is already completed.", id)
		}
	}
	return err
}
