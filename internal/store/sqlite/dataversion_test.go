package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// DataVersion moves with every commit, this DB's and another handle's on
// the same file (as `cutover keys` writes from another process), and
// stays put otherwise.
func TestDataVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cutover.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	version := func() int64 {
		t.Helper()
		v, err := db.DataVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	seen := map[int64]string{}
	last := version()
	seen[last] = "start"
	for i, tc := range []struct {
		name string
		by   *sqlite.DB
	}{
		{"own write", db}, {"other handle's write", other}, {"own write again", db},
		{"other handle again", other}, {"other handle again", other},
	} {
		if _, err := db.Get(ctx, "k", "x"); err != nil && err != store.ErrNotFound {
			t.Fatal(err)
		}
		if v := version(); v != last {
			t.Fatalf("step %d: version moved without a commit", i)
		}
		if err := tc.by.Update(ctx, func(tx store.Tx) error {
			return tx.Put(ctx, "k", "x", []byte(fmt.Sprint(i)))
		}); err != nil {
			t.Fatal(err)
		}
		v := version()
		if prev, ok := seen[v]; ok {
			t.Fatalf("step %d (%s): version %d already seen at %s", i, tc.name, v, prev)
		}
		seen[v], last = tc.name, v
	}
}
