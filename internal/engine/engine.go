// Package engine is the deployment state machine: events in, decisions out.
//
// Step never performs I/O and never reads the clock: the caller passes the
// time, persists the resulting state (one transaction) and then carries out
// the returned actions. Every action is idempotent with respect to the
// persisted state (a command is identified by its ID, traffic is desired
// state), so a crash between commit and execution only repeats an action.
package engine

import (
	"fmt"
	"time"
)

// Status is a deployment's status (DeploymentStatus).
type Status string

// Deployment statuses.
const (
	StatusCreated    Status = "Created"
	StatusQueued     Status = "Queued"
	StatusInProgress Status = "InProgress"
	StatusReady      Status = "Ready"
	StatusSucceeded  Status = "Succeeded"
	StatusFailed     Status = "Failed"
	StatusStopped    Status = "Stopped"
)

// Instance and lifecycle event statuses.
const (
	Pending    = "Pending"
	InProgress = "InProgress"
	Succeeded  = "Succeeded"
	Failed     = "Failed"
	Skipped    = "Skipped"
	Ready      = "Ready"
)

// Labels of blue/green targets.
const (
	Blue  = "Blue"
	Green = "Green"
)

// Error codes (ErrorCode) the engine emits.
const (
	CodeNoInstances              = "NO_INSTANCES"
	CodeHealthConstraints        = "HEALTH_CONSTRAINTS"
	CodeHealthConstraintsInvalid = "HEALTH_CONSTRAINTS_INVALID"
	CodeManualStop               = "MANUAL_STOP"
	CodeTimeout                  = "TIMEOUT"
	CodeInternal                 = "INTERNAL_ERROR"
	CodeAlarmActive              = "ALARM_ACTIVE"
)

// MsgHealthConstraints is AWS's wire string for HEALTH_CONSTRAINTS.
const MsgHealthConstraints = "The overall deployment failed because too many individual instances failed deployment, too few healthy instances are available for deployment, or some instances in your deployment group are experiencing problems."

// MsgAgentNotReceived is AWS's wire string for an event no agent picked up.
const MsgAgentNotReceived = "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy agent logs on your host and make sure the agent is running and can connect to the CodeDeploy server."

// Event names.
const (
	BeforeBlockTraffic = "BeforeBlockTraffic"
	BlockTraffic       = "BlockTraffic"
	AfterBlockTraffic  = "AfterBlockTraffic"
	ApplicationStop    = "ApplicationStop"
	DownloadBundle     = "DownloadBundle"
	BeforeInstall      = "BeforeInstall"
	Install            = "Install"
	AfterInstall       = "AfterInstall"
	ApplicationStart   = "ApplicationStart"
	ValidateService    = "ValidateService"
	BeforeAllowTraffic = "BeforeAllowTraffic"
	AllowTraffic       = "AllowTraffic"
	AfterAllowTraffic  = "AfterAllowTraffic"
)

var (
	blockEvents   = []string{BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic}
	installEvents = []string{ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService}
	allowEvents   = []string{BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic}
)

// IsTrafficEvent reports whether the service, not the agent, performs ev.
func IsTrafficEvent(ev string) bool { return ev == BlockTraffic || ev == AllowTraffic }

// stopForgivable lists the events ignoreApplicationStopFailures forgives.
func stopForgivable(ev string) bool {
	return ev == ApplicationStop || ev == BeforeBlockTraffic || ev == AfterBlockTraffic
}

// Minimum healthy host types.
const (
	HostCount       = "HOST_COUNT"
	FleetPercent    = "FLEET_PERCENT"
	MostConcurrency = "MOST_CONCURRENCY" // CodeDeployDefault.OneAtATime
)

// MinHealthy is a deployment configuration's minimumHealthyHosts.
type MinHealthy struct {
	Type  string
	Value int
}

// Minimum returns M, the number of instances that must stay healthy, for a
// deployment to n instances.
func (m MinHealthy) Minimum(n int) int {
	switch m.Type {
	case HostCount:
		return m.Value
	case FleetPercent:
		return (n*m.Value + 99) / 100
	default: // MOST_CONCURRENCY: one at a time
		if n == 0 {
			return 0
		}
		return n - 1
	}
}

// Phase is where a deployment is in its strategy's sequence. The values
// are stored and shown by the dashboard and `cutover watch`.
type Phase string

// Phases of a deployment.
const (
	PhaseInstall     Phase = "install"     // in-place: the whole event list; blue/green: green install events
	PhaseReadyWait   Phase = "ready"       // blue/green: waiting for ContinueDeployment(READY_WAIT)
	PhaseAllow       Phase = "allow"       // blue/green: green (rollback: blue) instances get traffic
	PhaseShift       Phase = "shift"       // blue/green with Shift: green serves Shift.Weight percent
	PhaseBlock       Phase = "block"       // blue/green: blue (rollback: green) instances lose traffic
	PhaseTermination Phase = "termination" // blue/green: TERMINATE wait
	PhaseTerminate   Phase = "terminate"   // blue/green: stopping the blue application
	PhaseDone        Phase = "done"
)

