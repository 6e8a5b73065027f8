package builtin

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// latencyRing is how many recent latencies each member keeps for judgment:
// enough for a Mann–Whitney test on a canary window, small enough (8 KiB)
// to keep per member.
const latencyRing = 1024

// memberStats counts what one member was sent, for traffic.StatsReader.
type memberStats struct {
	requests, errors5xx, failed atomic.Int64

	mu    sync.Mutex
	ring  [latencyRing]time.Duration
	count int64 // latencies ever recorded; ring[count%latencyRing] is the next slot
}

func (s *memberStats) observe(code int, d time.Duration) {
	s.requests.Add(1)
	switch {
	case code == 0:
		s.failed.Add(1)
		return // no answer, so no response time
	case code >= 500:
		s.errors5xx.Add(1)
	}
	s.mu.Lock()
	s.ring[s.count%latencyRing] = d
	s.count++
	s.mu.Unlock()
}

// addTo adds the counters to out; latencies are appended oldest first.
func (s *memberStats) addTo(out *traffic.BackendStats) {
	out.Requests += s.requests.Load()
	out.Errors5xx += s.errors5xx.Load()
	out.Failed += s.failed.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(s.count, latencyRing)
	for i := s.count - n; i < s.count; i++ {
		out.Latencies = append(out.Latencies, s.ring[i%latencyRing])
	}
	out.LatencyCount += s.count
}

var _ traffic.StatsReader = (*Router)(nil)

// Stats implements traffic.StatsReader for http target groups: every
// member's counters since it joined this router, including members still
// draining. The counters live in this process only.
func (r *Router) Stats(ctx context.Context, targetGroup string) (map[string]traffic.BackendStats, error) {
	g, err := r.group(targetGroup)
	if err != nil {
		return nil, err
	}
	if g.cfg.Mode != traffic.ModeHTTP {
		return nil, &statsError{targetGroup}
	}
	g.mu.Lock()
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	g.mu.Unlock()
	out := make(map[string]traffic.BackendStats, len(ms))
	for _, m := range ms {
		st := out[m.id]
		m.stats.addTo(&st)
		out[m.id] = st
	}
	return out, nil
}

type statsError struct{ tg string }

func (e *statsError) Error() string {
	return "builtin: target group " + e.tg + ": tcp mode: " + traffic.ErrNoStats.Error()
}
func (e *statsError) Unwrap() error { return traffic.ErrNoStats }

// stickyMember is the member named by the request's sticky cookie when it
// is eligible for new traffic (registered, weight > 0, healthy).
func (g *group) stickyMember(req *http.Request) (*member, string) {
	c, err := req.Cookie(g.cfg.StickyCookie)
	if err != nil {
		return nil, ""
	}
	for _, m := range g.snap.Load().members {
		if m.token == c.Value {
			return m, c.Value
		}
	}
	return nil, c.Value
}

// setSticky makes the response pin the client to m, unless it already is.
func (g *group) setSticky(resp *http.Response, m *member, had string) {
	if had == m.token {
		return
	}
	c := &http.Cookie{Name: g.cfg.StickyCookie, Value: m.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
	resp.Header.Add("Set-Cookie", c.String())
}
