package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/lease"
	"github.com/cutoverhq/cutover/internal/model/awstime"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
)

func timeOf(t time.Time) *awstime.Time {
	if t.IsZero() {
		return nil
	}
	return &awstime.Time{Time: t}
}

// perform carries out committed decisions. Each is safe to repeat.
func (r *executor) perform(rec *Record, acts []engine.Action) {
	for _, a := range acts {
		r.handlerOf(a).afterCommit(rec)
	}
}

func teardownEvent(rec *Record, a engine.Terminate) TeardownEvent {
	return TeardownEvent{DeploymentID: rec.ID, ApplicationName: rec.ApplicationName, DeploymentGroup: rec.GroupName,
		Instances: a.Instances, Terminate: a.Stop, Account: rec.Account, Region: rec.Region}
}

// teardown calls the operator's teardown hook for retired originals until
// it succeeds. The pending call is recorded in the commit that retired them
// and removed, with its lease, once done; a crash in between repeats it on
// whichever replica takes the lease next.
func (r *executor) teardown(ev TeardownEvent, l lease.Lease) {
	defer func() {
		r.mu.Lock()
		delete(r.tearing, ev.DeploymentID)
		r.mu.Unlock()
	}()
	for attempt := 0; ; attempt++ {
		err := error(nil)
		if r.cfg.Teardown != nil {
			err = r.cfg.Teardown(r.ctx, ev)
		}
		if err == nil {
			err = r.cfg.Store.Update(r.ctx, func(tx store.Tx) error {
				if err := r.leases.Drop(r.ctx, tx, l); err != nil {
					return err
				}
				_, err := tx.Delete(r.ctx, kindTeardown, ev.DeploymentID)
				return err
			})
			if err == nil || errors.Is(err, lease.ErrLost) {
				return
			}
		}
		r.log.Warn("teardown hook failed; retrying", "deployment", ev.DeploymentID, "instances", ev.Instances, "attempt", attempt+1, "err", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*5*time.Second, time.Minute)):
		}
		if err := r.leases.Renew(r.ctx, l); err != nil {
			return // another replica took it over, or will
		}
	}
}

// targetGroups returns the configured target groups a deployment's load
// balancer info names, and the names that are not configured.
func (r *executor) targetGroups(rec *Record) (known, unknown []string) {
	lb := rec.LoadBalancerInfo
	if lb == nil {
		return nil, nil
	}
	var names []string
	for _, t := range lb.TargetGroupInfoList {
		names = append(names, deref(t.Name))
	}
	for _, e := range lb.ElbInfoList {
		names = append(names, deref(e.Name))
	}
	for _, n := range names {
		// Another account's target group is as good as unknown: its
		// membership is never touched (groups stored before ownership).
		if tg, ok := r.cfg.TargetGroups[n]; ok && r.cfg.Traffic != nil && tg.OwnedBy(rec.Account, rec.Region) {
			known = append(known, n)
		} else {
			unknown = append(unknown, n)
		}
	}
	return known, unknown
}

// membershipChange is what a traffic decision does to an instance.
type membershipChange int

const (
	weightRemove  membershipChange = iota // deregister
	weightServe                           // registered, taking traffic
	weightDrain                           // registered, no new traffic, still health-checked
	weightPrewarm                         // registered without traffic unless already registered
)

// setMembership records the desired membership change in the transaction
// that also records the traffic event, so it survives a crash.
func (r *executor) setMembership(ctx context.Context, tx store.Tx, rec *Record, instance string, w membershipChange) error {
	known, _ := r.targetGroups(rec)
	if len(known) == 0 {
		return nil
	}
	weight := 0
	if w == weightServe {
		weight = 1
	}
	var addr string
	if w != weightRemove {
		inst, err := api.LoadInstance(ctx, tx, rec.Account, rec.Region, instance)
		if err != nil {
			return fmt.Errorf("instance %s: %w", instance, err)
		}
		if addr, err = hostAddress(ctx, tx, inst); err != nil {
			return err
		}
	}
	for _, tg := range known {
		var bs []traffic.Backend
		if b, err := tx.Get(ctx, kindMember, tg); err == nil {
			if err := json.Unmarshal(b, &bs); err != nil {
				return err
			}
		} else if !isNotFound(err) {
			return err
		}
		if w == weightPrewarm && slices.ContainsFunc(bs, func(b traffic.Backend) bool { return b.ID == instance }) {
			continue // already registered: never take traffic away
		}
		bs = slices.DeleteFunc(bs, func(b traffic.Backend) bool { return b.ID == instance })
		if w != weightRemove && addr != "" {
			bs = append(bs, traffic.Backend{ID: instance, Addr: backendAddr(addr, r.cfg.TargetGroups[tg].Port), Weight: weight})
			sort.Slice(bs, func(i, j int) bool { return bs[i].ID < bs[j].ID })
		}
		b, err := json.Marshal(bs)
		if err != nil {
			return err
		}
		if err := tx.Put(ctx, kindMember, tg, b); err != nil {
			return err
		}
	}
	return nil
}