// Diagnostics of a lifecycle event.
type Diagnostics struct {
	ErrorCode  string `json:"errorCode"`
	ScriptName string `json:"scriptName"`
	Message    string `json:"message"`
	LogTail    string `json:"logTail"`
}

// LifecycleEvent is one event on one instance.
type LifecycleEvent struct {
	Name        string       `json:"name"`
	Status      string       `json:"status"`
	Start       time.Time    `json:"start,omitzero"`
	End         time.Time    `json:"end,omitzero"`
	Diagnostics *Diagnostics `json:"diagnostics,omitempty"`
}

// Command is an event handed to a host (or to the traffic layer).
type Command struct {
	ID         string    `json:"id"`
	Event      string    `json:"event"`
	Index      int       `json:"index"`
	Dispatched time.Time `json:"dispatched"`
	Acked      time.Time `json:"acked,omitzero"`
}

// Instance is one target of a deployment.
type Instance struct {
	Name        string           `json:"name"`
	HostID      string           `json:"hostId"`
	Label       string           `json:"label,omitempty"`
	Status      string           `json:"status"`
	Events      []LifecycleEvent `json:"events"`
	Cmd         *Command         `json:"cmd,omitempty"`
	LastUpdated time.Time        `json:"lastUpdated"`
	// Retired is set on blue instances once they left the fleet.
	Retired bool `json:"retired,omitempty"`
}

// Deployment is the engine's state of one deployment.
type Deployment struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Phase  Phase  `json:"phase"`
	// Kind picks the strategy that drives the deployment (strategy.go).
	// Records stored before it existed carry the booleans blueGreen and
	// rollback instead; UnmarshalJSON maps them (legacy.go).
	Kind Kind `json:"kind"`
	// TrafficControl, for in-place, wraps each instance's install in
	// BlockTraffic and AllowTraffic (WITH_TRAFFIC_CONTROL).
	TrafficControl                bool       `json:"trafficControl,omitempty"`
	MinHealthy                    MinHealthy `json:"minHealthy"`
	IgnoreApplicationStopFailures bool       `json:"ignoreApplicationStopFailures,omitempty"`
	ReadyAction                   string     `json:"readyAction,omitempty"` // CONTINUE_DEPLOYMENT | STOP_DEPLOYMENT
	ReadyWaitMinutes              int        `json:"readyWaitMinutes,omitempty"`
	TerminateAction               string     `json:"terminateAction,omitempty"` // TERMINATE | KEEP_ALIVE
	TerminationWaitMinutes        int        `json:"terminationWaitMinutes,omitempty"`
	RollbackOnFailure             bool       `json:"rollbackOnFailure,omitempty"`
	RollbackOnStop                bool       `json:"rollbackOnStop,omitempty"`
	// Shift, on a blue/green deployment, replaces the all-at-once reroute
	// with weighted steps (shift.go).
	Shift *Shift `json:"shift,omitempty"`

	// Instances are the targets. Every change Step makes to an instance
	// sets its LastUpdated to the step's time: the runner persists only
	// the instances changed by a step.
	Instances []*Instance `json:"instances"`

	M                 int       `json:"m"`
	ErrorCode         string    `json:"errorCode,omitempty"`
	ErrorMessage      string    `json:"errorMessage,omitempty"`
	Stopping          bool      `json:"stopping,omitempty"`
	StopRollback      bool      `json:"stopRollback,omitempty"`
	ReadyDeadline     time.Time `json:"readyDeadline,omitzero"`
	TerminationStart  time.Time `json:"terminationStart,omitzero"`
	TerminationDue    time.Time `json:"terminationDue,omitzero"`
	TerminationWaitOn bool      `json:"terminationWaitStarted,omitempty"`
	StatusMessages    []string  `json:"statusMessages,omitempty"`
	Created           time.Time `json:"created"`
	Started           time.Time `json:"started,omitzero"`
	Completed         time.Time `json:"completed,omitzero"`
	Seq               int64     `json:"seq"`
	// RollbackWanted is set when the deployment ended in a way its rollback
	// configuration (or StopDeployment) asks to roll back.
	RollbackWanted bool `json:"rollbackWanted,omitempty"`
	// StartFailure is the failure decided at start, applied at its time
	// (Config.StartFailureDelay); nothing is dispatched meanwhile.
	StartFailure *StartFailure `json:"startFailure,omitempty"`
}

// StartFailure is a deployment's failure decided when it started.
type StartFailure struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Config holds the engine's time settings.
type Config struct {
	Minute        time.Duration // length of an API minute
	PickupTimeout time.Duration // an event not acknowledged by then fails
	EventTimeout  time.Duration // an acknowledged event not completed by then fails
	// StartFailureDelay keeps a deployment that cannot start (no
	// instances, impossible health constraints) InProgress this long
	// before it fails: AWS's pass through Created and InProgress first,
	// and clients that poll for a running deployment right after
	// CreateDeployment rely on it. Zero fails at once.
	StartFailureDelay time.Duration
}

