package deploy

import (
	"context"
	"encoding/json"

	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// shiftHandler moves a shifting blue/green deployment's traffic to the
// weight of its new step.
type shiftHandler struct {
	r *executor
	a engine.ShiftTraffic
}

func (h shiftHandler) inTx(ctx context.Context, tx store.Tx, st *stepTx) error {
	return h.r.setShiftWeights(ctx, tx, st.rec, h.a.Percent)
}

func (h shiftHandler) afterCommit(rec *Record) { h.r.pokeRouters(rec) }

// setShiftWeights records, in the step's transaction, the backend weights
// that give the deployment's replacements percent of the traffic: each
// replacement that takes traffic weighs percent, each original still in
// traffic 100-percent (so the split is exact for fleets of equal size,
// and proportional to the fleet sizes otherwise). At 100 the replacements
// get the weight an all-at-once reroute gives and the originals none, so
// the next deployment starts from ordinary weights. Backends of other
// deployments and instances not registered are left alone.
func (r *executor) setShiftWeights(ctx context.Context, tx store.Tx, rec *Record, percent int) error {
	known, _ := r.targetGroups(rec)
	green, blue := percent, 100-percent
	if percent >= 100 {
		green, blue = 1, 0
	}
	weights := map[string]int{}
	for _, in := range rec.Engine.Instances {
		switch {
		case in.Label == engine.Green && eventStarted(in, engine.AllowTraffic):
			weights[in.Name] = green
		case in.Label == engine.Blue && !eventStarted(in, engine.BlockTraffic):
			weights[in.Name] = blue
		}
	}
	for _, tg := range known {
		bs, _, err := loadMembership(ctx, tx, tg)
		if err != nil {
			return err
		}
		changed := false
		for i, b := range bs {
			if w, ok := weights[b.ID]; ok && b.Weight != w {
				bs[i].Weight = min(w, traffic.MaxWeight)
				changed = true
			}
		}
		if !changed {
			continue
		}
		out, err := json.Marshal(bs)
		if err != nil {
			return err
		}
		if err := tx.Put(ctx, kindMember, tg, out); err != nil {
			return err
		}
	}
	return nil
}

// eventStarted reports whether in's event named ev ran or is running.
func eventStarted(in *engine.Instance, ev string) bool {
	for _, e := range in.Events {
		if e.Name == ev {
			return e.Status == engine.InProgress || e.Status == engine.Succeeded || e.Status == engine.Failed
		}
	}
	return false
}
