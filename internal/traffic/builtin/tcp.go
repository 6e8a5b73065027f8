package builtin

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

func (g *group) serveTCP() {
	defer g.bg.Done()
	var backoff time.Duration
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn("builtin: accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := &trackedConn{Conn: c, set: &g.conns}
		if !g.conns.add(tc) {
			c.Close()
			return
		}
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			defer tc.Close()
			g.handleConn(tc)
		}()
	}
}

// handleConn relays one client connection to a member. Connect failures are
// retried on another member: nothing has been sent yet.
func (g *group) handleConn(client net.Conn) {
	var last *member
	for range maxAttempts {
		m := g.acquire(last)
		if m == nil {
			if last == nil {
				g.refused()
			}
			return
		}
		backend, err := m.dial(g.ctx, "tcp")
		if err != nil {
			m.inFlight.Add(-1)
			g.passiveFailure(m, err)
			last = m
			continue
		}
		g.served()
		relay(client, backend)
		backend.Close()
		m.inFlight.Add(-1)
		return
	}
}

// relay copies both ways, passing half-closes through, until both sides are
// done or one connection is cut (e.g. by the drain deadline).
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go pipe(&wg, a, b)
	go pipe(&wg, b, a)
	wg.Wait()
}

func pipe(wg *sync.WaitGroup, dst, src net.Conn) {
	defer wg.Done()
	// Copy between the raw conns so the kernel can splice.
	_, err := io.Copy(unwrap(dst), unwrap(src))
	if err != nil {
		// One side failed: tear down both so the other copy ends too.
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := unwrap(dst).(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

func unwrap(c net.Conn) net.Conn {
	if tc, ok := c.(*trackedConn); ok {
		return tc.Conn
	}
	return c
}