// Event is an input of Step. The set is closed: only this package's event
// types implement it, so every caller's switch can be checked against it.
type Event interface{ isEvent() }

func (Start) isEvent()          {}
func (Tick) isEvent()           {}
func (Acked) isEvent()          {}
func (Completed) isEvent()      {}
func (Resumed) isEvent()        {}
func (Continue) isEvent()       {}
func (Stop) isEvent()           {}
func (AlarmStop) isEvent()      {}
func (JudgmentFailed) isEvent() {}

// Event kinds fed to Step.
type (
	// Start begins a created deployment.
	Start struct{}
	// Tick re-evaluates timers.
	Tick struct{}
	// Acked records that a host acknowledged a command.
	Acked struct{ CommandID string }
	// Completed records a command's result (from an agent or the traffic
	// layer). Duplicates and stale IDs are ignored.
	Completed struct {
		CommandID   string
		Succeeded   bool
		Diagnostics Diagnostics
	}
	// Resumed follows a server restart: commands handed out again restart
	// their pickup clock, so the server's downtime is not counted against
	// the agents.
	Resumed struct{}
	// Continue is ContinueDeployment.
	Continue struct{ WaitType string }
	// Stop is StopDeployment. Rollback nil follows the deployment's
	// autoRollbackConfiguration (DEPLOYMENT_STOP_ON_REQUEST).
	Stop struct{ Rollback *bool }
	// AlarmStop stops the deployment because an alarm fired (or its state
	// could not be read and the configuration does not ignore that).
	// Rollback follows autoRollbackConfiguration's
	// DEPLOYMENT_STOP_ON_ALARM, which the caller knows.
	AlarmStop struct {
		Message  string
		Rollback bool
	}
	// JudgmentFailed stops the deployment because the automatic canary
	// judgment found the replacements worse than the originals over a
	// traffic step's window. It stops as an alarm does (ALARM_ACTIVE, the
	// one error code the API has for a health signal); Rollback follows
	// DEPLOYMENT_STOP_ON_ALARM, which the caller knows. Reason is the
	// judgment's explanation, shown in the error message.
	JudgmentFailed struct {
		Reason   string
		Rollback bool
	}
)

// Action kinds returned by Step.
type (
	// Dispatch hands a command to a host's agent.
	Dispatch struct {
		Instance string
		HostID   string
		Command  Command
	}
	// Traffic asks the traffic layer to add (Allow) or remove an instance
	// and to report back with Completed{CommandID}.
	Traffic struct {
		Instance string
		Allow    bool
		// Keep, on a block, leaves the instance registered without traffic
		// (weight 0) instead of removing it: blue/green originals keep
		// running their old revision and stay health-checked, so a
		// rollback can route back to them at once. They are removed when
		// they leave the fleet.
		Keep bool
		// Percent, on an allow of a shifting deployment's replacement, is
		// the share of traffic (1..99) the replacements get; the originals
		// keep the rest. Zero is the all-at-once reroute.
		Percent int
		Command Command
	}
	// Terminate retires blue instances after a successful blue/green
	// deployment (Stop = the TERMINATE option: call the teardown hook).
	Terminate struct {
		Instances []string
		Stop      bool
	}
	// Finished reports the terminal status.
	Finished struct{ Status Status }
	// Prewarm asks the traffic layer to register installed replacement
	// instances without traffic (weight 0), so their health checks pass
	// before the reroute and AllowTraffic only has to give them weight.
	Prewarm struct{ Instances []string }
)

// ErrNotApplicable is returned by Step for events that do not apply in the
// current state; the API maps it to the right exception.
type ErrNotApplicable struct{ Reason Reason }

func (e *ErrNotApplicable) Error() string { return string(e.Reason) }

// Reason says why an event does not apply. The values travel between
// replicas in store replies, so they are stable strings.
type Reason string

// Reasons of ErrNotApplicable.
const (
	ReasonCompleted         Reason = "completed"           // the deployment already ended
	ReasonNotReady          Reason = "not-ready"           // ContinueDeployment before the wait it names
	ReasonNoTerminationWait Reason = "no-termination-wait" // TERMINATION_WAIT with no termination wait ahead
	ReasonUnsupported       Reason = "unsupported"         // the strategy has no such wait
	ReasonBadWaitType       Reason = "bad-wait-type"       // an unknown wait type
)

// Terminal reports whether status is final.
func Terminal(status Status) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusStopped
}

