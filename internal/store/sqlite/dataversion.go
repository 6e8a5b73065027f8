package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// DataVersion returns a number that changes whenever a transaction commits
// on the database, from any connection of any process (the CLI's
// included). Values only compare with values from the same DB. An error
// means the answer is unknown right now, not that nothing changed.
//
// It reads the WAL-index header that every connection in WAL mode shares
// through the -shm file (https://www.sqlite.org/walformat.html): each
// commit rewrites it (frame count, change counter, checksums), first its
// second copy, then its first. That costs a few loads instead of a query;
// where the file cannot be mapped it falls back to PRAGMA data_version on
// a connection kept for it.
func (db *DB) DataVersion(ctx context.Context) (int64, error) {
	if db.walIndex != nil {
		return walIndexVersion(db.walIndex)
	}
	return db.version.get(ctx)
}

// walIndexHeader is the size of one copy of the WAL-index header.
const walIndexHeader = 48

// mapWALIndex maps the start of the database's -shm file read-only. The
// file lives as long as some connection is open: Open pins one (the
// fallback's) until Close, so another process closing the last of its
// own never deletes and recreates it under the mapping.
func mapWALIndex(path string) ([]byte, error) {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() < 2*walIndexHeader {
		return nil, errors.New("wal-index too short")
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 2*walIndexHeader, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if _, err := walIndexVersion(mem); err != nil {
		_ = syscall.Munmap(mem)
		return nil, err
	}
	return mem, nil
}

var errHeaderChanging = errors.New("sqlite: wal-index header being written")

// walIndexVersion hashes the header's first copy, after checking the
// second matches it: they differ while a commit is rewriting them (the
// writer fills the second copy, then the first). Atomic loads keep the
// reads in that order, as SQLite's own readers do with a barrier.
func walIndexVersion(mem []byte) (int64, error) {
	const words = walIndexHeader / 4
	var a, b [walIndexHeader]byte
	for i := range words {
		binary.NativeEndian.PutUint32(a[4*i:], atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[4*i]))))
	}
	for i := range words {
		binary.NativeEndian.PutUint32(b[4*i:], atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[walIndexHeader+4*i]))))
	}
	if a != b {
		return 0, errHeaderChanging
	}
	if a[12] == 0 { // isInit
		return 0, errors.New("sqlite: wal-index not initialised")
	}
	h := fnv.New64a()
	h.Write(a[:])
	return int64(h.Sum64()), nil
}

// versionConn is the fallback: one connection kept open for PRAGMA
// data_version, whose values only compare within a connection (it moves
// with commits of every other connection).
type versionConn struct {
	mu   sync.Mutex
	pool *sql.DB
	conn *sql.Conn
}

func (v *versionConn) get(ctx context.Context) (int64, error) {
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
		// A new connection's values do not compare with this one's:
		// callers treat the error as "changed".
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
