package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/engine"
)

// Trigger event types (TriggerEventType).
const (
	DeploymentStart    = "DeploymentStart"
	DeploymentSuccess  = "DeploymentSuccess"
	DeploymentFailure  = "DeploymentFailure"
	DeploymentStop     = "DeploymentStop"
	DeploymentRollback = "DeploymentRollback"
	DeploymentReady    = "DeploymentReady"
	InstanceStart      = "InstanceStart"
	InstanceSuccess    = "InstanceSuccess"
	InstanceFailure    = "InstanceFailure"
	InstanceReady      = "InstanceReady"
)

// occurrence is one trigger event a step produced; Instance is empty for
// deployment events.
type occurrence struct {
	Event    string
	Instance int // index in the deployment's targets; -1 for deployment events
}

// occurrences lists the trigger events a committed step produced.
func occurrences(st deploy.Step) []occurrence {
	e := st.Record.Engine
	var out []occurrence
	dep := func(ev string) { out = append(out, occurrence{ev, -1}) }
	if e.Started.Equal(st.Now) && st.Before != e.Status {
		dep(DeploymentStart)
	}
	if st.Before != e.Status {
		switch e.Status {
		case engine.StatusSucceeded:
			dep(DeploymentSuccess)
		case engine.StatusFailed:
			dep(DeploymentFailure)
		case engine.StatusStopped:
			dep(DeploymentStop)
		case engine.StatusReady:
			dep(DeploymentReady)
		}
		if engine.Terminal(e.Status) && e.RollbackWanted {
			dep(DeploymentRollback)
		}
	}
	for i, in := range e.Instances {
		if !st.Changed(in) {
			continue
		}
		from := st.StatusBefore(i)
		if from == in.Status {
			continue
		}
		// Group commit can take a target from Pending to its end in one
		// step: it still started.
		if (from == engine.Pending || from == "") && in.Status != engine.Pending && in.Status != engine.Skipped {
			out = append(out, occurrence{InstanceStart, i})
		}
		switch in.Status {
		case engine.Succeeded:
			out = append(out, occurrence{InstanceSuccess, i})
		case engine.Failed:
			out = append(out, occurrence{InstanceFailure, i})
		case engine.Ready:
			out = append(out, occurrence{InstanceReady, i})
		}
	}
	return out
}

// epoch renders a time as CodeDeploy's trigger messages do: seconds since
// the epoch with milliseconds, as a string.
func epoch(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

type errorInformation struct {
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// deploymentMessage is the JSON CodeDeploy publishes for a deployment
// trigger.
type deploymentMessage struct {
	Region              string            `json:"region"`
	AccountID           string            `json:"accountId"`
	EventTriggerName    string            `json:"eventTriggerName"`
	ApplicationName     string            `json:"applicationName"`
	DeploymentID        string            `json:"deploymentId"`
	DeploymentGroupName string            `json:"deploymentGroupName"`
	CreateTime          string            `json:"createTime"`
	CompleteTime        string            `json:"completeTime,omitempty"`
	DeploymentOverview  map[string]string `json:"deploymentOverview"`
	Status              string            `json:"status"`
	ErrorInformation    *errorInformation `json:"errorInformation,omitempty"`
}

type lifecycleEvent struct {
	LifecycleEvent       string `json:"LifecycleEvent"`
	LifecycleEventStatus string `json:"LifecycleEventStatus"`
	StartTime            string `json:"StartTime,omitempty"`
	EndTime              string `json:"EndTime,omitempty"`
}

// instanceMessage is the JSON CodeDeploy publishes for an instance trigger.
type instanceMessage struct {
	Region           string           `json:"region"`
	AccountID        string           `json:"accountId"`
	EventTriggerName string           `json:"eventTriggerName"`
	DeploymentID     string           `json:"deploymentId"`
	InstanceID       string           `json:"instanceId"`
	LastUpdatedAt    string           `json:"lastUpdatedAt"`
	InstanceStatus   string           `json:"instanceStatus"`
	LifecycleEvents  []lifecycleEvent `json:"lifecycleEvents"`
}

func newDeploymentMessage(rec *deploy.Record, trigger string) deploymentMessage {
	e := rec.Engine
	ov := map[string]string{}
	for k, v := range e.Overview() {
		ov[k] = strconv.FormatInt(v, 10)
	}
	m := deploymentMessage{
		Region: rec.Region, AccountID: rec.Account, EventTriggerName: trigger,
		ApplicationName: rec.ApplicationName, DeploymentID: rec.ID, DeploymentGroupName: rec.GroupName,
		CreateTime: epoch(e.Created), CompleteTime: epoch(e.Completed), DeploymentOverview: ov, Status: string(e.Status),
	}
	if e.ErrorCode != "" {
		m.ErrorInformation = &errorInformation{ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage}
	}
	return m
}

// instanceID names a target the way the messages do: its ARN when it has
// one (the host identifier of on-premises instances), else its name.
func instanceID(in *engine.Instance) string {
	if strings.HasPrefix(in.HostID, "arn:") {
		return in.HostID
	}
	return in.Name
}

func newInstanceMessage(rec *deploy.Record, in *engine.Instance, trigger string) instanceMessage {
	m := instanceMessage{
		Region: rec.Region, AccountID: rec.Account, EventTriggerName: trigger, DeploymentID: rec.ID,
		InstanceID: instanceID(in), LastUpdatedAt: epoch(in.LastUpdated), InstanceStatus: in.Status,
		LifecycleEvents: []lifecycleEvent{},
	}
	for _, ev := range in.Events {
		if ev.Start.IsZero() && ev.Status == engine.Pending {
			continue
		}
		m.LifecycleEvents = append(m.LifecycleEvents, lifecycleEvent{
			LifecycleEvent: ev.Name, LifecycleEventStatus: ev.Status, StartTime: epoch(ev.Start), EndTime: epoch(ev.End),
		})
	}
	return m
}

// subject is the SNS Subject line (at most 100 characters).
func subject(rec *deploy.Record, event string, in *engine.Instance) string {
	word := map[string]string{
		DeploymentStart: "STARTED", DeploymentSuccess: "SUCCEEDED", DeploymentFailure: "FAILED", DeploymentStop: "STOPPED",
		DeploymentRollback: "ROLLED BACK", DeploymentReady: "READY", InstanceStart: "STARTED", InstanceSuccess: "SUCCEEDED",
		InstanceFailure: "FAILED", InstanceReady: "READY",
	}[event]
	s := fmt.Sprintf("%s: AWS CodeDeploy %s in %s to %s", word, rec.ID, rec.Region, rec.ApplicationName)
	if in != nil {
		s = fmt.Sprintf("%s: AWS CodeDeploy %s in %s on %s", word, rec.ID, rec.Region, in.Name)
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}