// NewDeployment builds the engine state for a deployment to targets.
// For blue/green, blue and green are the original and replacement fleets;
// for in-place, only green (the targets) is used.
func NewDeployment(d Deployment, blue, green []Instance, now time.Time) *Deployment {
	out := d
	out.Status = StatusCreated
	out.Created = now
	out.Phase = PhaseInstall
	if out.Kind == "" {
		out.Kind = KindInPlace
	}
	add := func(in Instance, label string, events []string) {
		inst := in
		inst.Label = label
		inst.Status = Pending
		inst.LastUpdated = now
		inst.Events = make([]LifecycleEvent, len(events))
		for i, e := range events {
			inst.Events[i] = LifecycleEvent{Name: e, Status: Pending}
		}
		out.Instances = append(out.Instances, &inst)
	}
	strategyOf(d.Kind).plan(&out, blue, green, add)
	return &out
}

// Step applies ev at time now and returns the actions to carry out.
func Step(d *Deployment, cfg Config, ev Event, now time.Time) ([]Action, error) {
	if Terminal(d.Status) {
		switch ev.(type) {
		case Tick, Acked, Completed, Resumed:
			return nil, nil
		}
		return nil, &ErrNotApplicable{Reason: ReasonCompleted}
	}
	s := &stepper{d: d, cfg: cfg, now: now, strat: strategyOf(d.Kind)}
	switch e := ev.(type) {
	case Start:
		if d.Status != StatusCreated && d.Status != StatusQueued {
			return nil, nil
		}
		s.start()
	case Tick:
		s.tick()
	case Acked:
		if in, c := s.findCmd(e.CommandID); c != nil && c.Acked.IsZero() {
			c.Acked = now
			in.LastUpdated = now
		}
	case Completed:
		s.completed(e)
	case Continue:
		if err := s.continueWait(e.WaitType); err != nil {
			return nil, err
		}
	case Stop:
		s.stop(e.Rollback)
	case AlarmStop:
		s.alarmStop(e)
	case JudgmentFailed:
		s.alarmStop(AlarmStop{Rollback: e.Rollback,
			Message: "The deployment was stopped because the automatic canary judgment failed: " + e.Reason})
	case Resumed:
		s.resumed()
	default:
		return nil, fmt.Errorf("engine: unknown event %T", ev)
	}
	s.advance()
	return s.actions, nil
}

// Action is one decision of Step. The set is closed: Dispatch, Traffic,
// Terminate, Finished, Prewarm and ShiftTraffic.
type Action interface{ isAction() }

func (Dispatch) isAction()     {}
func (Traffic) isAction()      {}
func (Terminate) isAction()    {}
func (Finished) isAction()     {}
func (Prewarm) isAction()      {}
func (ShiftTraffic) isAction() {}

type stepper struct {
	d       *Deployment
	cfg     Config
	now     time.Time
	strat   strategy // from d.Kind: what differs between strategies
	actions []Action
}

// resumed restarts the pickup clock of commands handed out again and asks
// again for the traffic changes in flight: the process that carried them
// out may be gone, and the traffic layer reports to no one else.
func (s *stepper) resumed() {
	for _, in := range s.d.Instances {
		c := in.Cmd
		if c == nil || !c.Acked.IsZero() {
			continue
		}
		c.Dispatched = s.now
		in.LastUpdated = s.now
		if IsTrafficEvent(c.Event) {
			s.emit(s.trafficAction(in, *c))
		}
	}
	if d := s.d; d.Phase == PhaseShift && d.Shift != nil {
		s.emit(ShiftTraffic{Percent: d.Shift.Weight})
	}
}

func (s *stepper) emit(a Action) { s.actions = append(s.actions, a) }

func (s *stepper) start() {
	d := s.d
	d.Status = StatusInProgress
	d.Started = s.now
	n := len(s.phaseInstances(s.strat.firstPhase()))
	if n == 0 {
		s.failStart(CodeNoInstances, "The deployment failed because no instances were found for your deployment group. Check your deployment group settings to make sure the tags for your instances correctly identify the instances you want to deploy to, and then try again.")
		return
	}
	d.M = d.MinHealthy.Minimum(n)
	if d.MinHealthy.Type != MostConcurrency && d.M >= n {
		s.failStart(CodeHealthConstraintsInvalid, fmt.Sprintf("The deployment failed because the minimum number of healthy instances (%d) is not less than the number of instances in the deployment (%d). Lower the minimum healthy hosts in the deployment configuration or add instances.", d.M, n))
		return
	}
	s.strat.begin(s)
}

// failStart fails a deployment that cannot start, after
// Config.StartFailureDelay (see there).
func (s *stepper) failStart(code, msg string) {
	if s.cfg.StartFailureDelay <= 0 {
		s.skipRemaining()
		s.finish(StatusFailed, code, msg)
		return
	}
	s.d.StartFailure = &StartFailure{Code: code, Message: msg, At: s.now.Add(s.cfg.StartFailureDelay)}
}

func (s *stepper) message(m string) { s.d.StatusMessages = append(s.d.StatusMessages, m) }

