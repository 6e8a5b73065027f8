package engine

import (
	"fmt"
	"time"
)

// blueGreen installs the revision on replacement (Green) instances, waits
// for ContinueDeployment if asked to, reroutes traffic to them in batches,
// takes the originals (Blue) out of traffic and retires them.
type blueGreen struct{}

func (blueGreen) plan(_ *Deployment, blue, green []Instance, add func(Instance, string, []string)) {
	for _, in := range green {
		add(in, Green, append(append([]string{}, installEvents...), allowEvents...))
	}
	for _, in := range blue {
		add(in, Blue, blockEvents)
	}
}

func (blueGreen) firstPhase() Phase { return PhaseInstall }
func (blueGreen) begin(*stepper)    {}

func (st blueGreen) members(d *Deployment, p Phase) []*Instance { return filterPhase(st, d, p) }

func (blueGreen) inPhase(in *Instance, p Phase) bool {
	switch p {
	case PhaseInstall, PhaseAllow:
		return in.Label == Green
	case PhaseBlock, PhaseTerminate:
		return in.Label == Blue
	}
	return false
}

func (blueGreen) phaseEnd(in *Instance, p Phase) int {
	if in.Label == Green && p == PhaseInstall {
		return len(installEvents)
	}
	return len(in.Events)
}

func (blueGreen) doneStatus(in *Instance, p Phase) string {
	if in.Label == Green && p == PhaseInstall {
		return Ready // installed; it waits for its traffic events
	}
	return Succeeded
}

// failedBeforeAllow: a replacement that failed its install events never
// takes part in the reroute.
func (blueGreen) failedBeforeAllow(in *Instance) bool {
	if in.Label != Green || in.Status != Failed {
		return false
	}
	i := len(installEvents)
	return i < len(in.Events) && in.Events[i].Status == Skipped
}

// keepOnBlock: originals keep running their old revision, registered
// without traffic, so that a rollback can route back to them at once.
func (blueGreen) keepOnBlock(in *Instance) bool { return in.Label == Blue }

func (blueGreen) rerouted(d *Deployment) bool {
	return d.Phase == PhaseBlock || d.Phase == PhaseTermination
}

func (blueGreen) continueWait(s *stepper, waitType string) error {
	return continueBlueGreen(s, waitType)
}

// continueBlueGreen is ContinueDeployment for the kinds with waits.
func continueBlueGreen(s *stepper, waitType string) error {
	d := s.d
	switch waitType {
	case "", "READY_WAIT":
		if d.Phase == PhaseShift && !d.Stopping {
			// A better obvious behaviour than AWS's error: the user
			// promotes the replacements to all the traffic now.
			s.message("Traffic shifting was completed by ContinueDeployment")
			s.shiftTo(100)
			return nil
		}
		if d.Status != StatusReady || d.Phase != PhaseReadyWait {
			return &ErrNotApplicable{Reason: ReasonNotReady}
		}
		s.message("Traffic rerouting was started by ContinueDeployment")
		s.enterAllow()
	case "TERMINATION_WAIT":
		if d.Phase != PhaseTermination {
			if d.Phase == PhaseInstall || d.Phase == PhaseReadyWait || d.Phase == PhaseShift {
				return &ErrNotApplicable{Reason: ReasonNotReady}
			}
			return &ErrNotApplicable{Reason: ReasonNoTerminationWait}
		}
		s.message("The termination wait was ended by ContinueDeployment")
		s.beginTerminate()
	default:
		return &ErrNotApplicable{Reason: ReasonBadWaitType}
	}
	return nil
}

