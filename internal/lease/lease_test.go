package lease_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/lease"
	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// clock is a settable time shared by the managers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLease(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"postgres", func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.Start(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			defer st.Close()
			testLease(t, st)
		})
	}
}

func testLease(t *testing.T, st store.Store) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	a := &lease.Manager{Store: st, Owner: "a", TTL: 6 * time.Second, Now: c.now}
	b := &lease.Manager{Store: st, Owner: "b", TTL: 6 * time.Second, Now: c.now}
	holds := func(step string, m *lease.Manager, want bool) {
		t.Helper()
		if got, err := m.Holds(ctx, "deployment/d-1"); err != nil || got != want {
			t.Errorf("%s: %s holds: %v %v, want %v", step, m.Owner, got, err, want)
		}
	}
	holds("no lease yet", a, false)

	la, ok, err := a.Acquire(ctx, "deployment/d-1")
	if err != nil || !ok || la.Epoch != 1 {
		t.Fatalf("a acquires: %+v %v %v", la, ok, err)
	}
	if _, ok, err := b.Acquire(ctx, "deployment/d-1"); err != nil || ok {
		t.Fatalf("b took a held lease: %v %v", ok, err)
	}
	holds("acquired by a", a, true)
	holds("acquired by a", b, false)
	// A renewal by a non-owner changes nothing, even with the right epoch.
	if err := b.Renew(ctx, la); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("b renewed a's lease: %v", err)
	}
	c.add(4 * time.Second)
	if err := a.Renew(ctx, la); err != nil {
		t.Fatal(err)
	}
	c.add(4 * time.Second) // 8 s after acquiring, 4 s after renewing: still a's
	if _, ok, _ := b.Acquire(ctx, "deployment/d-1"); ok {
		t.Fatal("b took a lease renewed 4 s ago")
	}
	c.add(3 * time.Second) // expired
	holds("expired, not yet taken", a, false)
	lb, ok, err := b.Acquire(ctx, "deployment/d-1")
	if err != nil || !ok || lb.Epoch != 2 {
		t.Fatalf("b takes the expired lease: %+v %v %v", lb, ok, err)
	}
	holds("taken over by b", b, true)
	holds("taken over by b", a, false)
	// a, back from a pause, is fenced off: its renewal and its writes fail.
	if err := a.Renew(ctx, la); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a renewed a lost lease: %v", err)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := a.Check(ctx, tx, la); err != nil {
			return err
		}
		return tx.Put(ctx, "deployment", "d-1", []byte("stale"))
	})
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a committed under a lost lease: %v", err)
	}
	if err := a.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	if err := b.Renew(ctx, lb); err != nil {
		t.Fatalf("a's release of a lease it lost took it from b: %v", err)
	}
	// b gives it up: a may take it at once.
	if err := b.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
	holds("released", b, false)
	la2, ok, err := a.Acquire(ctx, "deployment/d-1")
	if err != nil || !ok || la2.Epoch != 3 {
		t.Fatalf("a takes a released lease: %+v %v %v", la2, ok, err)
	}
	// Exclusive (one process on the store): a previous run's lease is stale.
	x := &lease.Manager{Store: st, Owner: "x", TTL: 6 * time.Second, Now: c.now, Exclusive: true}
	if lx, ok, err := x.Acquire(ctx, "deployment/d-1"); err != nil || !ok || lx.Epoch != 4 {
		t.Fatalf("exclusive acquire: %+v %v %v", lx, ok, err)
	}
	err = st.Update(ctx, func(tx store.Tx) error { return a.Drop(ctx, tx, la2) })
	if !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a dropped a lease it no longer holds: %v", err)
	}
}
