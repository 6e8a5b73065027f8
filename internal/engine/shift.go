package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Traffic routing types of a deployment configuration's trafficRoutingConfig.
const (
	ShiftCanary = "TimeBasedCanary"
	ShiftLinear = "TimeBasedLinear"
)

// Shift is the weighted traffic shifting of a blue/green deployment whose
// configuration is TimeBasedCanary or TimeBasedLinear (an extension beyond
// AWS, which shifts only Lambda and ECS traffic). Every step is stored, so
// a replica that takes the deployment over resumes at the same weight.
type Shift struct {
	Type            string `json:"type"`            // ShiftCanary | ShiftLinear
	Percentage      int    `json:"percentage"`      // canaryPercentage | linearPercentage, 1..99
	IntervalMinutes int    `json:"intervalMinutes"` // canaryInterval | linearInterval, >= 1
	// Weight is the share of traffic, in percent, on the replacements.
	Weight int `json:"weight"`
	// Due is when the current step ends (zero until the shift started).
	Due time.Time `json:"due,omitzero"`
}

// next is the weight after the current step.
func (sh *Shift) next() int {
	if sh.Type == ShiftCanary {
		return 100
	}
	return min(100, sh.Weight+sh.Percentage)
}

// ShiftTraffic asks the traffic layer to give the deployment's
// replacements (Green) Percent of the traffic and its originals (Blue)
// the rest. It is desired state: repeating it changes nothing.
type ShiftTraffic struct{ Percent int }

// ShiftMessage is the deployment status message of a shift at weight w.
func ShiftMessage(w int) string {
	return fmt.Sprintf(shiftPrefix+"%d%% of traffic on the replacement instances", w)
}

// shiftMessage shows weight w in the status messages, in place of the
// previous step's: a 1 % linear shift must not leave a hundred messages.
func (s *stepper) shiftMessage(w int) {
	s.d.StatusMessages = slices.DeleteFunc(s.d.StatusMessages, func(m string) bool { return strings.HasPrefix(m, shiftPrefix) })
	s.message(ShiftMessage(w))
}

const shiftPrefix = "Traffic shifting: "

// beginShift follows the reroute of a shifting deployment: the
// replacements serve the first step's weight until its interval ends.
func (s *stepper) beginShift() {
	d := s.d
	d.Phase = PhaseShift
	d.Shift.Due = s.now.Add(time.Duration(d.Shift.IntervalMinutes) * s.cfg.Minute)
	s.shiftMessage(d.Shift.Weight)
}

// shiftTo moves the shift to weight w; at 100 the originals leave traffic
// as after an all-at-once reroute.
func (s *stepper) shiftTo(w int) {
	d := s.d
	d.Shift.Weight = w
	s.emit(ShiftTraffic{Percent: w})
	s.shiftMessage(w)
	if w >= 100 {
		d.Shift.Due = time.Time{}
		d.Phase = PhaseBlock
		s.message("Traffic rerouted to the replacement instances; removing the original instances from traffic")
		return
	}
	d.Shift.Due = s.now.Add(time.Duration(d.Shift.IntervalMinutes) * s.cfg.Minute)
}

// shiftTick ends the current step when its interval ran out.
func (s *stepper) shiftTick() {
	d := s.d
	if d.Phase != PhaseShift || d.Shift == nil || d.Stopping || d.Shift.Due.IsZero() || s.now.Before(d.Shift.Due) {
		return
	}
	s.shiftTo(d.Shift.next())
}

// shiftBack returns all traffic to the originals at once: a stop with
// rollback during a shift does not wait for the rollback deployment.
func (s *stepper) shiftBack() {
	d := s.d
	if d.Phase != PhaseShift || d.Shift == nil || !d.StopRollback || d.Shift.Weight == 0 {
		return
	}
	d.Shift.Weight = 0
	d.Shift.Due = time.Time{}
	s.emit(ShiftTraffic{Percent: 0})
	s.shiftMessage(0)
}
