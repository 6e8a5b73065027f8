package builtin

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// outageLogEvery is how often a lasting outage is logged again.
const outageLogEvery = time.Minute

// noBackendBody is what a client gets while no member can take a request:
// short, and naming nothing about the deployment behind it.
const noBackendBody = "503 Service Unavailable: no healthy backend\n"

// outage tracks a target group's periods without any member to send a
// request to. A log line per refused request would flood the log exactly
// when someone reads it, so an outage logs one warning when it starts, one
// every outageLogEvery while it lasts (with the requests refused since),
// and one line when a request is served again.
type outage struct {
	active atomic.Bool // read on every served request, so that path stays lock-free

	mu       sync.Mutex
	since    time.Time // start of the current outage
	lastLog  time.Time
	refused  int64 // in the current outage
	unlogged int64 // refused since lastLog
}

// outageReport is a log line an outage event calls for.
type outageReport struct {
	start, end bool
	refused    int64 // end: in the whole outage; otherwise since the last report
	duration   time.Duration
}

// refuse records a request refused at now and reports whether to log.
func (o *outage) refuse(now time.Time) (outageReport, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused++
	o.unlogged++
	if !o.active.Load() {
		o.active.Store(true)
		o.since, o.lastLog, o.refused, o.unlogged = now, now, 1, 0
		return outageReport{start: true, refused: 1}, true
	}
	if now.Sub(o.lastLog) < outageLogEvery {
		return outageReport{}, false
	}
	r := outageReport{refused: o.unlogged, duration: now.Sub(o.since)}
	o.lastLog, o.unlogged = now, 0
	return r, true
}

// served records a request served at now; it reports the end of an
// outage, once.
func (o *outage) served(now time.Time) (outageReport, bool) {
	if !o.active.Load() {
		return outageReport{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.active.Load() {
		return outageReport{}, false
	}
	o.active.Store(false)
	return outageReport{end: true, refused: o.refused, duration: now.Sub(o.since)}, true
}

func (g *group) logOutage(r outageReport) {
	switch {
	case r.start:
		g.log.Warn("builtin: no healthy backend; refusing requests until one is (logged again every minute while it lasts)")
	case r.end:
		g.log.Info("builtin: serving again after an outage", "refused", r.refused, "outage", r.duration.Round(time.Millisecond))
	default:
		g.log.Warn("builtin: still no healthy backend", "refused_since_last_report", r.refused, "outage", r.duration.Round(time.Second))
	}
}

// refused notes a request or connection no member could take.
func (g *group) refused() {
	if r, ok := g.out.refuse(time.Now()); ok {
		g.logOutage(r)
	}
}

// served notes a request or connection a member took.
func (g *group) served() {
	if r, ok := g.out.served(time.Now()); ok {
		g.logOutage(r)
	}
}

// writeNoBackend answers a request no member could take.
func writeNoBackend(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(noBackendBody))
}
