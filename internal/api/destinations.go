package api

import (
	"context"
	"strings"

	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

// Destinations checks the SNS topics and alarms a deployment group names
// against what this server can deliver to and poll.
type Destinations interface {
	CheckTriggers(topicArns []string) error
	CheckAlarms(a *cd.AlarmConfiguration) error
}

// checkDestinations refuses topics and alarms the server does not know,
// and topics of another account than the caller's (as SNS refuses to
// publish to them without a topic policy, which this server has not),
// before anything is written.
func (s *Server) checkDestinations(sc scope, ts []cd.TriggerConfig, a *cd.AlarmConfiguration) error {
	for _, t := range ts {
		if arn := deref(t.TriggerTargetArn); !TopicInAccount(arn, sc.Account) {
			return awsjson.Errorf("InvalidTriggerConfigException", "The trigger target %s of trigger %s is not a topic of account %s.", arn, deref(t.TriggerName), sc.Account)
		}
	}
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

// checkTargetGroups hands the target groups lb names to TargetGroups.
func (s *Server) checkTargetGroups(ctx context.Context, lb *cd.LoadBalancerInfo) error {
	if s.TargetGroups == nil || lb == nil {
		return nil
	}
	var names []string
	for _, t := range lb.TargetGroupInfoList {
		names = append(names, deref(t.Name))
	}
	for _, e := range lb.ElbInfoList {
		names = append(names, deref(e.Name))
	}
	return s.TargetGroups(ctx, names)
}

// TopicInAccount reports whether an SNS topic ARN
// (arn:aws:sns:REGION:ACCOUNT:NAME) belongs to account.
func TopicInAccount(arn, account string) bool {
	parts := strings.SplitN(arn, ":", 6)
	return len(parts) == 6 && parts[4] == account
}