func (blueGreen) endPhase(s *stepper) {
	d := s.d
	switch d.Phase {
	case PhaseInstall:
		if s.failUnhealthy(PhaseInstall) {
			return
		}
		var ready []string
		for _, in := range s.phaseInstances(PhaseInstall) {
			if in.Status == Ready {
				ready = append(ready, in.Name)
			}
		}
		s.emit(Prewarm{Instances: ready})
		if d.ReadyAction == "STOP_DEPLOYMENT" {
			d.Phase = PhaseReadyWait
			d.Status = StatusReady
			d.ReadyDeadline = s.now.Add(time.Duration(d.ReadyWaitMinutes) * s.cfg.Minute)
			s.message("Replacement instances are ready; waiting for ContinueDeployment to reroute traffic")
			return
		}
		s.enterAllow()
	case PhaseAllow:
		if s.failUnhealthy(PhaseAllow) {
			return
		}
		if d.Shift != nil && d.Shift.Weight < 100 {
			s.beginShift()
			return
		}
		d.Phase = PhaseBlock
		s.message("Traffic rerouted to the replacement instances; removing the original instances from traffic")
	case PhaseBlock:
		if s.failedToBlock() {
			return
		}
		if len(s.phaseInstances(PhaseBlock)) == 0 {
			// No originals to retire, but the replacements still become
			// the group's fleet.
			s.emit(Terminate{})
			s.finish(StatusSucceeded, "", "")
			return
		}
		if d.TerminateAction == "TERMINATE" {
			d.Phase = PhaseTermination
			d.TerminationWaitOn = true
			d.TerminationStart = s.now
			d.TerminationDue = s.now.Add(time.Duration(d.TerminationWaitMinutes) * s.cfg.Minute)
			s.message("Waiting before terminating the original instances")
			return
		}
		// KEEP_ALIVE: the originals stay up but leave the fleet.
		var names []string
		for _, in := range s.phaseInstances(PhaseBlock) {
			in.Retired = true
			in.LastUpdated = s.now
			names = append(names, in.Name)
		}
		s.emit(Terminate{Instances: names, Stop: false})
		s.finish(StatusSucceeded, "", "")
	case PhaseTerminate:
		var names []string
		for _, in := range s.phaseInstances(PhaseTerminate) {
			in.Retired = true
			in.LastUpdated = s.now
			names = append(names, in.Name)
			if in.Status == Failed {
				s.message(fmt.Sprintf("ApplicationStop failed on original instance %s while terminating it", in.Name))
			}
		}
		s.emit(Terminate{Instances: names, Stop: true})
		s.finish(StatusSucceeded, "", "")
	}
}

// failedToBlock fails the deployment if an instance of the block phase
// could not leave traffic: AWS fails the whole deployment then.
func (s *stepper) failedToBlock() bool {
	for _, in := range s.phaseInstances(PhaseBlock) {
		if in.Status == Failed {
			s.finish(StatusFailed, CodeHealthConstraints, "The deployment failed because an original instance could not be removed from traffic.")
			return true
		}
	}
	return false
}

// reroute is a blue/green rollback: the originals (Blue), still running
// the old revision, get traffic back and the replacements (Green) lose it.
type reroute struct{}

func (reroute) plan(_ *Deployment, blue, green []Instance, add func(Instance, string, []string)) {
	for _, in := range blue {
		add(in, Blue, allowEvents)
	}
	for _, in := range green {
		add(in, Green, blockEvents)
	}
}

func (reroute) firstPhase() Phase { return PhaseAllow }

func (reroute) begin(s *stepper) {
	s.d.Phase = PhaseAllow
	s.message("Rerouting traffic back to the original instances")
}

func (st reroute) members(d *Deployment, p Phase) []*Instance { return filterPhase(st, d, p) }

func (reroute) inPhase(in *Instance, p Phase) bool {
	switch p {
	case PhaseAllow:
		return in.Label == Blue
	case PhaseBlock, PhaseTerminate:
		return in.Label == Green
	}
	return false
}

func (reroute) phaseEnd(in *Instance, _ Phase) int { return len(in.Events) }
func (reroute) doneStatus(*Instance, Phase) string { return Succeeded }
func (reroute) failedBeforeAllow(*Instance) bool   { return false }
func (reroute) keepOnBlock(*Instance) bool         { return false }
func (reroute) rerouted(*Deployment) bool          { return false }

func (reroute) continueWait(s *stepper, waitType string) error { return continueBlueGreen(s, waitType) }

func (reroute) endPhase(s *stepper) {
	d := s.d
	switch d.Phase {
	case PhaseAllow:
		if s.failUnhealthy(PhaseAllow) {
			return
		}
		d.Phase = PhaseBlock
		s.message("Traffic is back on the original instances; removing the replacement instances from traffic")
	case PhaseBlock:
		if !s.failedToBlock() {
			s.finish(StatusSucceeded, "", "")
		}
	}
}
