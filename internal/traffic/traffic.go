// Package traffic defines how Cutover moves live traffic between hosts.
//
// A deployment group's loadBalancerInfo names target groups. Each target
// group is defined in the server configuration (TargetGroupConfig) and served
// by a driver: the builtin load balancer (package builtin) or a real HAProxy
// driven over its runtime API (package haproxy). The deployment engine talks
// to every driver through Router, always with the complete desired membership
// of a target group. Because Apply is desired-state and idempotent, a server
// that crashed in the middle of a deployment recovers by applying again.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// MaxWeight is the largest backend weight; both drivers accept 0..MaxWeight.
const MaxWeight = 256

// Backend is one host in a target group.
type Backend struct {
	ID     string // instance name; the identity Apply diffs on
	Addr   string // host:port that receives the traffic
	Weight int    // 0..MaxWeight; 0 keeps the host registered but drained
}

// State is what a member is doing with new traffic.
type State string

// Member states reported by Router.Members.
const (
	StateServing   State = "serving"   // registered, healthy, weight > 0
	StateDraining  State = "draining"  // removed or weight 0: no new traffic, in-flight work finishing
	StateUnhealthy State = "unhealthy" // registered but failing health checks: no traffic
)

// MemberStatus is the observed state of one member of a target group.
type MemberStatus struct {
	Backend
	Healthy  bool
	State    State
	InFlight int // requests (http) or connections (tcp) currently proxied to it
}

// Router moves traffic for one or more target groups.
//
// Implementations are safe for concurrent use; concurrent Apply calls for one
// target group are serialised.
type Router interface {
	// Apply makes the target group's membership exactly backends (keyed by
	// ID). Backends not listed are drained: they get no new requests or
	// connections, and in-flight ones may finish within the deregistration
	// delay before the backend is removed.
	//
	// New backends receive traffic only once healthy (when health checks are
	// configured). Apply returns when the new state is in effect for new
	// requests: every listed backend with weight > 0 healthy and serving, and
	// removed backends no longer given new requests. Removal happens only
	// after the new backends are healthy, so a failed Apply (an error wrapping
	// ErrNotHealthy and the context's error) never leaves the target group
	// with less serving capacity than before; listed backends stay registered
	// and join once healthy. Draining continues in the background after Apply
	// returns; WaitDrained waits for it.
	Apply(ctx context.Context, targetGroup string, backends []Backend) error

	// Members reports every member, including ones still draining, sorted by ID.
	Members(ctx context.Context, targetGroup string) ([]MemberStatus, error)

	// WaitDrained returns once no removed backend of the target group is
	// still draining.
	WaitDrained(ctx context.Context, targetGroup string) error

	// Close stops routing. Drivers owning listeners close them.
	Close() error
}

// Errors shared by all drivers; test with errors.Is.
var (
	ErrUnknownTargetGroup = errors.New("unknown target group")
	ErrNotHealthy         = errors.New("backends not healthy")
	ErrInvalidBackend     = errors.New("invalid backend")
)

// Driver names for TargetGroupConfig.Driver.
const (
	DriverBuiltin = "builtin"
	DriverHAProxy = "haproxy"
)

// Modes for TargetGroupConfig.Mode.
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// TargetGroupConfig defines a target group in the server configuration.
type TargetGroupConfig struct {
	Name   string // the name loadBalancerInfo refers to
	Driver string // DriverBuiltin or DriverHAProxy
	Listen string // address the load balancer listens on (builtin listener, HAProxy frontend bind)
	Mode   string // ModeHTTP (default) or ModeTCP
	Port   int    // backend port on each host; the engine builds Backend.Addr with BackendAddr
	// Account owns the target group, as the account of an AWS target
	// group's ARN: only its deployment groups may name it. Region, when
	// set, narrows it to that region of the account. Empty: any.
	Account, Region string

	HealthCheck HealthCheck
	// DeregistrationDelay bounds how long a removed backend's in-flight work
	// may run before its connections are closed. Default 30s.
	DeregistrationDelay time.Duration
	HAProxy             HAProxyConfig
	// StickyCookie, when set, names the cookie that keeps a client on one
	// backend (http mode) while weights change, e.g. during a traffic shift.
	StickyCookie string
}

