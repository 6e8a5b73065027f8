package engine

// Kind names a deployment's strategy; it is stored with the deployment
// and picks the strategy value that Step consults (as raft picks its step
// function from the node's role). A new strategy is a Kind, a file
// implementing strategy, and its case in strategyOf.
type Kind string

// Deployment kinds.
const (
	// KindInPlace installs the revision on the group's instances, in
	// batches the minimum-healthy rule allows.
	KindInPlace Kind = "inPlace"
	// KindBlueGreen installs on replacement instances, reroutes traffic
	// to them and retires the originals.
	KindBlueGreen Kind = "blueGreen"
	// KindReroute is the rollback of a blue/green deployment: traffic
	// goes back to the originals, which are still running; nothing is
	// reinstalled.
	KindReroute Kind = "blueGreenRollback"
)

// IsBlueGreen reports whether deployments of kind k have original and
// replacement fleets (the API's BLUE_GREEN deployment type).
func (k Kind) IsBlueGreen() bool { return k == KindBlueGreen || k == KindReroute }

// IsReroute reports whether deployments of kind k only move traffic back
// to instances that already run the revision (no instance is installed).
func (k Kind) IsReroute() bool { return k == KindReroute }

// strategy is what differs between deployment kinds. The stepper does the
// rest: commands, timeouts, stops, the minimum-healthy rule.
type strategy interface {
	// plan adds the targets with the lifecycle events each runs.
	plan(d *Deployment, blue, green []Instance, add func(in Instance, label string, events []string))
	// firstPhase is the phase whose instances are the deployment's
	// targets (the minimum-healthy rule is computed over them).
	firstPhase() Phase
	// begin is called once the deployment started.
	begin(s *stepper)
	// members are the instances taking part in a phase; the result may
	// be the deployment's own slice (callers only read it).
	members(d *Deployment, p Phase) []*Instance
	// inPhase reports whether an instance takes part in a phase.
	inPhase(in *Instance, p Phase) bool
	// phaseEnd is the index after the last event in runs in phase p.
	phaseEnd(in *Instance, p Phase) int
	// doneStatus is the status of an instance that ran phase p's events.
	doneStatus(in *Instance, p Phase) string
	// failedBeforeAllow reports whether in failed before the reroute and
	// so does not count in it.
	failedBeforeAllow(in *Instance) bool
	// keepOnBlock reports whether a BlockTraffic leaves in registered
	// without traffic rather than removing it.
	keepOnBlock(in *Instance) bool
	// endPhase decides what follows the current phase, now complete.
	endPhase(s *stepper)
	// continueWait is ContinueDeployment with the wait type.
	continueWait(s *stepper, waitType string) error
	// rerouted reports whether traffic is already on the replacements
	// (a stop then hands them the fleet).
	rerouted(d *Deployment) bool
}

// strategyOf returns the strategy of a kind. The values carry no state:
// everything lives in the Deployment, so any replica can resume it.
func strategyOf(k Kind) strategy {
	switch k {
	case KindBlueGreen:
		return blueGreen{}
	case KindReroute:
		return reroute{}
	default:
		return inPlace{}
	}
}
