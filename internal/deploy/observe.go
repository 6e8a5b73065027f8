package deploy

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/store"
)

// Observer sees every committed step of every deployment: metrics, logs
// and notifications hang off it, so the runner has one place that tells
// them what changed.
type Observer interface {
	// Step runs inside the step's transaction, after the engine ran:
	// records it writes commit with the step (an outbox) or not at all.
	// It must not keep st.Record. The function it returns, if any, runs
	// after the commit.
	Step(ctx context.Context, tx store.Tx, st Step) (after func(), err error)
}

// Step is one committed step of a deployment.
type Step struct {
	Record *Record
	// Before is the deployment's status before the step, and
	// BeforeInstances each target's status (by position).
	Before          engine.Status
	BeforeInstances []string
	// Now is the step's time: the instances the step changed have
	// LastUpdated equal to Now, the events it ended have End equal to Now.
	Now time.Time
}

// Changed reports whether the step changed the target.
func (st Step) Changed(in *engine.Instance) bool { return !in.LastUpdated.Before(st.Now) }

// StatusBefore returns the status target i had before the step ("" for a
// target the step added).
func (st Step) StatusBefore(i int) string {
	if i < len(st.BeforeInstances) {
		return st.BeforeInstances[i]
	}
	return ""
}

// before captures what an observer compares a step against.
func before(rec *Record) Step {
	st := Step{Before: rec.Engine.Status, BeforeInstances: make([]string, len(rec.Engine.Instances))}
	for i, in := range rec.Engine.Instances {
		st.BeforeInstances[i] = in.Status
	}
	return st
}

// observe calls the observer inside a step's transaction.
func (r *executor) observe(ctx context.Context, tx store.Tx, st Step, rec *Record, now time.Time, post *[]func()) error {
	if r.cfg.Observer == nil {
		return nil
	}
	st.Record, st.Now = rec, now
	after, err := r.cfg.Observer.Step(ctx, tx, st)
	if after != nil {
		*post = append(*post, after)
	}
	return err
}

// Observers runs several observers in order.
type Observers []Observer

// Step implements Observer.
func (os Observers) Step(ctx context.Context, tx store.Tx, st Step) (func(), error) {
	var afters []func()
	for _, o := range os {
		f, err := o.Step(ctx, tx, st)
		if err != nil {
			return nil, err
		}
		if f != nil {
			afters = append(afters, f)
		}
	}
	if len(afters) == 0 {
		return nil, nil
	}
	return func() {
		for _, f := range afters {
			f()
		}
	}, nil
}

// Active returns the ids of the deployments this runner drives.
func (r *Runner) Active() []string { return r.exec.active() }

func (r *executor) active() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.lives))
	for id := range r.lives {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Header reads a deployment's stored record without its targets.
func (r *Runner) Header(ctx context.Context, id string) (*Record, error) {
	var rec *Record
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = loadHeader(ctx, tx, id)
		return err
	})
	return rec, err
}

// StopOnAlarm stops an active deployment with ALARM_ACTIVE. A deployment
// that completed meanwhile is left alone.
func (r *Runner) StopOnAlarm(ctx context.Context, id, message string, rollback bool) error {
	err := r.exec.send(ctx, id, engine.AlarmStop{Message: message, Rollback: rollback})
	var na *engine.ErrNotApplicable
	if errors.Is(err, errNotLive) || errors.As(err, &na) {
		return nil
	}
	return err
}
