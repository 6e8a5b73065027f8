package server

import (
	"context"

	"github.com/cutoverhq/cutover/internal/alarm"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/metrics"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// observability builds the metrics, the trigger notifier and the alarm
// monitor from the configuration (before the runner, which reports to
// them).
func (s *Server) observability() error {
	s.Metrics = metrics.New(metrics.Options{Logger: s.log, Now: s.cfg.Now})
	if s.cfg.TriggersConfig != "" {
		eps, err := trigger.Load(s.cfg.TriggersConfig)
		if err != nil {
			return err
		}
		s.Triggers = trigger.New(trigger.Config{Store: s.Store, Endpoints: eps, Logger: s.log, Now: s.cfg.Now, Backoff: s.cfg.TriggerBackoff})
	}
	if s.cfg.AlarmsConfig != "" {
		f, err := alarm.Load(s.cfg.AlarmsConfig)
		if err != nil {
			return err
		}
		if s.cfg.AlarmPollInterval > 0 {
			f.PollInterval = s.cfg.AlarmPollInterval
		}
		s.alarmFile = &f
	}
	s.API.Destinations = destinations{s}
	return nil
}

// observer is what the runner reports each committed step to.
func (s *Server) observer() deploy.Observer {
	obs := deploy.Observers{s.Metrics}
	if s.Triggers != nil {
		obs = append(obs, s.Triggers)
	}
	return obs
}

// startObservers runs the delivery worker and the alarm poller once the
// runner is up.
func (s *Server) startObservers(ctx context.Context) {
	for _, id := range s.Runner.Active() {
		if rec, err := s.Runner.Header(ctx, id); err == nil {
			s.Metrics.Seed(id, rec.Engine.Status)
		}
	}
	if s.Triggers != nil {
		s.Triggers.Start(ctx)
		s.closers = append(s.closers, s.Triggers.Close)
	}
	if s.alarmFile != nil {
		s.Alarms = alarm.New(alarm.Config{File: *s.alarmFile, Store: s.Store, Deployments: s.Runner, Holds: s.Runner.Drives, Logger: s.log})
		s.Alarms.Start(ctx)
		s.closers = append(s.closers, s.Alarms.Close)
	}
}

// instrument counts a route's requests.
func (s *Server) instrument(name string, svc awsjson.Service) awsjson.Service {
	known := func(op string) bool { _, ok := cd.Operations[op]; return ok }
	if name == "commands" {
		known = func(op string) bool { _, ok := commands.Operations[op]; return ok }
	}
	return s.Metrics.Service(name, known, svc)
}

// destinations checks group configurations against the triggers and
// alarms configuration. Without a configuration file, what groups name is
// stored and returned as before but delivers and stops nothing.
type destinations struct{ s *Server }

func (d destinations) CheckTriggers(arns []string) error {
	if d.s.Triggers == nil {
		return nil
	}
	return d.s.Triggers.CheckTriggers(arns)
}

func (d destinations) CheckAlarms(a *cd.AlarmConfiguration) error {
	if d.s.alarmFile == nil {
		return nil
	}
	// The monitor starts after the runner; checking needs only the file.
	return alarm.New(alarm.Config{File: *d.s.alarmFile}).CheckAlarms(a)
}
