// Package traffictest is the conformance suite every traffic.Router driver
// must pass, run against real backends on loopback.
package traffictest

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Paths the test backends serve besides "/" (which answers with the name).
const (
	HealthPath = "/healthz"
	SlowPath   = "/slow" // answers after SlowDelay
	SlowDelay  = 300 * time.Millisecond
	// StatusPath answers with the status code that follows it, e.g. /status/503.
	StatusPath = "/status/"
)

// ColorHeader carries the answering backend's name.
const ColorHeader = "X-Backend"

// Backend is a real HTTP server on loopback that answers with its name.
type Backend struct {
	Name string
	Addr string

	sick     atomic.Bool
	requests atomic.Int64 // non-health requests served
	inFlight atomic.Int64
	last     atomic.Int64 // unix nanos of the last non-health request's arrival
}

// StartBackend starts a backend that lives until the test ends.
func StartBackend(tb testing.TB, name string) *Backend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &Backend{Name: name, Addr: ln.Addr().String()}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	return b
}

// SetSick makes the health endpoint answer 500.
func (b *Backend) SetSick(sick bool) { b.sick.Store(sick) }

// Requests is how many non-health requests the backend received.
func (b *Backend) Requests() int64 { return b.requests.Load() }

// InFlight is how many non-health requests are being answered.
func (b *Backend) InFlight() int64 { return b.inFlight.Load() }

// LastRequest is when the latest non-health request arrived (zero if none).
func (b *Backend) LastRequest() time.Time {
	n := b.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == HealthPath {
		if b.sick.Load() {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	b.last.Store(time.Now().UnixNano())
	b.requests.Add(1)
	b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	if r.URL.Path == SlowPath {
		select {
		case <-time.After(SlowDelay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set(ColorHeader, b.Name)
	w.Header().Set("Content-Type", "text/plain")
	if code, ok := strings.CutPrefix(r.URL.Path, StatusPath); ok {
		if c, err := strconv.Atoi(code); err == nil && c >= 200 && c <= 599 {
			w.WriteHeader(c)
		}
	}
	w.Write([]byte(b.Name))
}