// phaseInstances are the instances taking part in a phase. The result may
// be the deployment's own slice: callers only read it.
func (s *stepper) phaseInstances(phase Phase) []*Instance {
	return s.strat.members(s.d, phase)
}

// filterPhase returns the instances of d the strategy puts in phase.
func filterPhase(st strategy, d *Deployment, phase Phase) []*Instance {
	var out []*Instance
	for _, in := range d.Instances {
		if st.inPhase(in, phase) {
			out = append(out, in)
		}
	}
	return out
}

func (s *stepper) inPhase(in *Instance, phase Phase) bool { return s.strat.inPhase(in, phase) }

func (s *stepper) findCmd(id string) (*Instance, *Command) {
	for _, in := range s.d.Instances {
		if in.Cmd != nil && in.Cmd.ID == id {
			return in, in.Cmd
		}
	}
	return nil, nil
}

func (s *stepper) completed(e Completed) {
	in, c := s.findCmd(e.CommandID)
	if c == nil {
		return // duplicate or stale: the first complete wins
	}
	ev := &in.Events[c.Index]
	in.Cmd = nil
	in.LastUpdated = s.now
	ev.End = s.now
	diag := e.Diagnostics
	ev.Diagnostics = &diag
	if e.Succeeded {
		ev.Status = Succeeded
		if diag.ErrorCode == "" {
			ev.Diagnostics = &Diagnostics{ErrorCode: "Success", Message: "Succeeded"}
		}
		return
	}
	ev.Status = Failed
	if s.d.IgnoreApplicationStopFailures && stopForgivable(ev.Name) {
		return // the instance goes on with the next event
	}
	s.failInstance(in)
}

// failInstance marks the instance failed and its remaining events skipped.
func (s *stepper) failInstance(in *Instance) {
	in.Status = Failed
	in.LastUpdated = s.now
	for i := range in.Events {
		if in.Events[i].Status == Pending {
			in.Events[i].Status = Skipped
		}
	}
}

func (s *stepper) tick() {
	d := s.d
	if f := d.StartFailure; f != nil && !s.now.Before(f.At) {
		d.StartFailure = nil
		s.skipRemaining()
		s.finish(StatusFailed, f.Code, f.Message)
		return
	}
	for _, in := range d.Instances {
		c := in.Cmd
		if c == nil {
			continue
		}
		ev := &in.Events[c.Index]
		switch {
		case IsTrafficEvent(c.Event):
			// The traffic layer reports back; if it never does (a lost
			// result), the event fails rather than holding the deployment.
			if s.cfg.EventTimeout > 0 && !s.now.Before(c.Dispatched.Add(s.cfg.EventTimeout)) {
				in.Cmd = nil
				ev.Status = Failed
				ev.End = s.now
				ev.Diagnostics = &Diagnostics{ErrorCode: "UnknownError", Message: fmt.Sprintf("The traffic change of %s did not complete within %s.", ev.Name, s.cfg.EventTimeout)}
				s.failInstance(in)
			}
		case c.Acked.IsZero() && s.cfg.PickupTimeout > 0 && !s.now.Before(c.Dispatched.Add(s.cfg.PickupTimeout)):
			in.Cmd = nil
			ev.Status = Failed
			ev.End = s.now
			ev.Diagnostics = &Diagnostics{ErrorCode: "UnknownError", Message: MsgAgentNotReceived}
			s.failInstance(in)
		case !c.Acked.IsZero() && s.cfg.EventTimeout > 0 && !s.now.Before(c.Acked.Add(s.cfg.EventTimeout)):
			in.Cmd = nil
			ev.Status = Failed
			ev.End = s.now
			ev.Diagnostics = &Diagnostics{ErrorCode: "ScriptTimedOut", Message: fmt.Sprintf("The lifecycle event %s did not complete within %s.", ev.Name, s.cfg.EventTimeout)}
			if d.IgnoreApplicationStopFailures && stopForgivable(ev.Name) {
				in.LastUpdated = s.now
				continue // forgiven like a failed script: go on
			}
			s.failInstance(in)
		}
	}
	if d.Phase == PhaseReadyWait && !d.ReadyDeadline.IsZero() && !s.now.Before(d.ReadyDeadline) {
		s.message("The wait for traffic rerouting ran out; the deployment was stopped")
		s.skipRemaining()
		s.finish(StatusStopped, CodeTimeout, "The deployment was stopped because traffic was not rerouted to the replacement instances before the wait time ran out.")
	}
	if d.Phase == PhaseTermination && !d.TerminationDue.IsZero() && !s.now.Before(d.TerminationDue) {
		s.beginTerminate()
	}
	s.shiftTick()
}

func (s *stepper) continueWait(waitType string) error { return s.strat.continueWait(s, waitType) }

