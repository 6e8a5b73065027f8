package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// observeFlags are the server's trigger and alarm flags.
type observeFlags struct {
	triggersConfig, alarmsConfig string
	alarmPoll                    time.Duration
}

func (f *observeFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.triggersConfig, "triggers-config", "", "YAML/JSON file mapping SNS topic ARNs of triggerConfigurations to webhooks (see README)")
	fs.StringVar(&f.alarmsConfig, "alarms-config", "", "YAML/JSON file defining the alarms alarmConfiguration names: Prometheus queries or HTTP checks (see README)")
	fs.DurationVar(&f.alarmPoll, "alarm-poll-interval", 0, "how often alarms are polled during a deployment (default: the alarms file's pollInterval, else 10s)")
}

func (f *observeFlags) apply(c *server.Config) {
	c.TriggersConfig, c.AlarmsConfig, c.AlarmPollInterval = f.triggersConfig, f.alarmsConfig, f.alarmPoll
}

// runDeliveries lists the trigger delivery log from the server's store.
func runDeliveries(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("deliveries")
	s.args = "[DEPLOYMENT_ID]"
	dataDir, database := storeFlags(s.fs)
	limit := s.fs.Int("limit", 100, "most deliveries to list")
	if err := s.parse(args); err != nil {
		return err
	}
	if len(s.pos) > 1 {
		return errors.New("deliveries: give at most one deployment id")
	}
	id := ""
	if len(s.pos) == 1 {
		id = s.pos[0]
	}
	st, err := server.OpenStore(ctx, *dataDir, *database)
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := trigger.Deliveries(ctx, st, id, *limit)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEPLOYMENT\tEVENT\tINSTANCE\tTRIGGER\tSTATUS\tATTEMPTS\tLAST ERROR")
	for _, d := range ds {
		inst := d.Instance
		if inst == "" {
			inst = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.DeploymentID, d.Event, inst, d.Trigger, d.Status, d.Attempts, d.LastError)
	}
	return w.Flush()
}
