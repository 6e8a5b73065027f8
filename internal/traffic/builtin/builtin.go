// Package builtin is Cutover's own load balancer: one listener per target
// group inside the server process, proxying HTTP (with net/http/httputil) or
// plain TCP to the group's members.
//
// Rerouting never fails or stalls a request: the set of members eligible for
// new traffic is an immutable snapshot swapped atomically, removed members
// drain their in-flight work, and a request whose backend refuses the
// connection is retried on another member.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// Options tune a Router.
type Options struct {
	Logger *slog.Logger // default slog.Default()
	// Observer, if set, sees every proxied attempt (metrics).
	Observer RequestObserver
}

// RequestObserver sees each attempt to send a request to a backend: code is
// the response status, or 0 when the attempt failed without a response; d
// is the time to the response headers.
type RequestObserver interface {
	ObserveRequest(targetGroup, backend string, code int, d time.Duration)
}

// Router serves target groups with the builtin load balancer.
type Router struct {
	groups    map[string]*group // fixed at New
	closeOnce sync.Once
	closeErr  error
}

var _ traffic.Router = (*Router)(nil)

// New starts a listener for each target group. Configurations are completed
// with TargetGroupConfig.WithDefaults; the Driver field is not consulted, so
// callers pick which groups to hand to which driver.
func New(cfgs []traffic.TargetGroupConfig, opts Options) (*Router, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Router{groups: make(map[string]*group, len(cfgs))}
	for _, c := range cfgs {
		c = c.WithDefaults()
		c.Driver = traffic.DriverBuiltin
		if err := c.Validate(); err != nil {
			r.Close()
			return nil, err
		}
		if _, dup := r.groups[c.Name]; dup {
			r.Close()
			return nil, fmt.Errorf("builtin: target group %q configured twice", c.Name)
		}
		g, err := startGroup(c, log.With("target_group", c.Name), opts.Observer)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.groups[c.Name] = g
	}
	return r, nil
}

func (r *Router) group(tg string) (*group, error) {
	g, ok := r.groups[tg]
	if !ok {
		return nil, fmt.Errorf("builtin: target group %q: %w", tg, traffic.ErrUnknownTargetGroup)
	}
	return g, nil
}

// Addr is the address a target group's listener is bound to, useful when
// it was configured with port 0.
func (r *Router) Addr(targetGroup string) (net.Addr, error) {
	g, err := r.group(targetGroup)
	if err != nil {
		return nil, err
	}
	return g.ln.Addr(), nil
}

// Apply implements traffic.Router.
func (r *Router) Apply(ctx context.Context, targetGroup string, backends []traffic.Backend) error {
	g, err := r.group(targetGroup)
	if err != nil {
		return err
	}
	return g.apply(ctx, backends)
}

// Members implements traffic.Router.
func (r *Router) Members(ctx context.Context, targetGroup string) ([]traffic.MemberStatus, error) {
	g, err := r.group(targetGroup)
	if err != nil {
		return nil, err
	}
	return g.statuses(), nil
}

// WaitDrained implements traffic.Router.
func (r *Router) WaitDrained(ctx context.Context, targetGroup string) error {
	g, err := r.group(targetGroup)
	if err != nil {
		return err
	}
	return g.waitDrained(ctx)
}

// Close stops every listener, cuts proxied connections and stops health checks.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		for _, g := range r.groups {
			errs = append(errs, g.close())
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
