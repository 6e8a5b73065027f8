package api

import (
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

// Destinations checks the SNS topics and alarms a deployment group names
// against what this server can deliver to and poll.
type Destinations interface {
	CheckTriggers(topicArns []string) error
	CheckAlarms(a *cd.AlarmConfiguration) error
}

// checkDestinations refuses topics and alarms the server does not know,
// before anything is written.
func (s *Server) checkDestinations(ts []cd.TriggerConfig, a *cd.AlarmConfiguration) error {
	if s.Destinations == nil {
		return nil
	}
	arns := make([]string, 0, len(ts))
	for _, t := range ts {
		arns = append(arns, deref(t.TriggerTargetArn))
	}
	if err := s.Destinations.CheckTriggers(arns); err != nil {
		return err
	}
	return s.Destinations.CheckAlarms(a)
}