// AddressTag is the instance tag that names the host's traffic address
// (host, or host:port to override the target group's port).
const AddressTag = "cutover:address"

// hostAddress is where a host receives traffic: its cutover:address tag,
// else the address its agent last polled from ("" when neither is known).
func hostAddress(ctx context.Context, tx store.Tx, inst *cd.InstanceInfo) (string, error) {
	for _, t := range inst.Tags {
		if deref(t.Key) == AddressTag && deref(t.Value) != "" {
			return deref(t.Value), nil
		}
	}
	host := deref(inst.IamUserArn)
	if host == "" {
		host = deref(inst.IamSessionArn)
	}
	b, err := tx.Get(ctx, kindHostAddr, host)
	if isNotFound(err) {
		return "", nil
	}
	return string(b), err
}

// dropPrewarmed removes the deployment's instances that were registered
// without traffic and never given any (a stopped or failed blue/green).
func (r *executor) dropPrewarmed(ctx context.Context, tx store.Tx, rec *Record) error {
	known, _ := r.targetGroups(rec)
	if rec.Engine.Kind != engine.KindBlueGreen {
		return nil
	}
	// Only replacements are prewarmed; originals without traffic are kept
	// on purpose until they leave the fleet (a rollback needs them).
	names := map[string]bool{}
	for _, in := range rec.Engine.Instances {
		if in.Label == engine.Green {
			names[in.Name] = true
		}
	}
	for _, tg := range known {
		b, err := tx.Get(ctx, kindMember, tg)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		var bs []traffic.Backend
		if err := json.Unmarshal(b, &bs); err != nil {
			return err
		}
		n := len(bs)
		bs = slices.DeleteFunc(bs, func(b traffic.Backend) bool { return b.Weight == 0 && names[b.ID] })
		if len(bs) == n {
			continue
		}
		if b, err = json.Marshal(bs); err != nil {
			return err
		}
		if err := tx.Put(ctx, kindMember, tg, b); err != nil {
			return err
		}
	}
	return nil
}

// applyTraffic waits until the routers of the deployment's target groups
// serve the desired membership the commit recorded, and reports the
// event's outcome to the engine.
func (r *executor) applyTraffic(id string, a engine.Traffic) {
	rec, ok := r.snapshot(id)
	for !ok {
		// A failed commit answers no snapshot; the deployment may still be
		// live. Try again rather than leave the event without a result.
		r.mu.Lock()
		_, live := r.lives[id]
		r.mu.Unlock()
		if !live || r.ctx.Err() != nil {
			return // the replica taking it over redoes the event
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(time.Second):
		}
		rec, ok = r.snapshot(id)
	}
	known, unknown := r.targetGroups(rec)
	diag := engine.Diagnostics{ErrorCode: "Success", Message: "Succeeded"}
	succeeded := true
	verb := "registered with"
	if !a.Allow {
		verb = "deregistered from"
	}
	switch {
	case len(known) == 0:
		diag.Message = fmt.Sprintf("No traffic router is configured for this deployment group's load balancer info %v; %s was a no-op.", unknown, a.Command.Event)
	default:
		ctx, cancel := context.WithTimeout(r.ctx, trafficTimeout)
		defer cancel()
		err := r.checkAddressKnown(ctx, known, a)
		for _, tg := range known {
			if err != nil {
				break
			}
			if err = r.recon.sync(ctx, tg); err != nil {
				err = fmt.Errorf("target group %s: %w", tg, err)
			}
		}
		if r.ctx.Err() != nil {
			return // shutting down: the next owner redoes the event
		}
		if err != nil {
			succeeded = false
			diag = engine.Diagnostics{ErrorCode: "UnknownError", Message: fmt.Sprintf("Instance %s could not be %s target groups %v: %v", a.Instance, verb, known, err)}
		} else if len(unknown) > 0 {
			// Success keeps AWS's wire strings unless part of it was a no-op.
			diag.Message = fmt.Sprintf("Succeeded; target groups %v are not configured on this server (no-op there)", unknown)
		}
	}
	r.sendRetrying(id, engine.Completed{CommandID: a.Command.ID, Succeeded: succeeded, Diagnostics: diag})
}

