// Package sqlkv is the part of the store backends that does not depend on
// the SQL dialect: running a function in a transaction, the [store.Tx]
// implementation, key validation, prefix ranges and embedded migrations.
// The SQLite and PostgreSQL packages supply a [Dialect] and their own
// connection handling.
package sqlkv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/store"
)

// errReadOnly is returned by writes inside View.
var errReadOnly = errors.New("write in a read-only transaction")

// Dialect is the SQL one backend speaks. Every statement takes kind and key
// as its first two parameters, in that order.
type Dialect struct {
	// Name prefixes error messages ("sqlite", "postgres").
	Name string
	// Get selects value; GetForUpdate also locks the row for the rest of
	// the transaction (the same as Get where writers are already serialised).
	Get, GetForUpdate string
	// Put upserts (kind, key, value); Insert inserts (kind, key, value) and
	// affects no row on conflict; Delete deletes (kind, key).
	Put, Insert, Delete string
	// LockAbsent, if not empty, runs inside Update when Get finds no record,
	// before Get looks again. PostgreSQL needs it because FOR UPDATE cannot
	// lock a row that does not exist: without it two transactions could
	// both see a key missing and both create it, losing one update.
	LockAbsent string
	// Placeholder returns the SQL text of the n-th (1-based) parameter.
	Placeholder func(n int) string
}

// ValidName reports whether s can be used as a kind or key: valid UTF-8
// without NUL. PostgreSQL's text type rejects both invalid UTF-8 and NUL;
// rejecting them in every backend keeps the backends interchangeable.
func ValidName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// PrefixEnd returns the smallest string that sorts after every string
// starting with prefix, or ok == false if there is none (prefix is empty or
// made only of U+10FFFF).
//
// Incrementing the last byte, the usual trick, can produce invalid UTF-8
// ("\x7f" becomes "\x80"), which PostgreSQL refuses as a text parameter.
// Bytewise order of UTF-8 is code point order and UTF-8 is prefix-free, so
// replacing the last rune by the next code point gives the same bound while
// staying valid. The byte 0xFF never occurs in UTF-8; its counterpart here is
// U+10FFFF, which has no successor and is dropped before carrying left.
func PrefixEnd(prefix string) (end string, ok bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		if r == utf8.MaxRune {
			continue
		}
		r++
		if r >= 0xD800 && r <= 0xDFFF { // surrogates are not encodable
			r = 0xE000
		}
		return prefix + string(r), true
	}
	return "", false
}

// ScanQuery builds the query for Tx.Scan. The parameters are kind, then
// prefix (if not empty), after (if not empty), the prefix end (if any), in
// that order; the limit, if positive, is inlined.
func (d *Dialect) ScanQuery(table string, kind, prefix, after string, limit int) (string, []any) {
	var b strings.Builder
	args := []any{kind}
	b.WriteString("SELECT key, value FROM " + table + " WHERE kind = " + d.Placeholder(1))
	cond := func(op, v string) {
		args = append(args, v)
		b.WriteString(" AND key " + op + " " + d.Placeholder(len(args)))
	}
	if prefix != "" {
		cond(">=", prefix)
	}
	if after != "" {
		cond(">", after)
	}
	if end, ok := PrefixEnd(prefix); ok {
		cond("<", end)
	}
	b.WriteString(" ORDER BY key")
	if limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	return b.String(), args
}

// Pool is a *sql.DB with the statements prepared on it. Preparing once
// matters: parsing and planning a statement costs more than running it
// (with modernc.org/sqlite, more than the lookup itself), and every API
// request does a few.
type Pool struct {
	DB    *sql.DB
	stmts sync.Map // SQL text -> *sql.Stmt
	hooks atomic.Pointer[ChangeHooks]
}

// ChangeHooks report the records of watched kinds that a transaction wrote.
type ChangeHooks struct {
	Kinds map[string]bool
	// InTx runs just before the commit, inside the transaction (PostgreSQL:
	// pg_notify, delivered only if the commit succeeds).
	InTx func(ctx context.Context, tx *sql.Tx, changes []changefeed.Change) error
	// AfterCommit runs once the commit succeeded.
	AfterCommit func(changes []changefeed.Change)
}

// SetChangeHooks installs h for transactions begun afterwards.
func (p *Pool) SetChangeHooks(h *ChangeHooks) { p.hooks.Store(h) }