func (s *stepper) stop(rollback *bool) {
	d := s.d
	if d.Status == StatusCreated || d.Status == StatusQueued {
		// Nothing has run: the stop takes effect at once.
		d.Stopping = true
		d.StopRollback = false
		s.skipRemaining()
		s.finish(StatusStopped, CodeManualStop, "The deployment was stopped by a user request (StopDeployment) before it started.")
		return
	}
	want := d.RollbackOnStop
	if rollback != nil {
		want = *rollback
	}
	if d.Stopping {
		d.StopRollback = d.StopRollback || want
		s.shiftBack()
		return
	}
	d.Stopping = true
	d.StopRollback = want
	s.shiftBack()
	d.StartFailure = nil // stopped before it could fail: the stop wins
	d.ErrorCode = CodeManualStop
	d.ErrorMessage = "The deployment was stopped by a user request (StopDeployment)."
	s.skipRemaining()
}

// alarmStop is a stop with ALARM_ACTIVE: like StopDeployment, work in
// flight finishes and nothing more is scheduled.
func (s *stepper) alarmStop(e AlarmStop) {
	d := s.d
	if d.Stopping {
		return
	}
	if d.Status == StatusCreated || d.Status == StatusQueued {
		d.Stopping, d.StopRollback = true, false
		s.skipRemaining()
		s.finish(StatusStopped, CodeAlarmActive, e.Message)
		return
	}
	d.Stopping = true
	d.StopRollback = e.Rollback
	s.shiftBack()
	d.ErrorCode = CodeAlarmActive
	d.ErrorMessage = e.Message
	s.skipRemaining()
}

// skipRemaining stops scheduling: instances not started are skipped.
func (s *stepper) skipRemaining() {
	for _, in := range s.d.Instances {
		if in.Status == Pending || in.Status == Ready {
			if in.Status == Ready || anyStarted(in) {
				// Started in an earlier phase; nothing more runs on it.
				s.markRest(in, Skipped)
				continue
			}
			in.Status = Skipped
			in.LastUpdated = s.now
			for i := range in.Events {
				in.Events[i].Status = Skipped
			}
		}
	}
}

func anyStarted(in *Instance) bool {
	for _, e := range in.Events {
		if e.Status != Pending && e.Status != Skipped {
			return true
		}
	}
	return false
}

// markRest skips an instance's pending events and gives it status st unless
// it already failed.
func (s *stepper) markRest(in *Instance, st string) {
	for i := range in.Events {
		if in.Events[i].Status == Pending {
			in.Events[i].Status = Skipped
		}
	}
	if in.Status != Failed {
		in.Status = st
	}
	in.LastUpdated = s.now
}

// explainStop gives the first event a stop kept from running on an
// interrupted instance the diagnostics that say so: the instance is Failed
// (SERVICE-SEMANTICS §5) although none of its events failed, and lifecycle
// event diagnostics are the only place a target carries an explanation.
// The model's errorCode enum has no value for a stop; UnknownError is the
// one that claims nothing about the scripts.
func (s *stepper) explainStop(in *Instance, next int) {
	ev := &in.Events[next]
	ev.Diagnostics = &Diagnostics{ErrorCode: "UnknownError", Message: fmt.Sprintf(
		"Not run: the deployment was stopped while this instance was being deployed, so %s and the lifecycle events after it were skipped. %s",
		ev.Name, s.d.ErrorMessage)}
}

// inFlight counts instances with a command outstanding.
func (s *stepper) inFlight() int {
	n := 0
	for _, in := range s.d.Instances {
		if in.Cmd != nil {
			n++
		}
	}
	return n
}

// advance moves every instance and the deployment forward as far as the
// current state allows.
func (s *stepper) advance() {
	d := s.d
	if d.StartFailure != nil {
		return // failing: nothing runs until then
	}
	for guard := 0; guard < 64 && !Terminal(d.Status) && d.Status != StatusCreated; guard++ {
		if !s.advanceOnce() {
			return
		}
	}
}

// advanceOnce performs one round; it reports whether anything changed.
func (s *stepper) advanceOnce() bool {
	d := s.d
	changed := false
	// Instances that finished their command go on with their next event.
	for _, in := range d.Instances {
		if in.Cmd != nil || in.Status != InProgress {
			continue
		}
		end := s.strat.phaseEnd(in, d.Phase)
		if !s.inPhase(in, d.Phase) {
			continue
		}
		next := nextPending(in, end)
		if next < 0 {
			s.instanceDone(in)
			changed = true
			continue
		}
		if s.d.Stopping {
			// The command in flight finished; nothing more is scheduled,
			// and the interrupted instance counts as failed (as AWS shows).
			s.markRest(in, Failed)
			s.explainStop(in, next)
			changed = true
			continue
		}
		s.dispatch(in, next)
		changed = true
	}
	if d.Stopping {
		if s.inFlight() == 0 {
			s.skipRemaining()
			s.finish(StatusStopped, d.ErrorCode, d.ErrorMessage)
			return false
		}
		return changed
	}
	switch d.Phase {
	case PhaseInstall, PhaseAllow:
		if s.startBatch() {
			changed = true
		}
		if Terminal(d.Status) {
			return false
		}
		if s.phaseComplete(d.Phase) {
			s.endPhase()
			return true
		}
	case PhaseBlock, PhaseTerminate:
		// Originals leave traffic all at once: AWS fails the whole
		// deployment if any of them fails to deregister.
		for _, in := range s.phaseInstances(d.Phase) {
			if in.Status == Pending {
				in.Status = InProgress
				in.LastUpdated = s.now
				changed = true
				if next := nextPending(in, len(in.Events)); next >= 0 {
					s.dispatch(in, next)
				}
			}
		}
		if s.phaseComplete(d.Phase) {
			s.endPhase()
			return true
		}
	}
	return changed
}

