package server

import (
	"net"
	"sync"
	"time"
)

// Defaults of the bounds on clients, hostile or not.
const (
	// DefaultReadHeaderTimeout bounds the TLS handshake and the request
	// headers of each request.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxConnections bounds open client connections. Every agent
	// holds one (its long poll), so size it above the fleet.
	DefaultMaxConnections = 4096
	// maxHeaderBytes is far above what a SigV4-signed request carries.
	maxHeaderBytes = 64 << 10
)

// limitListener accepts at most cap(slots) connections at once; Accept
// waits for one to close beyond that, leaving newcomers in the kernel's
// backlog rather than in the server's memory.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
