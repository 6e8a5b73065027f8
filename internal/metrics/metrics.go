// Package metrics exposes a Cutover server's Prometheus metrics and writes
// one structured log line per deployment and instance state change.
//
// Every Metrics owns its own registry: two servers in one process (tests,
// benchmarks) never share series.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/engine"
	"github.com/cutoverhq/cutover/internal/store"
)

// Metrics holds a server's collectors.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger
	now func() time.Time

	deployments *prometheus.GaugeVec
	completed   *prometheus.CounterVec
	instances   *prometheus.CounterVec
	events      *prometheus.HistogramVec
	apiRequests *prometheus.CounterVec
	apiLatency  *prometheus.HistogramVec
	polling     prometheus.Gauge
	routerReqs  *prometheus.CounterVec
	routerErrs  *prometheus.CounterVec
	routerLat   *prometheus.HistogramVec
	leasesHeld  prometheus.Gauge
	failovers   prometheus.Counter

	// agentWindow is how long an agent counts as connected after its last
	// protocol call (a long poll renews it).
	agentWindow time.Duration

	mu     sync.Mutex
	agents map[string]time.Time // access key id -> last protocol call
	status map[string]string    // active deployment id -> status counted

	rateMu  sync.Mutex
	samples []routerSample // of the router counters, oldest first (RouterRates)
}

// Options configure New.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// AgentWindow: an agent is connected if it called the agent protocol
	// within this window; default 2 minutes (twice the longest poll).
	AgentWindow time.Duration
}

// latencyBuckets suit both API calls and proxied requests (seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New registers the collectors on a fresh registry.
func New(opts Options) *Metrics {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AgentWindow <= 0 {
		opts.AgentWindow = 2 * time.Minute
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(), log: opts.Logger, now: opts.Now, agentWindow: opts.AgentWindow,
		agents: map[string]time.Time{}, status: map[string]string{},
		deployments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_deployments", Help: "Active deployments by status.",
		}, []string{"status"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_deployments_completed_total", Help: "Deployments that reached a final status, by status and error code (the outcome).",
		}, []string{"status", "error_code"}),
		instances: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_instance_status_changes_total", Help: "Deployment targets entering a status.",
		}, []string{"status"}),
		events: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cutover_lifecycle_event_duration_seconds", Help: "Duration of finished lifecycle events, by event name and final status.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"event", "status"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_api_requests_total", Help: "API and agent-protocol requests by operation and error type (__type; empty on success).",
		}, []string{"service", "operation", "error"}),
		apiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cutover_api_request_duration_seconds", Help: "API and agent-protocol request latency by operation (long polls included).",
			Buckets: latencyBuckets,
		}, []string{"service", "operation"}),
		polling: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_agents_polling", Help: "Agents waiting in PollHostCommand now.",
		}),
		routerReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_router_requests_total", Help: "Requests proxied by the builtin router, by target group, backend and status class.",
		}, []string{"target_group", "backend", "code"}),
		routerErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_router_errors_total", Help: "Builtin router attempts that failed at the transport (no response), by target group and backend.",
		}, []string{"target_group", "backend"}),
		routerLat: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cutover_router_request_duration_seconds", Help: "Builtin router time to the backend's response headers, by target group and backend.",
			Buckets: latencyBuckets,
		}, []string{"target_group", "backend"}),
		leasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_leases_held", Help: "Deployment leases this replica holds.",
		}),
		failovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_lease_failovers_total", Help: "Deployments this replica took over from another one.",
		}),
	}
	m.reg.MustRegister(m.deployments, m.completed, m.instances, m.events, m.apiRequests, m.apiLatency,
		m.polling, m.routerReqs, m.routerErrs, m.routerLat, m.leasesHeld, m.failovers,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cutover_agents_connected", Help: "Agents that called the agent protocol within the connection window.",
		}, func() float64 { return float64(m.connected()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, s := range []engine.Status{engine.StatusCreated, engine.StatusQueued, engine.StatusInProgress, engine.StatusReady} {
		m.deployments.WithLabelValues(string(s))
	}
	return m
}

// Registry is the registry the collectors live in (to add more).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second, MaxRequestsInFlight: 4})
}

// Leases is what the lease holder reports.
type Leases interface {
	// LeasesHeld sets the number of deployment leases this replica holds.
	LeasesHeld(n int)
	// TookOver counts a deployment taken over from another replica.
	TookOver()
}

var _ Leases = (*Metrics)(nil)

// LeasesHeld implements Leases.
func (m *Metrics) LeasesHeld(n int) { m.leasesHeld.Set(float64(n)) }