func nextPending(in *Instance, end int) int {
	for i := 0; i < end && i < len(in.Events); i++ {
		if in.Events[i].Status == Pending {
			return i
		}
	}
	return -1
}

// instanceDone is called when an instance ran every event of the phase.
func (s *stepper) instanceDone(in *Instance) {
	in.LastUpdated = s.now
	in.Status = s.strat.doneStatus(in, s.d.Phase)
}

// dispatch starts event i on the instance.
func (s *stepper) dispatch(in *Instance, i int) {
	d := s.d
	d.Seq++
	c := Command{ID: fmt.Sprintf("%s-%d", d.ID, d.Seq), Event: in.Events[i].Name, Index: i, Dispatched: s.now}
	in.Cmd = &c
	in.Events[i].Status = InProgress
	in.Events[i].Start = s.now
	in.LastUpdated = s.now
	if IsTrafficEvent(c.Event) {
		s.emit(s.trafficAction(in, c))
		return
	}
	s.emit(Dispatch{Instance: in.Name, HostID: in.HostID, Command: c})
}

// trafficAction is the traffic change of command c on instance in.
func (s *stepper) trafficAction(in *Instance, c Command) Traffic {
	keep := c.Event == BlockTraffic && s.strat.keepOnBlock(in)
	a := Traffic{Instance: in.Name, Allow: c.Event == AllowTraffic, Keep: keep, Command: c}
	if sh := s.d.Shift; a.Allow && sh != nil && in.Label == Green && s.d.Kind == KindBlueGreen {
		a.Percent = sh.Weight
	}
	return a
}

// eligible reports whether the instance waits to start the current phase.
func (s *stepper) eligible(in *Instance) bool {
	if !s.inPhase(in, s.d.Phase) {
		return false
	}
	return in.Status == Pending || (in.Status == Ready && s.d.Phase == PhaseAllow)
}

// counts of the phase's instances.
type counts struct{ pending, running, ok, failed, n int }

func (s *stepper) count(phase Phase) counts {
	var c counts
	for _, in := range s.phaseInstances(phase) {
		if phase == PhaseAllow && s.strat.failedBeforeAllow(in) {
			continue // the install rule already judged it
		}
		c.n++
		switch in.Status {
		case Pending:
			c.pending++
		case InProgress:
			c.running++
		case Failed:
			c.failed++
		case Ready:
			if phase == PhaseAllow {
				c.pending++
			} else {
				c.ok++
			}
		case Succeeded:
			c.ok++
		}
	}
	return c
}

// startBatch starts as many pending instances as the minimum-healthy rule
// allows, or fails the deployment when it can no longer be honoured.
func (s *stepper) startBatch() bool {
	d := s.d
	c := s.count(d.Phase)
	if c.pending == 0 {
		return false
	}
	allowed := c.n - c.failed - d.M - c.running
	if d.MinHealthy.Type == MostConcurrency {
		allowed = 1 - c.running
		if c.failed > 0 {
			allowed = 0
		}
	}
	if d.Phase == PhaseAllow {
		// Rerouting goes in batches of the configuration's size and needs
		// M instances rerouted in the end (SERVICE-SEMANTICS §3.2); the
		// instances that failed to install are out of it.
		batch := max(len(s.phaseInstances(PhaseAllow))-d.M, 1)
		if d.MinHealthy.Type == MostConcurrency {
			batch = 1
		}
		allowed = batch - c.running
		if c.ok+c.pending+c.running < d.M || (d.MinHealthy.Type == MostConcurrency && c.failed > 0) {
			allowed = 0
		}
	}
	if allowed <= 0 {
		if c.running > 0 {
			return false // wait for the batch in flight
		}
		s.skipRemaining()
		s.finish(StatusFailed, CodeHealthConstraints, MsgHealthConstraints)
		return true
	}
	started := false
	for _, in := range d.Instances {
		if allowed == 0 {
			break
		}
		if !s.eligible(in) {
			continue
		}
		in.Status = InProgress
		in.LastUpdated = s.now
		if next := nextPending(in, s.strat.phaseEnd(in, d.Phase)); next >= 0 {
			s.dispatch(in, next)
		}
		allowed--
		started = true
	}
	return started
}

