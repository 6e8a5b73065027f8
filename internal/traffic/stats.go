package traffic

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/internal/judge"
)

// ErrNoStats is returned by StatsReader.Stats for a target group whose
// driver keeps no per-backend statistics (for example tcp mode).
var ErrNoStats = errors.New("no per-backend statistics")

// BackendStats are one backend's cumulative counters as seen by the load
// balancer since the backend joined it (or the load balancer started).
// Counters only grow while the backend stays registered; a caller judges a
// window by taking two snapshots and calling Since.
//
// Statistics are local to the load balancer that routed the requests: with
// the builtin router, the replica whose process runs the listener; with
// HAProxy, that HAProxy process (its counters reset when it restarts).
type BackendStats struct {
	Requests  int64 // attempts sent to the backend, including the two below
	Errors5xx int64 // answered 5xx
	Failed    int64 // no answer: connection refused or reset, timeout
	// Latencies are the most recent response times (time to response
	// headers), oldest first, at most a fixed number per backend; empty
	// when the driver has no distribution (HAProxy).
	Latencies []time.Duration
	// LatencyCount is how many latencies were ever recorded, so Since can
	// tell which of Latencies are new.
	LatencyCount int64
	// MeanLatency is the driver's average response time when it has no
	// distribution (HAProxy: rtime, an average over its last 1024 requests).
	MeanLatency time.Duration
}

// Since is the window between an earlier snapshot prev and s, as a judge
// sample. When a counter went backwards (the backend was removed and added
// again, or the load balancer restarted) the window starts from zero.
func (s BackendStats) Since(prev BackendStats) judge.Sample {
	if s.Requests < prev.Requests || s.Errors5xx < prev.Errors5xx || s.Failed < prev.Failed || s.LatencyCount < prev.LatencyCount {
		prev = BackendStats{}
	}
	out := judge.Sample{
		Requests:    s.Requests - prev.Requests,
		Errors5xx:   s.Errors5xx - prev.Errors5xx,
		Failed:      s.Failed - prev.Failed,
		MeanLatency: s.MeanLatency,
	}
	if n := s.LatencyCount - prev.LatencyCount; n > 0 {
		keep := int(min(n, int64(len(s.Latencies))))
		out.Latencies = append([]time.Duration(nil), s.Latencies[len(s.Latencies)-keep:]...)
	}
	return out
}

// StatsReader is implemented by routers that count requests per backend.
// Callers test for it with a type assertion: not every Router does.
type StatsReader interface {
	// Stats returns each member's cumulative statistics keyed by backend
	// ID; members gone from the target group are absent.
	Stats(ctx context.Context, targetGroup string) (map[string]BackendStats, error)
}

// Stats implements StatsReader when the Router serving targetGroup does;
// otherwise it returns an error wrapping ErrNoStats.
func (m *Mux) Stats(ctx context.Context, targetGroup string) (map[string]BackendStats, error) {
	r, err := m.router(targetGroup)
	if err != nil {
		return nil, err
	}
	sr, ok := r.(StatsReader)
	if !ok {
		return nil, fmt.Errorf("traffic: target group %q: %w", targetGroup, ErrNoStats)
	}
	return sr.Stats(ctx, targetGroup)
}

var _ StatsReader = (*Mux)(nil)

// StickyToken is the sticky cookie value naming a backend: a digest of the
// target group and backend ID, the same on every replica and in every
// driver, revealing no address. A client choosing its own value can only
// land on a backend it could have been given anyway.
func StickyToken(targetGroup, id string) string {
	sum := sha256.Sum256([]byte(targetGroup + "\x00" + id))
	return hex.EncodeToString(sum[:12])
}
