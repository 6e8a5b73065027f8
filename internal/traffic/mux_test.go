package traffic_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cutoverhq/cutover/internal/traffic"
)

type fakeRouter struct {
	applied map[string][]traffic.Backend
	closed  int
}

func (f *fakeRouter) Apply(_ context.Context, tg string, bs []traffic.Backend) error {
	f.applied[tg] = bs
	return nil
}
func (f *fakeRouter) Members(context.Context, string) ([]traffic.MemberStatus, error) {
	return nil, nil
}
func (f *fakeRouter) WaitDrained(context.Context, string) error { return nil }
func (f *fakeRouter) Close() error                              { f.closed++; return nil }

func TestMux(t *testing.T) {
	a := &fakeRouter{applied: map[string][]traffic.Backend{}}
	b := &fakeRouter{applied: map[string][]traffic.Backend{}}
	m := traffic.NewMux()
	if err := m.Handle(a, "web", "api"); err != nil {
		t.Fatal(err)
	}
	if err := m.Handle(b, "tcp"); err != nil {
		t.Fatal(err)
	}
	if err := m.Handle(b, "web"); err == nil {
		t.Error("a target group registered twice was accepted")
	}
	bs := []traffic.Backend{{ID: "i-1", Addr: "10.0.0.1:80", Weight: 1}}
	tests := []struct {
		tg      string
		wantErr error
		router  *fakeRouter
	}{
		{"web", nil, a},
		{"api", nil, a},
		{"tcp", nil, b},
		{"nope", traffic.ErrUnknownTargetGroup, nil},
	}
	for _, tt := range tests {
		err := m.Apply(t.Context(), tt.tg, bs)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Apply(%q) = %v, want %v", tt.tg, err, tt.wantErr)
		}
		if tt.router != nil && len(tt.router.applied[tt.tg]) != 1 {
			t.Errorf("Apply(%q) did not reach its router", tt.tg)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if a.closed != 1 || b.closed != 1 {
		t.Errorf("Close closed routers %d and %d times, want once each", a.closed, b.closed)
	}
}

func TestValidateBackends(t *testing.T) {
	tests := []struct {
		name string
		bs   []traffic.Backend
		ok   bool
	}{
		{"ok", []traffic.Backend{{ID: "a", Addr: "127.0.0.1:80", Weight: 256}}, true},
		{"empty ID", []traffic.Backend{{Addr: "127.0.0.1:80"}}, false},
		{"duplicate", []traffic.Backend{{ID: "a", Addr: "h:1"}, {ID: "a", Addr: "h:2"}}, false},
		{"no port", []traffic.Backend{{ID: "a", Addr: "h"}}, false},
		{"weight", []traffic.Backend{{ID: "a", Addr: "h:1", Weight: 257}}, false},
	}
	for _, tt := range tests {
		err := traffic.ValidateBackends(tt.bs)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, traffic.ErrInvalidBackend)) {
			t.Errorf("%s: ValidateBackends = %v", tt.name, err)
		}
	}
}