func (s *stepper) phaseComplete(phase Phase) bool {
	for _, in := range s.phaseInstances(phase) {
		switch in.Status {
		case Pending, InProgress:
			return false
		case Ready:
			if phase == PhaseAllow {
				return false
			}
		}
	}
	return true
}

// healthy reports whether the phase ended within the success rule.
func (s *stepper) healthy(phase Phase) bool {
	c := s.count(phase)
	return c.ok >= s.d.M && c.ok >= 1
}

func (s *stepper) endPhase() { s.strat.endPhase(s) }

// failUnhealthy fails the deployment if the phase ended outside the
// minimum-healthy rule, and reports whether it did.
func (s *stepper) failUnhealthy(phase Phase) bool {
	if s.healthy(phase) {
		return false
	}
	s.skipRemaining()
	s.finish(StatusFailed, CodeHealthConstraints, MsgHealthConstraints)
	return true
}

func (s *stepper) enterAllow() {
	d := s.d
	d.Phase = PhaseAllow
	d.Status = StatusInProgress
	d.ReadyDeadline = time.Time{}
	if d.Shift != nil && d.Kind == KindBlueGreen {
		d.Shift.Weight = d.Shift.Percentage // the first step, canary or linear
	}
}

// beginTerminate stops the originals' application (an ApplicationStop
// event, run from their current revision) before they are retired.
// On self-hosted servers nothing is destroyed: Terminate asks the operator's
// teardown hook to do that.
func (s *stepper) beginTerminate() {
	d := s.d
	d.Phase = PhaseTerminate
	d.TerminationDue = time.Time{}
	for _, in := range s.phaseInstances(PhaseTerminate) {
		if in.Status != Succeeded {
			continue
		}
		in.Events = append(in.Events, LifecycleEvent{Name: ApplicationStop, Status: Pending})
		in.Status = Pending
		in.LastUpdated = s.now
	}
	s.message("Terminating the original instances")
}

func (s *stepper) finish(status Status, code, msg string) {
	d := s.d
	rerouted := s.strat.rerouted(d)
	d.Status = status
	d.Phase = PhaseDone
	d.Completed = s.now
	d.ReadyDeadline = time.Time{}
	d.TerminationDue = time.Time{}
	if status != StatusSucceeded {
		d.ErrorCode = code
		d.ErrorMessage = msg
	} else {
		d.ErrorCode, d.ErrorMessage = "", ""
	}
	switch status {
	case StatusFailed:
		d.RollbackWanted = d.RollbackOnFailure
	case StatusStopped:
		d.RollbackWanted = d.Stopping && d.StopRollback
	}
	if status == StatusStopped && rerouted && !d.RollbackWanted {
		// Traffic is on the replacements already: they become the fleet
		// and the originals leave it, kept running (as KEEP_ALIVE).
		var names []string
		for _, in := range d.Instances {
			if in.Label == Blue {
				in.Retired = true
				in.LastUpdated = s.now
				names = append(names, in.Name)
			}
		}
		s.emit(Terminate{Instances: names})
	}
	s.emit(Finished{Status: status})
}

// NextWake returns the earliest time a Tick can change the deployment, or
// the zero time.
func (d *Deployment) NextWake(cfg Config) time.Time {
	var t time.Time
	min := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	if Terminal(d.Status) {
		return t
	}
	for _, in := range d.Instances {
		if c := in.Cmd; c != nil && IsTrafficEvent(c.Event) {
			// The same deadline tick enforces on a lost traffic result.
			if cfg.EventTimeout > 0 {
				min(c.Dispatched.Add(cfg.EventTimeout))
			}
		} else if c != nil {
			if c.Acked.IsZero() && cfg.PickupTimeout > 0 {
				min(c.Dispatched.Add(cfg.PickupTimeout))
			} else if !c.Acked.IsZero() && cfg.EventTimeout > 0 {
				min(c.Acked.Add(cfg.EventTimeout))
			}
		}
	}
	if d.StartFailure != nil {
		min(d.StartFailure.At)
	}
	if d.Phase == PhaseReadyWait {
		min(d.ReadyDeadline)
	}
	if d.Phase == PhaseTermination {
		min(d.TerminationDue)
	}
	if d.Phase == PhaseShift && d.Shift != nil && !d.Stopping {
		min(d.Shift.Due)
	}
	return t
}

// Overview counts instances by status, as deploymentOverview.
func (d *Deployment) Overview() map[string]int64 {
	o := map[string]int64{Pending: 0, InProgress: 0, Succeeded: 0, Failed: 0, Skipped: 0, Ready: 0}
	for _, in := range d.Instances {
		o[in.Status]++
	}
	return o
}

// InFlight reports whether any command is outstanding.
func (d *Deployment) InFlight() bool {
	for _, in := range d.Instances {
		if in.Cmd != nil {
			return true
		}
	}
	return false
}
