package traffic

import (
	"testing"
	"time"
)

func TestBackendStatsSince(t *testing.T) {
	lat := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x)
		}
		return out
	}
	tests := []struct {
		name        string
		prev, cur   BackendStats
		req, e5, fl int64
		lats        []time.Duration
	}{
		{"window", BackendStats{Requests: 10, Errors5xx: 1, Failed: 1, Latencies: lat(1, 2), LatencyCount: 2},
			BackendStats{Requests: 15, Errors5xx: 3, Failed: 1, Latencies: lat(1, 2, 3, 4, 5), LatencyCount: 5}, 5, 2, 0, lat(3, 4, 5)},
		{"ring wrapped: the newest kept", BackendStats{LatencyCount: 2},
			BackendStats{Requests: 10, Latencies: lat(7, 8, 9), LatencyCount: 10}, 10, 0, 0, lat(7, 8, 9)},
		{"counter reset: window from zero", BackendStats{Requests: 100, LatencyCount: 100},
			BackendStats{Requests: 4, Latencies: lat(1, 2), LatencyCount: 2}, 4, 0, 0, lat(1, 2)},
		{"no change", BackendStats{Requests: 3, Latencies: lat(1), LatencyCount: 1},
			BackendStats{Requests: 3, Latencies: lat(1), LatencyCount: 1}, 0, 0, 0, nil},
	}
	for _, tt := range tests {
		s := tt.cur.Since(tt.prev)
		if s.Requests != tt.req || s.Errors5xx != tt.e5 || s.Failed != tt.fl || len(s.Latencies) != len(tt.lats) {
			t.Errorf("%s: Since = %+v", tt.name, s)
			continue
		}
		for i := range s.Latencies {
			if s.Latencies[i] != tt.lats[i] {
				t.Errorf("%s: latencies %v, want %v", tt.name, s.Latencies, tt.lats)
			}
		}
	}
}

func TestStickyCookieValidate(t *testing.T) {
	base := TargetGroupConfig{Name: "web", Listen: "127.0.0.1:0"}
	for _, tt := range []struct {
		cookie, mode string
		ok           bool
	}{
		{"SERVERID", "", true},
		{"cutover_sticky", ModeHTTP, true},
		{"bad name", "", false},
		{"a;b", "", false},
		{"SERVERID", ModeTCP, false},
	} {
		c := base
		c.StickyCookie, c.Mode = tt.cookie, tt.mode
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("stickyCookie %q mode %q: Validate = %v", tt.cookie, tt.mode, err)
		}
	}
	if a, b := StickyToken("web", "i-1"), StickyToken("web", "i-2"); a == b || len(a) != 24 || a != StickyToken("web", "i-1") {
		t.Errorf("StickyToken is not a stable per-backend value: %q, %q", a, b)
	}
}