// trafficTimeout bounds one traffic event's wait for the routers.
const trafficTimeout = 5 * time.Minute

// checkAddressKnown fails an AllowTraffic whose instance is missing from
// the desired membership: the commit leaves out an instance whose traffic
// address is unknown (no cutover:address tag, and its agent never polled).
// Reporting Success there would leave it out of traffic silently.
func (r *executor) checkAddressKnown(ctx context.Context, tgs []string, a engine.Traffic) error {
	if !a.Allow {
		return nil
	}
	return r.cfg.Store.View(ctx, func(tx store.Tx) error {
		for _, tg := range tgs {
			bs, _, err := loadMembership(ctx, tx, tg)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(bs, func(b traffic.Backend) bool { return b.ID == a.Instance }) {
				return fmt.Errorf("the traffic address of instance %s is unknown: give the instance a %s tag, or start its agent so that the address it polls from is recorded", a.Instance, AddressTag)
			}
		}
		return nil
	})
}

// loadMembership reads a target group's desired membership and the hash
// of its stored form ("" when none is stored).
func loadMembership(ctx context.Context, tx store.Tx, tg string) ([]traffic.Backend, string, error) {
	b, err := tx.Get(ctx, kindMember, tg)
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	var bs []traffic.Backend
	if err := json.Unmarshal(b, &bs); err != nil {
		return nil, "", fmt.Errorf("membership of %s: %w", tg, err)
	}
	sum := sha256.Sum256(b)
	return bs, hex.EncodeToString(sum[:]), nil
}

func isNotFound(err error) bool {
	return err == store.ErrNotFound || strings.Contains(fmt.Sprint(err), store.ErrNotFound.Error())
}

// fleetKey keys a group's fleet by the group's ID, which survives renames
// of the group and its application.
func fleetKey(rec *Record) string { return fleetKeyOf(rec.Account, rec.Region, rec.GroupID) }

// LoadFleet returns a group's explicit fleet (empty when tag-selected).
func LoadFleet(ctx context.Context, tx store.Tx, key string) (Fleet, error) {
	var f Fleet
	b, err := tx.Get(ctx, kindFleet, key)
	if isNotFound(err) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

// retireFromFleet makes a successful blue/green's replacement instances the
// group's fleet and retires the originals.
func retireFromFleet(ctx context.Context, tx store.Tx, rec *Record, originals []string) error {
	f, err := LoadFleet(ctx, tx, fleetKey(rec))
	if err != nil {
		return err
	}
	var green []string
	for _, in := range rec.Engine.Instances {
		if in.Label == engine.Green && in.Status == engine.Succeeded {
			green = append(green, in.Name)
		}
	}
	f.Members = green
	for _, o := range originals {
		if !slices.Contains(f.Retired, o) && !slices.Contains(green, o) {
			f.Retired = append(f.Retired, o)
		}
	}
	f.Retired = slices.DeleteFunc(f.Retired, func(n string) bool { return slices.Contains(green, n) })
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return tx.Put(ctx, kindFleet, fleetKey(rec), b)
}

// recordInstanceRevisions remembers, per group and instance, the revision
// each instance last deployed successfully (updateOutdatedInstancesOnly).
func (r *executor) recordInstanceRevisions(ctx context.Context, tx store.Tx, rec *Record) error {
	if !engine.Terminal(rec.Engine.Status) || rec.Engine.Kind.IsReroute() {
		return nil
	}
	key := api.RevisionKey(&rec.Revision)
	for _, in := range rec.Engine.Instances {
		if in.Status != engine.Succeeded || in.Label == engine.Blue {
			continue
		}
		if err := tx.Put(ctx, kindInstRev, api.ScopeKey(rec.Account, rec.Region)+rec.GroupID+"/"+in.Name, []byte(key)); err != nil {
			return err
		}
	}
	return nil
}

// hostOf returns the host part of a remote address.
func hostOf(remote string) string {
	h, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return h
}

// backendAddr joins a host with the target group's port unless the address
// already names one.
func backendAddr(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, fmt.Sprint(port))
}
