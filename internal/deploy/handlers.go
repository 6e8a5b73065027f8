package deploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/store"
)

// actionHandler carries out one kind of engine action, in the one place
// that kind is handled: its part of the step's transaction and what
// follows the commit. Adding an action to the engine means adding one
// handler here (TestEveryActionHasAHandler checks handlerOf covers them).
type actionHandler interface {
	// inTx writes the action's records in the transaction that commits
	// the step. The transaction may run more than once: inTx only writes
	// through tx and st.
	inTx(ctx context.Context, tx store.Tx, st *stepTx) error
	// afterCommit carries the committed action out. It is safe to repeat:
	// a replica resuming a deployment runs it again for traffic commands
	// in flight.
	afterCommit(rec *Record)
}

// stepTx is one run of a step's transaction, as the handlers see it.
type stepTx struct {
	l   *live
	rec *Record
	// rollback is the deployment a Finished action created, started
	// after the commit.
	rollback *Record
}

// handlerOf returns the handler of an action. The switch is exhaustive
// over engine.Action (checked by a test).
func (r *executor) handlerOf(a engine.Action) actionHandler {
	switch a := a.(type) {
	case engine.Dispatch:
		return dispatchHandler{}
	case engine.Traffic:
		return trafficHandler{r, a}
	case engine.Prewarm:
		return prewarmHandler{r, a}
	case engine.Terminate:
		return terminateHandler{r, a}
	case engine.Finished:
		return finishedHandler{r, a}
	case engine.ShiftTraffic:
		return shiftHandler{r, a}
	}
	panic(fmt.Sprintf("deploy: no handler for engine action %T", a))
}

// dispatchHandler: the command is queued in the store by the commit
// (queueHostCommands keeps the queue level with the engine); the change
// feed wakes the host's long poll on whichever replica it polls.
type dispatchHandler struct{}

func (dispatchHandler) inTx(context.Context, store.Tx, *stepTx) error { return nil }
func (dispatchHandler) afterCommit(*Record)                           {}

// trafficHandler records the desired membership, then waits for the
// routers to serve it and reports the outcome to the engine.
type trafficHandler struct {
	r *executor
	a engine.Traffic
}

func (h trafficHandler) inTx(ctx context.Context, tx store.Tx, st *stepTx) error {
	weight := weightRemove
	switch {
	case h.a.Allow:
		weight = weightServe
	case h.a.Keep:
		weight = weightDrain
	}
	if err := h.r.setMembership(ctx, tx, st.rec, h.a.Instance, weight); err != nil {
		return err
	}
	if h.a.Percent > 0 {
		// A shifting deployment's replacement joins at its step's share.
		return h.r.setShiftWeights(ctx, tx, st.rec, h.a.Percent)
	}
	return nil
}

func (h trafficHandler) afterCommit(rec *Record) {
	r, a := h.r, h.a
	r.goOwned(func() { r.applyTraffic(rec.ID, a) })
}

// prewarmHandler registers installed replacements without traffic.
type prewarmHandler struct {
	r *executor
	a engine.Prewarm
}

func (h prewarmHandler) inTx(ctx context.Context, tx store.Tx, st *stepTx) error {
	for _, name := range h.a.Instances {
		if err := h.r.setMembership(ctx, tx, st.rec, name, weightPrewarm); err != nil {
			return err
		}
	}
	return nil
}

func (h prewarmHandler) afterCommit(rec *Record) { h.r.pokeRouters(rec) }

// terminateHandler retires the originals from the group's fleet and from
// traffic, and records the teardown owed to the operator's hook.
type terminateHandler struct {
	r *executor
	a engine.Terminate
}

func (h terminateHandler) inTx(ctx context.Context, tx store.Tx, st *stepTx) error {
	rec := st.rec
	if err := retireFromFleet(ctx, tx, rec, h.a.Instances); err != nil {
		return err
	}
	for _, name := range h.a.Instances {
		if err := h.r.setMembership(ctx, tx, rec, name, weightRemove); err != nil {
			return err
		}
	}
	if len(h.a.Instances) == 0 {
		return nil
	}
	b, err := json.Marshal(teardownEvent(rec, h.a))
	if err != nil {
		return err
	}
	return tx.Put(ctx, kindTeardown, rec.ID, b)
}

func (h terminateHandler) afterCommit(rec *Record) {
	h.r.pokeRouters(rec)
	if len(h.a.Instances) > 0 {
		h.r.pokeScheduler() // the teardown owed was recorded by the commit
	}
}

// finishedHandler ends the deployment: leftover prewarmed replacements
// leave the target groups, the group records the outcome (and creates the
// rollback, when one is wanted), and the lease goes.
type finishedHandler struct {
	r *executor
	a engine.Finished
}

func (h finishedHandler) inTx(ctx context.Context, tx store.Tx, st *stepTx) error {
	r := h.r
	if err := r.dropPrewarmed(ctx, tx, st.rec); err != nil {
		return err
	}
	rb, err := r.finish(ctx, tx, st.rec)
	if err != nil {
		return err
	}
	st.rollback = rb
	return r.leases.Drop(ctx, tx, st.l.lease)
}

func (h finishedHandler) afterCommit(rec *Record) { h.r.pokeRouters(rec) }

// pokeRouters tells the reconcilers that the desired membership of the
// deployment's target groups changed without an event waiting on it
// (prewarmed replacements; leftovers removed at the end; the originals
// leaving). Other replicas hear of it through the change feed.
func (r *executor) pokeRouters(rec *Record) {
	known, _ := r.targetGroups(rec)
	for _, tg := range known {
		r.recon.pokeGroup(tg)
	}
}
