package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// versionConn is one connection kept open for PRAGMA data_version, whose
// values only compare within a connection: it changes whenever any other
// connection, of this process or another, commits.
type versionConn struct {
	mu   sync.Mutex
	pool *sql.DB
	conn *sql.Conn
}

// DataVersion returns a number that changes whenever a transaction commits
// on any other connection to the database: this process's writes and other
// processes' (the CLI's) alike. Readers compare successive values; an
// error means changes may have been missed (the connection is replaced),
// and the next value does not compare with earlier ones.
func (db *DB) DataVersion(ctx context.Context) (int64, error) {
	v := &db.version
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn == nil {
		c, err := v.pool.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("sqlite: data_version: %w", err)
		}
		v.conn = c
	}
	var n int64
	if err := v.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&n); err != nil {
		_ = v.conn.Close()
		v.conn = nil
		return 0, fmt.Errorf("sqlite: data_version: %w", err)
	}
	return n, nil
}

func (v *versionConn) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn != nil {
		_ = v.conn.Close()
		v.conn = nil
	}
	return v.pool.Close()
}
