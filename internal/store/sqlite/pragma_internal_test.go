package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestPragmas checks that the DSN settings reach SQLite: a misspelt DSN
// parameter would otherwise silently leave the defaults (synchronous=FULL
// is the durability promise of this package).
func TestPragmas(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		pool   string
		db     *sql.DB
		pragma string
		want   string
	}{
		{"writer", db.writer.DB, "journal_mode", "wal"},
		{"writer", db.writer.DB, "synchronous", "2"}, // FULL
		{"writer", db.writer.DB, "busy_timeout", "10000"},
		{"writer", db.writer.DB, "query_only", "0"},
		{"reader", db.reader.DB, "journal_mode", "wal"},
		{"reader", db.reader.DB, "busy_timeout", "10000"},
		{"reader", db.reader.DB, "query_only", "1"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", tt.pool, tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", tt.pool, tt.pragma, got, tt.want)
		}
	}
}