// HealthCheck configures active health checks. Checks are enabled when Path
// is set or Interval > 0; in tcp mode a check is a connect.
type HealthCheck struct {
	Path               string        // HTTP GET path; 2xx/3xx is healthy. Default "/" in http mode
	Interval           time.Duration // default 5s
	Timeout            time.Duration // default 2s; may exceed Interval (a slow check delays the next)
	HealthyThreshold   int           // consecutive successes to become healthy; default 2
	UnhealthyThreshold int           // consecutive failures to become unhealthy; default 2
}

// Enabled reports whether active health checks are configured.
func (h HealthCheck) Enabled() bool { return h.Path != "" || h.Interval > 0 }

// HAProxyConfig locates the HAProxy objects serving a target group.
type HAProxyConfig struct {
	Socket  string // runtime API unix socket (stats socket ... level admin)
	Backend string // backend name in haproxy.cfg; default is the target group name
}

// OwnedBy reports whether deployment groups of account and region may
// name the target group.
func (c TargetGroupConfig) OwnedBy(account, region string) bool {
	return (c.Account == "" || c.Account == account) && (c.Region == "" || c.Region == region)
}

// BackendAddr is the traffic address of host in this target group.
func (c TargetGroupConfig) BackendAddr(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(c.Port))
}

// WithDefaults returns c with every unset optional field filled in.
func (c TargetGroupConfig) WithDefaults() TargetGroupConfig {
	if c.Driver == "" {
		c.Driver = DriverBuiltin
	}
	if c.Mode == "" {
		c.Mode = ModeHTTP
	}
	if c.DeregistrationDelay == 0 {
		c.DeregistrationDelay = 30 * time.Second
	}
	if c.HAProxy.Backend == "" {
		c.HAProxy.Backend = c.Name
	}
	h := &c.HealthCheck
	if h.Enabled() {
		if h.Path == "" && c.Mode == ModeHTTP {
			h.Path = "/"
		}
		if h.Interval <= 0 {
			h.Interval = 5 * time.Second
		}
		if h.Timeout <= 0 {
			h.Timeout = 2 * time.Second
		}
		if h.HealthyThreshold <= 0 {
			h.HealthyThreshold = 2
		}
		if h.UnhealthyThreshold <= 0 {
			h.UnhealthyThreshold = 2
		}
	}
	return c
}

// Validate reports configuration errors that no default can fix.
func (c TargetGroupConfig) Validate() error {
	if c.Name == "" {
		return errors.New("traffic: target group without a name")
	}
	switch c.Mode {
	case "", ModeHTTP, ModeTCP:
	default:
		return fmt.Errorf("traffic: target group %q: unknown mode %q (want %q or %q)", c.Name, c.Mode, ModeHTTP, ModeTCP)
	}
	switch c.Driver {
	case "", DriverBuiltin:
		if c.Listen == "" {
			return fmt.Errorf("traffic: target group %q: builtin driver needs a listen address", c.Name)
		}
	case DriverHAProxy:
		if c.HAProxy.Socket == "" {
			return fmt.Errorf("traffic: target group %q: haproxy driver needs the runtime API socket", c.Name)
		}
	default:
		return fmt.Errorf("traffic: target group %q: unknown driver %q", c.Name, c.Driver)
	}
	if c.StickyCookie != "" {
		if c.Mode == ModeTCP {
			return fmt.Errorf("traffic: target group %q: stickyCookie needs http mode", c.Name)
		}
		if !validCookieName(c.StickyCookie) {
			return fmt.Errorf("traffic: target group %q: stickyCookie %q is not a valid cookie name", c.Name, c.StickyCookie)
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("traffic: target group %q: port %d out of range", c.Name, c.Port)
	}
	return nil
}

// ValidateBackends checks a desired membership before a driver acts on it.
func ValidateBackends(backends []Backend) error {
	seen := make(map[string]bool, len(backends))
	for _, b := range backends {
		if b.ID == "" {
			return fmt.Errorf("%w: empty ID", ErrInvalidBackend)
		}
		if seen[b.ID] {
			return fmt.Errorf("%w: duplicate ID %q", ErrInvalidBackend, b.ID)
		}
		seen[b.ID] = true
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			return fmt.Errorf("%w: %q: address %q: %w", ErrInvalidBackend, b.ID, b.Addr, err)
		}
		if b.Weight < 0 || b.Weight > MaxWeight {
			return fmt.Errorf("%w: %q: weight %d outside 0..%d", ErrInvalidBackend, b.ID, b.Weight, MaxWeight)
		}
	}
	return nil
}

// validCookieName reports whether name is an RFC 6265 token.
func validCookieName(name string) bool {
	if len(name) > 64 {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return name != ""
}
