package engine

// inPlace installs on the group's own instances: one phase, every event
// (WITH_TRAFFIC_CONTROL wraps the install in Block/AllowTraffic).
type inPlace struct{}

func (inPlace) plan(d *Deployment, _, green []Instance, add func(Instance, string, []string)) {
	var evs []string
	if d.TrafficControl {
		evs = append(append(append(evs, blockEvents...), installEvents...), allowEvents...)
	} else {
		evs = installEvents
	}
	for _, in := range green {
		add(in, "", evs)
	}
}

func (inPlace) firstPhase() Phase { return PhaseInstall }
func (inPlace) begin(*stepper)    {}

func (inPlace) members(d *Deployment, p Phase) []*Instance {
	// Every instance installs, none does anything else. A copy here cost a
	// 1,000-host deployment a slice per call, several calls per step.
	if p == PhaseInstall {
		return d.Instances
	}
	return nil
}

func (inPlace) inPhase(_ *Instance, p Phase) bool  { return p == PhaseInstall }
func (inPlace) phaseEnd(in *Instance, _ Phase) int { return len(in.Events) }
func (inPlace) doneStatus(*Instance, Phase) string { return Succeeded }
func (inPlace) failedBeforeAllow(*Instance) bool   { return false }
func (inPlace) keepOnBlock(*Instance) bool         { return false }
func (inPlace) rerouted(*Deployment) bool          { return false }
func (inPlace) continueWait(*stepper, string) error {
	return &ErrNotApplicable{Reason: ReasonUnsupported}
}
func (inPlace) endPhase(s *stepper) {
	if !s.failUnhealthy(PhaseInstall) {
		s.finish(StatusSucceeded, "", "")
	}
}
