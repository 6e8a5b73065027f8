package postgres_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
	"github.com/cutoverhq/cutover/internal/store/storetest"
)

// server is one throwaway cluster shared by the subtests of one test, each
// subtest getting its own database.
type server struct {
	t     testing.TB
	url   string
	admin *sql.DB
}

func startServer(t testing.TB) *server {
	u := pgtest.Start(t)
	admin, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return &server{t: t, url: u, admin: admin}
}

// database creates the database name if needed and returns its URL.
func (s *server) database(ctx context.Context, t testing.TB, name string) string {
	var exists bool
	if err := s.admin.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		// Identifiers cannot be parameters; name is hex from dbName.
		if _, err := s.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
	}
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// dbName maps a test name to a valid database name.
func dbName(testName string) string {
	h := sha256.Sum256([]byte(testName))
	return "t_" + hex.EncodeToString(h[:12])
}

func TestStore(t *testing.T) {
	srv := startServer(t)
	var mu sync.Mutex // CREATE DATABASE races with itself on the template
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		u := srv.database(t.Context(), t, dbName(t.Name()))
		mu.Unlock()
		db, err := postgres.Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestConcurrentOpen starts several servers against one empty database at
// once: the migration lock must let exactly one create the schema.
func TestConcurrentOpen(t *testing.T) {
	srv := startServer(t)
	u := srv.database(t.Context(), t, "concurrent_open")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			db, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Error(err)
				return
			}
			db.Close()
		})
	}
	wg.Wait()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_migrations: %d rows, %v; want 1", n, err)
	}
}

func benchStore(b *testing.B) store.Store {
	srv := startServer(b)
	db, err := postgres.Open(b.Context(), srv.database(b.Context(), b, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func BenchmarkGet(b *testing.B) {
	storetest.BenchGet(b, benchStore(b))
}

func BenchmarkUpdatePut(b *testing.B) {
	storetest.BenchUpdatePut(b, benchStore(b))
}
