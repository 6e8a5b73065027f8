package builtin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// maxAttempts bounds how many members one request may be tried on.
const maxAttempts = 3

var errNoBackend = errors.New("no healthy backend")

func (g *group) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The member is chosen in RoundTrip, where a failed attempt can
			// be retried elsewhere; the Host header stays the client's.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend"
			pr.SetXForwarded()
		},
		Transport:    roundTripper{g},
		BufferPool:   newBufferPool(),
		ErrorHandler: g.proxyError,
		ErrorLog:     slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

func (g *group) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoBackend):
		g.refused()
		writeNoBackend(w)
		return
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nobody to answer
	}
	g.log.Warn("builtin: proxy error", "method", r.Method, "path", r.URL.Path, "err", err)
	w.WriteHeader(http.StatusBadGateway)
}

type roundTripper struct{ g *group }

// RoundTrip sends req to a member, retrying on another one when that is
// safe: always when the connection could not be opened (nothing was sent),
// and for any transport error when the request is idempotent and bodiless.
func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	g := rt.g
	bodiless := req.Body == nil || req.Body == http.NoBody
	idempotent := bodiless && isIdempotent(req)
	var last, sticky *member
	var hadToken string
	if g.cfg.StickyCookie != "" {
		sticky, hadToken = g.stickyMember(req)
	}
	var lastErr error
	for range maxAttempts {
		m := g.acquirePreferring(sticky, last)
		sticky = nil // a retry goes wherever is healthy
		if m == nil {
			break
		}
		req.URL.Host = m.addr
		start := time.Now()
		resp, err := m.transport.RoundTrip(req)
		d := time.Since(start)
		code := 0
		if err == nil {
			code = resp.StatusCode
		}
		if err == nil || req.Context().Err() == nil { // a client that left is not the backend's failure
			m.stats.observe(code, d)
		}
		if g.obs != nil {
			g.obs.ObserveRequest(g.cfg.Name, m.addr, code, d)
		}
		if err == nil {
			if g.cfg.StickyCookie != "" {
				g.setSticky(resp, m, hadToken)
			}
			g.served()
			resp.Body = &memberBody{ReadCloser: resp.Body, m: m}
			return resp, nil
		}
		m.inFlight.Add(-1)
		if req.Context().Err() != nil {
			return nil, err
		}
		dialErr := isDialError(err)
		if dialErr {
			g.passiveFailure(m, err)
		}
		if !(dialErr && bodiless) && !idempotent {
			return nil, err
		}
		last, lastErr = m, err
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, errNoBackend
}

func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := r.Header["Idempotency-Key"]
	return ok
}

func isDialError(err error) bool {
	var op *net.OpError
	return (errors.As(err, &op) && op.Op == "dial") || errors.Is(err, net.ErrClosed)
}

// memberBody keeps the member counted in flight until the response body has
// been relayed, so draining waits for whole responses, not just headers.
type memberBody struct {
	io.ReadCloser
	m    *member
	done bool
}

func (b *memberBody) Close() error {
	if !b.done {
		b.done = true
		b.m.inFlight.Add(-1)
	}
	return b.ReadCloser.Close()
}

// bufferPool recycles ReverseProxy's copy buffers, which would otherwise be
// a 32 KiB allocation per request.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{&sync.Pool{New: func() any { return new([32 << 10]byte) }}}
}

func (b bufferPool) Get() []byte    { return b.p.Get().(*[32 << 10]byte)[:] }
func (b bufferPool) Put(buf []byte) { b.p.Put((*[32 << 10]byte)(buf)) }

// healthCheckUA identifies checks in backend logs.
const healthCheckUA = "cutover-healthcheck"

func (g *group) runChecks(ctx context.Context, m *member) {
	h := g.cfg.HealthCheck
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	succ, fail := 0, 0
	for {
		err := g.check(ctx, m)
		if ctx.Err() != nil {
			return
		}
		if m.suspect.Swap(false) {
			succ = 0
		}
		if err == nil {
			succ, fail = succ+1, 0
		} else {
			succ, fail = 0, fail+1
		}
		g.mu.Lock()
		m.lastErr = err
		switch {
		case !m.healthy.Load() && succ >= h.HealthyThreshold:
			m.healthy.Store(true)
			g.rebuildLocked()
			g.log.Info("builtin: backend healthy", "id", m.id, "addr", m.addr)
		case m.healthy.Load() && fail >= h.UnhealthyThreshold:
			m.healthy.Store(false)
			g.rebuildLocked()
			g.log.Warn("builtin: backend unhealthy", "id", m.id, "addr", m.addr, "err", err)
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *group) check(ctx context.Context, m *member) error {
	h := g.cfg.HealthCheck
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	if h.Path == "" { // tcp mode: a connect is the check
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", m.addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.addr+h.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", healthCheckUA)
	resp, err := g.health.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return errors.New("health check " + h.Path + ": " + resp.Status)
	}
	return nil
}
