// Package store is Cutover's persistence layer: a small transactional,
// ordered key/value document store over database/sql.
//
// Every record lives in a kind (a logical table such as "application" or
// "deployment") under a string key. Keys are ordered bytewise, so callers
// build keys as "/"-separated paths (account/region/name) and use prefix
// scans for listing and paging. Values are opaque bytes (JSON documents).
//
// Why a document store and not one SQL table per resource: the CodeDeploy
// shapes are deep, nested and evolve with the API model; storing the
// generated shapes as JSON keeps the schema stable, makes the SQLite and
// PostgreSQL backends identical in behaviour, and keeps every write a single
// transaction. Secondary indexes are ordinary records maintained by the
// caller inside the same transaction.
package store

import (
	"context"
	"errors"

	"github.com/cutoverhq/cutover/internal/changefeed"
)

// ErrNotFound is returned by Get when no record exists for the key.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned by Insert when a record already exists for the key.
var ErrExists = errors.New("store: already exists")

// Item is one record returned by a scan.
type Item struct {
	Key   string
	Value []byte
}

// Store is implemented by the SQLite and PostgreSQL backends.
type Store interface {
	// Update runs fn in a read-write transaction. If fn returns an error the
	// transaction is rolled back and that error returned; otherwise it is
	// committed. Implementations serialise conflicting writers (SQLite: a
	// single writer; PostgreSQL: row locks taken by Get inside Update), so a
	// read-modify-write inside fn never loses an update. fn may be retried on
	// serialisation failures and must therefore have no side effects outside
	// the transaction.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(tx Tx) error) error
	// Close releases the database.
	Close() error
}

// Reader is implemented by stores that can read one record without a
// transaction. One statement is its own consistent snapshot, and skipping
// BEGIN/COMMIT matters on hot paths (every request looks up its access key).
type Reader interface {
	Get(ctx context.Context, kind, key string) ([]byte, error)
}

// Get reads one record, outside a transaction when the store supports it.
func Get(ctx context.Context, s Store, kind, key string) ([]byte, error) {
	if r, ok := s.(Reader); ok {
		return r.Get(ctx, kind, key)
	}
	var v []byte
	err := s.View(ctx, func(tx Tx) error {
		var err error
		v, err = tx.Get(ctx, kind, key)
		return err
	})
	return v, err
}

// Tx is one transaction. It must not be used after the function given to
// Update or View returns.
type Tx interface {
	// Get returns the value stored under kind/key, or ErrNotFound. Inside
	// Update the record is locked until the transaction ends.
	Get(ctx context.Context, kind, key string) ([]byte, error)
	// Put creates or replaces the record.
	Put(ctx context.Context, kind, key string, value []byte) error
	// Insert creates the record or returns ErrExists.
	Insert(ctx context.Context, kind, key string, value []byte) error
	// Delete removes the record; deleting a missing record is not an error.
	// It reports whether a record was removed.
	Delete(ctx context.Context, kind, key string) (bool, error)
	// Scan returns up to limit records of kind whose key starts with prefix
	// and sorts strictly after the key "after" (empty: from the start), in
	// ascending key order. limit <= 0 means no limit.
	Scan(ctx context.Context, kind, prefix, after string, limit int) ([]Item, error)
}

// Notifier is implemented by stores that report, for every committed
// Update, which records of the watched kinds it wrote (put, inserted or
// deleted). SQLite calls publish right after the commit; PostgreSQL sends
// the changes with pg_notify inside the transaction (channel
// [changefeed.Channel]), so every replica's listener hears of them exactly
// when they are committed, and publish is not called.
type Notifier interface {
	NotifyChanges(kinds []string, publish func([]changefeed.Change))
}
