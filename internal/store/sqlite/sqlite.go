// Package sqlite is the SQLite backend of [store.Store], built on
// database/sql and the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL: every acknowledged
// Update has been fsynced to the WAL before Update returns, so no committed
// data is lost across process or machine crashes (synchronous=NORMAL may
// lose the last transactions on power loss, which a deployment service that
// has told a client "deployment created" cannot afford).
//
// Writes go through a pool of exactly one connection whose transactions
// begin with BEGIN IMMEDIATE: writers queue in database/sql instead of
// failing with SQLITE_BUSY, and a transaction never has to upgrade a read
// lock to a write lock (the classic SQLite deadlock). Reads go through a
// separate pool of query-only connections; in WAL mode they run alongside
// the writer on their own snapshot.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"syscall"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/internal/sqlkv"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeoutMS bounds how long a connection waits for a lock held by
// another process (a backup tool, a second server by mistake) before
// failing with SQLITE_BUSY. Within one process the writer pool already
// serialises writers.
const busyTimeoutMS = 10000

var dialect = sqlkv.Dialect{
	Name:         "sqlite",
	Get:          "SELECT value FROM records WHERE kind = ?1 AND key = ?2",
	GetForUpdate: "SELECT value FROM records WHERE kind = ?1 AND key = ?2", // the single writer already excludes others
	Put:          "INSERT INTO records (kind, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
	Insert:       "INSERT INTO records (kind, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (kind, key) DO NOTHING",
	Delete:       "DELETE FROM records WHERE kind = ?1 AND key = ?2",
	Placeholder:  func(n int) string { return fmt.Sprintf("?%d", n) },
}

// DB is a SQLite-backed [store.Store]. It is safe for concurrent use.
// Update must not be called from inside another Update on the same DB: the
// single writer connection is held by the outer one, so the inner would
// wait forever.
type DB struct {
	writer  *sqlkv.Pool
	reader  *sqlkv.Pool
	version versionConn
	// walIndex is the mapped WAL-index header (DataVersion), nil if the
	// -shm file could not be mapped.
	walIndex []byte
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite database file at path and
// applies any pending schema migrations. The file's directory must exist.
func Open(ctx context.Context, path string) (*DB, error) {
	writer, err := sql.Open("sqlite", dsn(path, url.Values{
		"_txlock":       {"immediate"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	n, err := migrate(ctx, writer)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if n > 0 {
		slog.InfoContext(ctx, "store migrated", "backend", "sqlite", "path", path, "migrations", n)
	}

	// The reader pool is opened after the writer has switched the file to
	// WAL (a persistent setting), so readers never see rollback-journal mode.
	reader, err := sql.Open("sqlite", dsn(path, url.Values{
		"_query_only": {"1"},
	}))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	nr := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(nr)
	reader.SetMaxIdleConns(nr)
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	version, err := sql.Open("sqlite", dsn(path, url.Values{"_query_only": {"1"}}))
	if err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	version.SetMaxOpenConns(1)
	db := &DB{writer: &sqlkv.Pool{DB: writer}, reader: &sqlkv.Pool{DB: reader}, version: versionConn{pool: version}}
	// Pin the version connection (it reads once): the -shm file stays
	// while any connection is open.
	if _, err := db.version.get(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if mem, err := mapWALIndex(path); err == nil {
		db.walIndex = mem
	} else {
		slog.WarnContext(ctx, "sqlite: WAL index not mapped, change checks use PRAGMA data_version", "path", path, "err", err)
	}
	for _, p := range []*sqlkv.Pool{db.writer, db.reader} {
		if err := p.Prepare(ctx, &dialect); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
	}
	return db, nil
}

// dsn builds a file: URI, so that a path holding '?' or '#' reaches SQLite
// intact, with the connection settings every connection of a pool applies
// when it is opened.
func dsn(path string, q url.Values) string {
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	if u.Path != "" && u.Path[0] != '/' {
		// A relative path must not gain the "//" of an authority.
		return "file:" + u.EscapedPath() + "?" + u.RawQuery
	}
	return u.String()
}

func migrate(ctx context.Context, db *sql.DB) (int, error) {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: a second process migrating waits
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	n, err := sqlkv.Migrate(ctx, tx, fsys)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return n, nil
}

// NotifyChanges implements [store.Notifier]: publish is called after each
// commit that wrote records of kinds. Other processes' writes to the same
// file are not reported.
func (db *DB) NotifyChanges(kinds []string, publish func([]changefeed.Change)) {
	h := &sqlkv.ChangeHooks{Kinds: map[string]bool{}, AfterCommit: publish}
	for _, k := range kinds {
		h.Kinds[k] = true
	}
	db.writer.SetChangeHooks(h)
}

// Update implements [store.Store]. Transactions run one at a time.
func (db *DB) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return sqlkv.Run(ctx, db.writer, nil, &dialect, true, fn)
}

// View implements [store.Store]. The snapshot is taken at the first read.
func (db *DB) View(ctx context.Context, fn func(tx store.Tx) error) error {
	return sqlkv.Run(ctx, db.reader, &sql.TxOptions{ReadOnly: true}, &dialect, false, fn)
}

// Get implements [store.Reader].
func (db *DB) Get(ctx context.Context, kind, key string) ([]byte, error) {
	return db.reader.Get(ctx, &dialect, kind, key)
}

// Close implements [store.Store]. It waits for running transactions.
func (db *DB) Close() error {
	rerr := db.reader.Close()
	if err := db.version.close(); rerr == nil {
		rerr = err
	}
	if db.walIndex != nil {
		_ = syscall.Munmap(db.walIndex)
		db.walIndex = nil
	}
	// Closing the writer last lets SQLite checkpoint the WAL into the
	// main file as the last connection goes.
	if err := db.writer.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("sqlite: close: %w", rerr)
	}
	return nil
}
