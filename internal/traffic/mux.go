package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
)

// Mux routes calls for each target group to the Router (driver) serving it,
// so the deployment engine can drive traffic knowing only target group names.
// A Mux is itself a Router. The zero value is not usable; call NewMux.
type Mux struct {
	mu     sync.RWMutex
	groups map[string]Router
}

var _ Router = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{groups: make(map[string]Router)} }

// Handle makes r serve the named target groups. A target group can be
// handled by only one Router.
func (m *Mux) Handle(r Router, targetGroups ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tg := range targetGroups {
		if _, ok := m.groups[tg]; ok {
			return fmt.Errorf("traffic: target group %q registered twice", tg)
		}
	}
	for _, tg := range targetGroups {
		m.groups[tg] = r
	}
	return nil
}

// TargetGroups lists the handled target group names, sorted.
func (m *Mux) TargetGroups() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.groups))
	for n := range m.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (m *Mux) router(tg string) (Router, error) {
	m.mu.RLock()
	r, ok := m.groups[tg]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("traffic: target group %q: %w (not in the server configuration)", tg, ErrUnknownTargetGroup)
	}
	return r, nil
}

// Addr is the address target group tg's listener is bound to, for routers
// that listen themselves (builtin); it tells the port chosen for a
// listener configured with port 0. Routers driving a load balancer they do
// not own (HAProxy) have no such address.
func (m *Mux) Addr(tg string) (net.Addr, error) {
	r, err := m.router(tg)
	if err != nil {
		return nil, err
	}
	l, ok := r.(interface {
		Addr(string) (net.Addr, error)
	})
	if !ok {
		return nil, fmt.Errorf("traffic: target group %q: its router listens on no address of its own", tg)
	}
	return l.Addr(tg)
}

// Apply implements Router.
func (m *Mux) Apply(ctx context.Context, targetGroup string, backends []Backend) error {
	r, err := m.router(targetGroup)
	if err != nil {
		return err
	}
	return r.Apply(ctx, targetGroup, backends)
}

// Members implements Router.
func (m *Mux) Members(ctx context.Context, targetGroup string) ([]MemberStatus, error) {
	r, err := m.router(targetGroup)
	if err != nil {
		return nil, err
	}
	return r.Members(ctx, targetGroup)
}

// WaitDrained implements Router.
func (m *Mux) WaitDrained(ctx context.Context, targetGroup string) error {
	r, err := m.router(targetGroup)
	if err != nil {
		return err
	}
	return r.WaitDrained(ctx, targetGroup)
}

// Close closes every distinct Router once.
func (m *Mux) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[Router]bool)
	var errs []error
	for _, r := range m.groups {
		if seen[r] {
			continue
		}
		seen[r] = true
		errs = append(errs, r.Close())
	}
	clear(m.groups)
	return errors.Join(errs...)
}
