// Package alarm stops deployments whose alarms fire: during a deployment
// the alarms its alarmConfiguration names are polled, and one firing stops
// the deployment with ALARM_ACTIVE (rolled back when the
// autoRollbackConfiguration has DEPLOYMENT_STOP_ON_ALARM).
package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/background"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/engine"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// Deployments is what the monitor needs of the deployment runner.
type Deployments interface {
	Active() []string
	Header(ctx context.Context, id string) (*deploy.Record, error)
	StopOnAlarm(ctx context.Context, id, message string, rollback bool) error
}

// Config configures a Monitor.
type Config struct {
	File        File
	Store       store.Store
	Deployments Deployments
	// Holds reports whether this replica holds the lease of a deployment
	// Active lists (nil: all of them). A deployment is in Active while its
	// lease is being taken and until its loop notices that the lease was
	// lost; its alarms are polled only while the lease is held, so that
	// with several replicas only the owner polls them.
	Holds  func(ctx context.Context, id string) (bool, error)
	Logger *slog.Logger
	Client *http.Client // default: File.Timeout
}

// Monitor polls the alarms of active deployments.
type Monitor struct {
	cfg  Config
	log  *slog.Logger
	defs map[string]Definition

	poller background.Task
}

// New returns a monitor; Start runs its poll loop.
func New(cfg Config) *Monitor {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.File.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, defs: map[string]Definition{}}
	for _, d := range cfg.File.Alarms {
		m.defs[d.Name] = d
	}
	return m
}

// CheckAlarms refuses an alarm configuration naming alarms this server
// does not define, as CreateDeploymentGroup does for unknown CloudWatch
// alarms.
func (m *Monitor) CheckAlarms(a *cd.AlarmConfiguration) error {
	if a == nil {
		return nil
	}
	for _, al := range a.Alarms {
		n := deref(al.Name)
		if _, ok := m.defs[n]; !ok {
			return awsjson.Errorf("InvalidAlarmConfigException", "The alarm %s is not defined on this server: add it to the server's alarms configuration.", n)
		}
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Start runs the poll loop until Close.
func (m *Monitor) Start(ctx context.Context) {
	m.poller.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(m.cfg.File.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			m.Poll(ctx)
		}
	})
}

// Close stops the poll loop and waits for it.
func (m *Monitor) Close() error {
	m.poller.Close()
	return nil
}

// state is one alarm's state in a poll.
type state struct {
	firing bool
	err    error
}

// Poll checks the alarms of every active deployment once; each alarm is
// read at most once per poll, however many deployments name it.
func (m *Monitor) Poll(ctx context.Context) {
	states := map[string]state{}
	for _, id := range m.cfg.Deployments.Active() {
		if ctx.Err() != nil {
			return
		}
		if m.cfg.Holds != nil {
			held, err := m.cfg.Holds(ctx, id)
			if err != nil && ctx.Err() == nil {
				m.log.Warn("alarm poll: deployment lease", "deployment", id, "err", err)
			}
			if !held {
				continue
			}
		}
		if err := m.check(ctx, id, states); err != nil && ctx.Err() == nil {
			m.log.Warn("alarm poll", "deployment", id, "err", err)
		}
	}
}

