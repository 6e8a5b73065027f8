// Package lease gives one replica of a Cutover server at a time the right
// to drive a unit of work (a deployment, a pending teardown, a target
// group's HAProxy), with a fencing token.
//
// A lease is a store record (owner, epoch, expiry). Why a record and not
// PostgreSQL advisory locks: a session lock of a dead replica is held until
// TCP keepalive notices (minutes), it carries no fencing token, it breaks
// behind transaction-mode poolers, and SQLite has nothing like it. A record
// works the same on both backends, and its epoch fences every write: the
// owner checks, inside each transaction that changes the work's state, that
// the lease still has its owner and epoch ([Manager.Check]). A replica
// that stalled past its expiry and lost the lease to another therefore
// cannot commit anything, whatever the clocks say; expiry only decides how
// soon a dead owner's work is taken over.
//
// Expiry uses the replicas' clocks (the store is a key/value store with no
// server-side time); clock skew between replicas shortens or lengthens the
// takeover delay by the skew, it never lets two owners commit.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/internal/store"
)

// Kind is the store kind of lease records.
const Kind = "lease"

// ErrLost is returned when the lease is held by another owner or epoch.
var ErrLost = errors.New("lease lost to another replica")

// record is a lease as stored.
type record struct {
	Owner   string    `json:"owner"`
	Epoch   int64     `json:"epoch"`
	Expires time.Time `json:"expires"`
}

// Lease is a held lease.
type Lease struct {
	Name  string
	Epoch int64
}

// Manager takes, renews and checks leases for one owner.
type Manager struct {
	Store store.Store
	Owner string
	TTL   time.Duration
	Now   func() time.Time
	// Exclusive is set when this process is the only one using the store
	// (SQLite): a lease held by another owner is a previous run's, and is
	// taken at once instead of after its expiry.
	Exclusive bool
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func get(ctx context.Context, tx store.Tx, name string) (record, bool, error) {
	var rec record
	b, err := tx.Get(ctx, Kind, name)
	if errors.Is(err, store.ErrNotFound) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, fmt.Errorf("lease %s: %w", name, err)
	}
	return rec, true, nil
}

// Free reports whether name is free for this manager to take: nobody holds
// it, its holder let it expire, or (Exclusive) another owner holds it.
func (m *Manager) Free(ctx context.Context, tx store.Tx, name string) (bool, error) {
	rec, ok, err := get(ctx, tx, name)
	if err != nil || !ok {
		return err == nil, err
	}
	return m.free(rec), nil
}

func (m *Manager) free(rec record) bool {
	return rec.Owner == m.Owner || m.Exclusive || !m.now().Before(rec.Expires)
}

// Holds reports whether this manager's owner holds name now, as the store
// says and by this replica's clock: work done outside the fenced
// transactions (polling, say) asks before it starts.
func (m *Manager) Holds(ctx context.Context, name string) (bool, error) {
	var rec record
	var found bool
	err := m.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, found, err = get(ctx, tx, name)
		return err
	})
	return err == nil && found && rec.Owner == m.Owner && m.now().Before(rec.Expires), err
}

// Acquire takes the lease if it is free, bumping its epoch. ok is false
// when another owner holds it.
func (m *Manager) Acquire(ctx context.Context, name string) (l Lease, ok bool, err error) {
	err = m.Store.Update(ctx, func(tx store.Tx) error {
		rec, found, err := get(ctx, tx, name)
		if err != nil {
			return err
		}
		if found && !m.free(rec) {
			ok = false
			return nil
		}
		rec = record{Owner: m.Owner, Epoch: rec.Epoch + 1, Expires: m.now().Add(m.TTL)}
		b, _ := json.Marshal(rec)
		ok, l = true, Lease{Name: name, Epoch: rec.Epoch}
		return tx.Put(ctx, Kind, name, b)
	})
	return l, ok, err
}

// Renew extends a held lease; ErrLost when it is no longer held.
func (m *Manager) Renew(ctx context.Context, l Lease) error {
	return m.Store.Update(ctx, func(tx store.Tx) error {
		if err := m.Check(ctx, tx, l); err != nil {
			return err
		}
		b, _ := json.Marshal(record{Owner: m.Owner, Epoch: l.Epoch, Expires: m.now().Add(m.TTL)})
		return tx.Put(ctx, Kind, l.Name, b)
	})
}

// Check fences a transaction: it fails with ErrLost unless l is still held
// by this owner with this epoch. Inside Update the lease record stays
// locked until the transaction ends, so no takeover commits in between.
func (m *Manager) Check(ctx context.Context, tx store.Tx, l Lease) error {
	rec, found, err := get(ctx, tx, l.Name)
	if err != nil {
		return err
	}
	if !found || rec.Owner != m.Owner || rec.Epoch != l.Epoch {
		return fmt.Errorf("%s: %w", l.Name, ErrLost)
	}
	return nil
}

// Drop ends the work a lease covered: it checks the lease, then deletes
// it, in the caller's transaction.
func (m *Manager) Drop(ctx context.Context, tx store.Tx, l Lease) error {
	if err := m.Check(ctx, tx, l); err != nil {
		return err
	}
	_, err := tx.Delete(ctx, Kind, l.Name)
	return err
}

// Release gives up a lease so that another replica can take it at once.
func (m *Manager) Release(ctx context.Context, l Lease) error {
	return m.Store.Update(ctx, func(tx store.Tx) error {
		if err := m.Check(ctx, tx, l); err != nil {
			return nil // not ours any more: nothing to give up
		}
		b, _ := json.Marshal(record{Owner: "", Epoch: l.Epoch})
		return tx.Put(ctx, Kind, l.Name, b)
	})
}

// DropExpired deletes, in the caller's transaction, the leases named with
// prefix that expired more than age ago: leases of work that no longer
// exists (a replica's own, under a name no later run uses again).
func (m *Manager) DropExpired(ctx context.Context, tx store.Tx, prefix string, age time.Duration) error {
	items, err := tx.Scan(ctx, Kind, prefix, "", 1000)
	if err != nil {
		return err
	}
	for _, it := range items {
		var rec record
		if json.Unmarshal(it.Value, &rec) != nil || m.now().Sub(rec.Expires) < age {
			continue
		}
		if _, err := tx.Delete(ctx, Kind, it.Key); err != nil {
			return err
		}
	}
	return nil
}