// TookOver implements Leases.
func (m *Metrics) TookOver() { m.failovers.Inc() }

// Seed counts a deployment that was active before this process started
// (it is counted from its next step on otherwise).
func (m *Metrics) Seed(id string, status engine.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.status[id]; ok || engine.Terminal(status) {
		return
	}
	m.status[id] = string(status)
	m.deployments.WithLabelValues(string(status)).Inc()
}

// Step implements deploy.Observer: it counts and logs after the commit.
func (m *Metrics) Step(_ context.Context, _ store.Tx, st deploy.Step) (func(), error) {
	rec := st.Record
	e := rec.Engine
	type change struct{ name, from, to string }
	var changes []change
	var ended []engine.LifecycleEvent
	for i, in := range e.Instances {
		if !st.Changed(in) {
			continue
		}
		if from := st.StatusBefore(i); from != in.Status {
			changes = append(changes, change{in.Name, from, in.Status})
		}
		for _, ev := range in.Events {
			if ev.End.Equal(st.Now) && !ev.Start.IsZero() {
				ended = append(ended, ev)
			}
		}
	}
	from, to := st.Before, e.Status
	id, app, group, code, msg := rec.ID, rec.ApplicationName, rec.GroupName, e.ErrorCode, e.ErrorMessage
	return func() {
		if from != to {
			m.deploymentStatus(id, string(to), code)
			attrs := []any{"deployment", id, "application", app, "group", group, "from", from, "to", to}
			if code != "" {
				attrs = append(attrs, "error_code", code, "error_message", msg)
			}
			m.log.Info("deployment status", attrs...)
		}
		for _, c := range changes {
			m.instances.WithLabelValues(c.to).Inc()
			m.log.Info("instance status", "deployment", id, "instance", c.name, "from", c.from, "to", c.to)
		}
		for _, ev := range ended {
			m.events.WithLabelValues(ev.Name, ev.Status).Observe(ev.End.Sub(ev.Start).Seconds())
		}
	}, nil
}

func (m *Metrics) deploymentStatus(id, to, code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.status[id]; ok {
		m.deployments.WithLabelValues(old).Dec()
	}
	if engine.Terminal(engine.Status(to)) {
		delete(m.status, id)
		m.completed.WithLabelValues(to, code).Inc()
		return
	}
	m.status[id] = to
	m.deployments.WithLabelValues(to).Inc()
}

// Service wraps an API service to count its requests. Operation names not
// in known are counted as "unknown", so a client cannot grow the label set.
func (m *Metrics) Service(name string, known func(op string) bool, next awsjson.Service) awsjson.Service {
	agentProtocol := name == "commands"
	return awsjson.ServiceFunc(func(ctx context.Context, op string, body []byte) (any, error) {
		label := op
		if !known(op) {
			label = "unknown"
		}
		if agentProtocol {
			if c, ok := awsjson.CallerFrom(ctx); ok && c.AccessKeyID != "" {
				m.seen(c.AccessKeyID)
			}
			if op == "PollHostCommand" {
				m.polling.Inc()
				defer m.polling.Dec()
			}
		}
		start := m.now()
		out, err := next.Serve(ctx, op, body)
		m.apiLatency.WithLabelValues(name, label).Observe(m.now().Sub(start).Seconds())
		m.apiRequests.WithLabelValues(name, label, errorType(err)).Inc()
		return out, err
	})
}

func errorType(err error) string {
	if err == nil {
		return ""
	}
	var ae *awsjson.Error
	if errors.As(err, &ae) {
		return ae.Type
	}
	return "InternalFailure"
}

func (m *Metrics) seen(key string) {
	m.mu.Lock()
	m.agents[key] = m.now()
	m.mu.Unlock()
}

func (m *Metrics) connected() int {
	cutoff := m.now().Add(-m.agentWindow)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.agents {
		if t.Before(cutoff) {
			delete(m.agents, k)
		}
	}
	return len(m.agents)
}

// ObserveRequest implements the builtin router's request observer: one
// call per attempt on a backend; code 0 means the attempt failed without
// a response.
func (m *Metrics) ObserveRequest(targetGroup, backend string, code int, d time.Duration) {
	if code == 0 {
		m.routerErrs.WithLabelValues(targetGroup, backend).Inc()
		m.routerReqs.WithLabelValues(targetGroup, backend, "error").Inc()
		return
	}
	m.routerReqs.WithLabelValues(targetGroup, backend, strconv.Itoa(code/100)+"xx").Inc()
	m.routerLat.WithLabelValues(targetGroup, backend).Observe(d.Seconds())
}