func (m *Monitor) check(ctx context.Context, id string, states map[string]state) error {
	rec, err := m.cfg.Deployments.Header(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if s := rec.Engine.Status; s != engine.StatusInProgress && s != engine.StatusReady || rec.Engine.Stopping {
		return nil
	}
	if ri := rec.RollbackInfo; ri != nil && ri.RollbackTriggeringDeploymentId != nil {
		// A rollback is the remedy for the alarm that is likely still
		// firing: stopping it would leave the fleet half rolled back.
		return nil
	}
	ac := rec.OverrideAlarm
	if ac == nil {
		var g *cd.DeploymentGroupInfo
		err := m.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			g, err = api.GroupByID(ctx, tx, rec.Account, rec.Region, rec.ApplicationName, rec.GroupName, rec.GroupID)
			return err
		})
		var ae *awsjson.Error
		if errors.As(err, &ae) {
			return nil // the group is gone
		}
		if err != nil {
			return err
		}
		ac = g.AlarmConfiguration
	}
	if ac == nil || ac.Enabled == nil || !*ac.Enabled || len(ac.Alarms) == 0 {
		return nil
	}
	ignore := ac.IgnorePollAlarmFailure != nil && *ac.IgnorePollAlarmFailure
	var fired, unreadable []string
	var why []string
	for _, al := range ac.Alarms {
		n := deref(al.Name)
		st, ok := states[n]
		if !ok {
			st = m.read(ctx, n)
			states[n] = st
		}
		switch {
		case st.firing:
			fired = append(fired, n)
		case st.err != nil:
			unreadable = append(unreadable, n)
			why = append(why, st.err.Error())
		}
	}
	var msg string
	switch {
	case len(fired) > 0:
		msg = fmt.Sprintf("The deployment was stopped because the alarm(s) %s fired.", strings.Join(fired, ", "))
	case len(unreadable) > 0 && !ignore:
		msg = fmt.Sprintf("The deployment was stopped because the state of the alarm(s) %s could not be read (%s) and ignorePollAlarmFailure is false.", strings.Join(unreadable, ", "), strings.Join(why, "; "))
	case len(unreadable) > 0:
		m.log.Warn("alarm state unreadable; continuing (ignorePollAlarmFailure)", "deployment", id, "alarms", unreadable, "err", strings.Join(why, "; "))
		return nil
	default:
		return nil
	}
	rollback := false
	if arc := rec.AutoRollback; arc != nil && arc.Enabled != nil && *arc.Enabled {
		rollback = slices.Contains(arc.Events, cd.AutoRollbackEventDEPLOYMENTSTOPONALARM)
	}
	m.log.Info("alarm stops deployment", "deployment", id, "fired", fired, "unreadable", unreadable, "rollback", rollback)
	return m.cfg.Deployments.StopOnAlarm(ctx, id, msg, rollback)
}

// maxResponse bounds how much of an answer is read.
const maxResponse = 1 << 20

// read evaluates one alarm.
func (m *Monitor) read(ctx context.Context, name string) state {
	d, ok := m.defs[name]
	if !ok {
		return state{err: fmt.Errorf("alarm %s is not defined on this server", name)}
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.File.Timeout)
	defer cancel()
	if d.HTTP != "" {
		return m.readHTTP(ctx, d.HTTP)
	}
	return m.readPrometheus(ctx, d.Prometheus)
}

func (m *Monitor) readHTTP(ctx context.Context, u string) state {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return state{err: err}
	}
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return state{err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	return state{firing: resp.StatusCode < 200 || resp.StatusCode > 299}
}

// readPrometheus runs an instant query: a non-empty result fires.
func (m *Monitor) readPrometheus(ctx context.Context, query string) state {
	u := strings.TrimSuffix(m.cfg.File.PrometheusURL, "/") + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return state{err: err}
	}
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return state{err: err}
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&out); err != nil {
		return state{err: fmt.Errorf("prometheus answered %s: %w", resp.Status, err)}
	}
	if out.Status != "success" {
		return state{err: fmt.Errorf("prometheus query failed: %s", out.Error)}
	}
	switch out.Data.ResultType {
	case "vector", "matrix":
		var rs []json.RawMessage
		if err := json.Unmarshal(out.Data.Result, &rs); err != nil {
			return state{err: fmt.Errorf("prometheus result: %w", err)}
		}
		return state{firing: len(rs) > 0}
	default:
		// A scalar or string always has a value: such a query cannot
		// express "no alarm", so it is a configuration error.
		return state{err: fmt.Errorf("prometheus query returned a %s, not a vector", out.Data.ResultType)}
	}
}
