package sqlkv

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migrate applies, inside tx, every migration in fsys that schema_migrations
// does not list yet, in version order, and returns how many it applied.
// Migration files are named NNNN_description.sql; NNNN is the version. The
// caller owns tx: committing it makes the whole set of migrations visible
// at once, and a failure leaves the schema as it was.
func Migrate(ctx context.Context, tx *sql.Tx, fsys fs.FS) (int, error) {
	type migration struct {
		version int
		name    string
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	var all []migration
	for _, name := range names {
		digits, _, _ := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(digits)
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("migrate: %s: name must start with a positive version number", name)
		}
		all = append(all, migration{v, name})
	}
	slices.SortFunc(all, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(all); i++ {
		if all[i].version == all[i-1].version {
			return 0, fmt.Errorf("migrate: %s and %s have the same version", all[i-1].name, all[i].name)
		}
	}

	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return 0, fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}

	n := 0
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		body, err := fs.ReadFile(fsys, m.name)
		if err != nil {
			return n, fmt.Errorf("migrate: %w", err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return n, fmt.Errorf("migrate: %s: %w", m.name, err)
		}
		// The version is an int we parsed, so formatting it into the
		// statement is safe and avoids the dialects' placeholder syntax.
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version) VALUES ("+strconv.Itoa(m.version)+")"); err != nil {
			return n, fmt.Errorf("migrate: %s: %w", m.name, err)
		}
		n++
	}
	return n, nil
}
