package haproxy

import (
	"context"
	"strconv"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

var _ traffic.StatsReader = (*Router)(nil)

// Stats implements traffic.StatsReader from HAProxy's own per-server
// counters ("show stat"): requests are HTTP requests in http mode (req_tot)
// and sessions in tcp mode (stot); 5xx are hrsp_5xx; failed attempts are
// connection errors, response errors and retries (econ + eresp + wretr).
// HAProxy keeps no latency distribution, so Latencies is empty and
// MeanLatency is rtime (http) or ttime (tcp), an average over the server's
// last 1024 requests. The counters belong to the HAProxy process: they
// reset when it restarts or when a server is deleted and added again.
func (r *Router) Stats(ctx context.Context, targetGroup string) (map[string]traffic.BackendStats, error) {
	g, err := r.group(targetGroup)
	if err != nil {
		return nil, err
	}
	rows, err := g.api.stat(ctx, g.cfg.HAProxy.Backend)
	if err != nil {
		return nil, err
	}
	num := func(row map[string]string, col string) int64 {
		n, _ := strconv.ParseInt(row[col], 10, 64)
		return n
	}
	out := make(map[string]traffic.BackendStats, len(rows))
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, row := range rows {
		if name == "BACKEND" || name == "FRONTEND" {
			continue
		}
		id, ok := g.ids[name]
		if !ok {
			id = name
		}
		st := traffic.BackendStats{
			Requests:  num(row, "req_tot"),
			Errors5xx: num(row, "hrsp_5xx"),
			Failed:    num(row, "econ") + num(row, "eresp") + num(row, "wretr"),
		}
		mean := "rtime"
		if g.cfg.Mode == traffic.ModeTCP {
			st.Requests = num(row, "stot")
			mean = "ttime"
		}
		// Retries are attempts too; counting them keeps the bad rate <= 1.
		st.Requests += num(row, "wretr")
		st.MeanLatency = time.Duration(num(row, mean)) * time.Millisecond
		out[id] = st
	}
	return out, nil
}
