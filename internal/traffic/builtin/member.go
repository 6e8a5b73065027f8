package builtin

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// member is one backend address of a group. Control-plane fields are guarded
// by group.mu; the fields the hot path reads are atomics.
type member struct {
	id, addr string
	token    string // sticky cookie value (traffic.StickyToken)

	stats memberStats

	// Hot path.
	removed  atomic.Bool  // dropped from the desired set: pickers must choose again
	healthy  atomic.Bool  // current health verdict
	suspect  atomic.Bool  // passive failure seen; the checker restarts its rise count
	inFlight atomic.Int64 // proxied requests (http) or connections (tcp)

	transport *http.Transport // http mode: its own pool so draining can close exactly its conns
	conns     connSet         // every backend conn, closed when the drain deadline passes

	// Control plane (group.mu).
	weight    int
	inSet     bool
	drainGen  int // bumped to cancel a pending drain when the member is re-added
	stopCheck func()
	lastErr   error
}

func (m *member) key() string { return m.id + "\x00" + m.addr }

// snapshot is an immutable view of the members eligible for new traffic.
// Rerouting swaps a whole snapshot, so a request sees either the old or the
// new membership, never a half-updated one.
type snapshot struct {
	members []*member
	cum     []int // cumulative weights, for weighted random choice
	total   int
}

func newSnapshot(ms []*member) *snapshot {
	s := &snapshot{}
	for _, m := range ms {
		if !m.inSet || m.weight <= 0 || !m.healthy.Load() {
			continue
		}
		s.total += m.weight
		s.members = append(s.members, m)
		s.cum = append(s.cum, s.total)
	}
	return s
}

// pick chooses a member by weight, avoiding skip when any other exists.
// Weighted random needs no shared mutable state, so concurrent requests
// never contend on a lock here.
func (s *snapshot) pick(skip *member) *member {
	n := len(s.members)
	if n == 0 {
		return nil
	}
	r := rand.IntN(s.total)
	i := 0
	for s.cum[i] <= r {
		i++
	}
	m := s.members[i]
	if m == skip && n > 1 {
		m = s.members[(i+1)%n]
	}
	return m
}

// connSet tracks open backend connections so a drain deadline can cut them.
type connSet struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func (s *connSet) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*trackedConn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// closeAll closes every tracked conn and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}

// dial opens a tracked connection to the member.
func (m *member) dial(ctx context.Context, network string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, network, m.addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: &m.conns}
	if !m.conns.add(tc) {
		c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

func (m *member) status() traffic.MemberStatus {
	st := traffic.MemberStatus{
		Backend:  traffic.Backend{ID: m.id, Addr: m.addr, Weight: m.weight},
		Healthy:  m.healthy.Load(),
		InFlight: int(m.inFlight.Load()),
	}
	switch {
	case !m.inSet || m.weight == 0:
		st.State = traffic.StateDraining
	case !st.Healthy:
		st.State = traffic.StateUnhealthy
	default:
		st.State = traffic.StateServing
	}
	return st
}

const dialTimeout = 5 * time.Second