// Get reads one record outside any transaction.
func (p *Pool) Get(ctx context.Context, d *Dialect, kind, key string) ([]byte, error) {
	if !ValidName(kind) || !ValidName(key) {
		return nil, fmt.Errorf("%s: get %q/%q: kind and key must be valid UTF-8 without NUL", d.Name, kind, key)
	}
	var v []byte
	var err error
	if st, ok := p.stmts.Load(d.Get); ok {
		err = st.(*sql.Stmt).QueryRowContext(ctx, kind, key).Scan(&v)
	} else {
		err = p.DB.QueryRowContext(ctx, d.Get, kind, key).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get %s/%s: %w", d.Name, kind, key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Close closes the prepared statements and the database.
func (p *Pool) Close() error {
	p.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	return p.DB.Close()
}

// Prepare prepares the dialect's statements. It must run before the pool is
// used for transactions: preparing takes a connection of its own, which a
// single-connection pool (SQLite's writer) cannot give inside a transaction.
func (p *Pool) Prepare(ctx context.Context, d *Dialect) error {
	qs := []string{d.Get, d.GetForUpdate, d.Put, d.Insert, d.Delete}
	if d.LockAbsent != "" {
		qs = append(qs, d.LockAbsent)
	}
	for _, prefix := range []string{"", "p"} {
		for _, after := range []string{"", "a"} {
			q, _ := d.ScanQuery("records", "k", prefix, after, 0)
			qs = append(qs, q)
		}
	}
	for _, q := range qs {
		if _, ok := p.stmts.Load(q); ok {
			continue
		}
		st, err := p.DB.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("%s: prepare %q: %w", d.Name, q, err)
		}
		p.stmts.Store(q, st)
	}
	return nil
}

// Tx implements [store.Tx] over a *sql.Tx.
type Tx struct {
	d      *Dialect
	pool   *Pool
	tx     *sql.Tx
	update bool

	// mu is held for reading by every operation and for writing by close,
	// so an operation racing with the end of the transaction either
	// completes before the commit or reports sql.ErrTxDone: it never runs
	// half inside the transaction.
	mu   sync.RWMutex
	done bool

	hooks   *ChangeHooks
	written []changefeed.Change
}

// wrote notes a write of a watched kind.
func (t *Tx) wrote(kind, key string) {
	if t.hooks != nil && t.hooks.Kinds[kind] {
		t.written = append(t.written, changefeed.Change{Topic: kind, ID: key})
	}
}

var _ store.Tx = (*Tx)(nil)

func (t *Tx) close() {
	t.mu.Lock()
	t.done = true
	t.mu.Unlock()
}

// begin validates the names and takes the read lock; the caller must
// call t.mu.RUnlock when err is nil.
func (t *Tx) begin(op, kind, key string, write bool) error {
	if !ValidName(kind) || !ValidName(key) {
		return fmt.Errorf("%s: %s %q/%q: kind and key must be valid UTF-8 without NUL", t.d.Name, op, kind, key)
	}
	t.mu.RLock()
	if t.done {
		t.mu.RUnlock()
		return fmt.Errorf("%s: %s %s/%s: %w", t.d.Name, op, kind, key, sql.ErrTxDone)
	}
	if write && !t.update {
		t.mu.RUnlock()
		return fmt.Errorf("%s: %s %s/%s: %w", t.d.Name, op, kind, key, errReadOnly)
	}
	return nil
}

// Get implements [store.Tx].
func (t *Tx) Get(ctx context.Context, kind, key string) ([]byte, error) {
	if err := t.begin("get", kind, key, false); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	q := t.d.Get
	if t.update {
		q = t.d.GetForUpdate
	}
	v, err := t.get(ctx, q, kind, key)
	if errors.Is(err, store.ErrNotFound) && t.update && t.d.LockAbsent != "" {
		if _, err := t.exec(ctx, t.d.LockAbsent, kind, key); err != nil {
			return nil, fmt.Errorf("%s: get %s/%s: lock absent key: %w", t.d.Name, kind, key, err)
		}
		v, err = t.get(ctx, q, kind, key)
	}
	return v, err
}

// prepared returns q as a statement of this transaction when the pool has
// it prepared (database/sql keeps it prepared per connection), else nil.
func (t *Tx) prepared(ctx context.Context, q string) *sql.Stmt {
	v, ok := t.pool.stmts.Load(q)
	if !ok {
		return nil
	}
	return t.tx.StmtContext(ctx, v.(*sql.Stmt))
}

func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.prepared(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.prepared(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *Tx) get(ctx context.Context, q, kind, key string) ([]byte, error) {
	var v []byte
	var err error
	if st := t.prepared(ctx, q); st != nil {
		err = st.QueryRowContext(ctx, kind, key).Scan(&v)
	} else {
		err = t.tx.QueryRowContext(ctx, q, kind, key).Scan(&v)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get %s/%s: %w", t.d.Name, kind, key, err)
	}
	if v == nil {
		v = []byte{} // drivers differ on empty BLOB/BYTEA
	}
	return v, nil
}

// Put implements [store.Tx].
func (t *Tx) Put(ctx context.Context, kind, key string, value []byte) error {
	if err := t.begin("put", kind, key, true); err != nil {
		return err
	}
	defer t.mu.RUnlock()
	if _, err := t.exec(ctx, t.d.Put, kind, key, nonNil(value)); err != nil {
		return fmt.Errorf("%s: put %s/%s: %w", t.d.Name, kind, key, err)
	}
	t.wrote(kind, key)
	return nil
}

// Insert implements [store.Tx].
func (t *Tx) Insert(ctx context.Context, kind, key string, value []byte) error {
	if err := t.begin("insert", kind, key, true); err != nil {
		return err
	}
	defer t.mu.RUnlock()
	res, err := t.exec(ctx, t.d.Insert, kind, key, nonNil(value))
	if err != nil {
		return fmt.Errorf("%s: insert %s/%s: %w", t.d.Name, kind, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: insert %s/%s: %w", t.d.Name, kind, key, err)
	}
	if n == 0 {
		return store.ErrExists
	}
	t.wrote(kind, key)
	return nil
}

// Delete implements [store.Tx].
func (t *Tx) Delete(ctx context.Context, kind, key string) (bool, error) {
	if err := t.begin("delete", kind, key, true); err != nil {
		return false, err
	}
	defer t.mu.RUnlock()
	res, err := t.exec(ctx, t.d.Delete, kind, key)
	if err != nil {
		return false, fmt.Errorf("%s: delete %s/%s: %w", t.d.Name, kind, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: delete %s/%s: %w", t.d.Name, kind, key, err)
	}
	if n > 0 {
		t.wrote(kind, key)
	}
	return n > 0, nil
}

// Scan implements [store.Tx].
func (t *Tx) Scan(ctx context.Context, kind, prefix, after string, limit int) ([]store.Item, error) {
	if !ValidName(prefix) || !ValidName(after) {
		return nil, fmt.Errorf("%s: scan %q: prefix and after must be valid UTF-8 without NUL", t.d.Name, kind)
	}
	if err := t.begin("scan", kind, prefix, false); err != nil {
		return nil, err
	}
	defer t.mu.RUnlock()
	q, args := t.d.ScanQuery("records", kind, prefix, after, limit)
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: scan %s/%s: %w", t.d.Name, kind, prefix, err)
	}
	defer rows.Close()
	var items []store.Item
	for rows.Next() {
		var it store.Item
		if err := rows.Scan(&it.Key, &it.Value); err != nil {
			return nil, fmt.Errorf("%s: scan %s/%s: %w", t.d.Name, kind, prefix, err)
		}
		if it.Value == nil {
			it.Value = []byte{}
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: scan %s/%s: %w", t.d.Name, kind, prefix, err)
	}
	return items, nil
}

// nonNil turns a nil value into an empty one: drivers bind a nil []byte as
// NULL, which the NOT NULL value column rejects.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// Run runs fn in a transaction begun on db with opts and commits it if fn
// returns nil. It rolls back if fn returns an error or panics; the panic
// carries on after the rollback because the deferred call does not recover.
// update selects locking reads and allows writes.
func Run(ctx context.Context, p *Pool, opts *sql.TxOptions, d *Dialect, update bool, fn func(store.Tx) error) error {
	sqlTx, err := p.DB.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", d.Name, err)
	}
	t := &Tx{d: d, pool: p, tx: sqlTx, update: update}
	if update {
		t.hooks = p.hooks.Load()
	}
	committed := false
	defer func() {
		if !committed {
			t.close()
			_ = sqlTx.Rollback() // fn's error or panic matters more
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	t.close()
	if len(t.written) > 0 && t.hooks.InTx != nil {
		if err := t.hooks.InTx(ctx, sqlTx, t.written); err != nil {
			return fmt.Errorf("%s: notify: %w", d.Name, err)
		}
	}
	committed = true // Commit ends the transaction even when it fails
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", d.Name, err)
	}
	if len(t.written) > 0 && t.hooks.AfterCommit != nil {
		t.hooks.AfterCommit(t.written)
	}
	return nil
}
