// Package postgres is the PostgreSQL backend of [store.Store], built on
// database/sql and github.com/jackc/pgx/v5/stdlib.
//
// Update runs at READ COMMITTED. Get inside Update reads with SELECT ...
// FOR UPDATE, so the row stays locked until the transaction ends and a
// concurrent read-modify-write of the same record waits instead of losing
// an update. FOR UPDATE cannot lock a row that does not exist, so when Get
// finds nothing it also takes a transaction-scoped advisory lock on the
// (kind, key) pair and looks again: two transactions that both find a key
// missing and create it are serialised as well. The advisory lock only
// covers transactions that Get the key first; a blind Put from another
// transaction is not held back by it.
//
// Lock waits can deadlock (two transactions locking the same keys in
// opposite orders); PostgreSQL aborts one with deadlock_detected, and
// Update runs the whole function again, as it does on serialization_failure.
//
// View runs in a READ ONLY REPEATABLE READ transaction: one snapshot for
// the whole function, taken at its first statement.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/internal/sqlkv"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is the pg_advisory_xact_lock key that serialises schema
// migrations when several servers start against one database at once. It
// is an arbitrary constant ("cutover" in ASCII); record locks use the
// two-int4 form of advisory locks, a separate key space.
const migrationLockID = 0x6375746f766572

// maxAttempts bounds how often Update runs fn when PostgreSQL aborts the
// transaction with a serialization failure or deadlock.
const maxAttempts = 5

var dialect = sqlkv.Dialect{
	Name:         "postgres",
	Get:          "SELECT value FROM records WHERE kind = $1 AND key = $2",
	GetForUpdate: "SELECT value FROM records WHERE kind = $1 AND key = $2 FOR UPDATE",
	Put:          "INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
	Insert:       "INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO NOTHING",
	Delete:       "DELETE FROM records WHERE kind = $1 AND key = $2",
	LockAbsent:   "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
	Placeholder:  func(n int) string { return fmt.Sprintf("$%d", n) },
}

// DB is a PostgreSQL-backed [store.Store]. It is safe for concurrent use.
type DB struct {
	db *sqlkv.Pool
}

var _ store.Store = (*DB)(nil)

// MaxConns is the default bound on the connections one process (one
// replica) opens to PostgreSQL. Unbounded, thousands of agents' long polls
// each took one at once and the server refused connections past
// max_connections, failing polls with 500s; bounded, a request waits for a
// free connection. Three replicas stay within PostgreSQL's default
// max_connections (100). SetMaxConns changes it.
const MaxConns = 30

// Open connects to the database at url (a postgres:// URL or key=value
// connection string as understood by pgx) and applies any pending schema
// migrations.
func Open(ctx context.Context, url string) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	n, err := migrate(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if n > 0 {
		slog.InfoContext(ctx, "store migrated", "backend", "postgres", "migrations", n)
	}
	pool := &sqlkv.Pool{DB: db}
	if err := pool.Prepare(ctx, &dialect); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &DB{db: pool}, nil
}

// SetMaxConns sets the bound on open connections (n > 0): raise it for a
// PostgreSQL with more max_connections per replica, lower it to fit more
// replicas.
func (d *DB) SetMaxConns(n int) {
	d.db.DB.SetMaxOpenConns(n)
	d.db.DB.SetMaxIdleConns(n)
}

// Stats reports the connection pool's state.
func (d *DB) Stats() sql.DBStats { return d.db.DB.Stats() }

func migrate(ctx context.Context, db *sql.DB) (int, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	// Taken before schema_migrations is even created: CREATE TABLE IF NOT
	// EXISTS itself races between concurrent transactions.
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockID)); err != nil {
		return 0, fmt.Errorf("migrate: lock: %w", err)
	}
	n, err := sqlkv.Migrate(ctx, tx, fsys)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return n, nil
}

// NotifyChanges implements [store.Notifier]: writes of kinds are announced
// with pg_notify in their own transaction; publish is not used (every
// replica's [changefeed.Listener] hears them, this one's included).
func (db *DB) NotifyChanges(kinds []string, _ func([]changefeed.Change)) {
	h := &sqlkv.ChangeHooks{Kinds: map[string]bool{}, InTx: notify}
	for _, k := range kinds {
		h.Kinds[k] = true
	}
	db.db.SetChangeHooks(h)
}

func notify(ctx context.Context, tx *sql.Tx, changes []changefeed.Change) error {
	for _, p := range changefeed.Payloads(changes) {
		if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", changefeed.Channel, p); err != nil {
			return err
		}
	}
	return nil
}

// Update implements [store.Store]. fn is run again, up to a few times, if
// PostgreSQL aborts the transaction with a serialization failure (40001) or
// a deadlock (40P01).
func (db *DB) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	opts := &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	for attempt := 1; ; attempt++ {
		err := sqlkv.Run(ctx, db.db, opts, &dialect, true, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		slog.DebugContext(ctx, "store update retried", "backend", "postgres", "attempt", attempt, "err", err)
		// Jitter so that the transactions that deadlocked do not
		// collide again in lockstep.
		d := time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return err
		}
	}
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01"
}

// Get implements [store.Reader].
func (db *DB) Get(ctx context.Context, kind, key string) ([]byte, error) {
	return db.db.Get(ctx, &dialect, kind, key)
}

// View implements [store.Store].
func (db *DB) View(ctx context.Context, fn func(tx store.Tx) error) error {
	opts := &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	return sqlkv.Run(ctx, db.db, opts, &dialect, false, fn)
}

// Close implements [store.Store].
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}
