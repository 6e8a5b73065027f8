// Package storetest is the conformance suite every [store.Store] backend
// must pass, so that the SQLite and PostgreSQL backends behave the same.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cutoverhq/cutover/internal/store"
)

// Opener opens a store for test t. The first call for a given t must return
// an empty store; later calls with the same t, after the previous store has
// been closed, must open the same data again (that is how Run checks that
// committed data survives a restart). Run closes every store it opens.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite, each case as a subtest with its own store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CRUD", testCRUD},
		{"Insert", testInsert},
		{"InsertRace", testInsertRace},
		{"InvalidNames", testInvalidNames},
		{"Scan", testScan},
		{"ScanPaging", testScanPaging},
		{"RollbackOnError", testRollbackOnError},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentIncrement", testConcurrentIncrement},
		{"ConcurrentCreateOrIncrement", testConcurrentCreateOrIncrement},
		{"ViewSnapshot", testViewSnapshot},
		{"ViewReadOnly", testViewReadOnly},
		{"Reopen", testReopen},
		{"TxAfterReturn", testTxAfterReturn},
		{"GetOutsideTx", testGetOutsideTx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// openStore opens a store through open and closes it when the test ends.
func openStore(t *testing.T, open Opener) store.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.Update(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := s.View(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// get returns the value of kind/key, or "<not found>".
func get(t *testing.T, s store.Store, kind, key string) string {
	t.Helper()
	var v string
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Get(ctx, kind, key)
		if errors.Is(err, store.ErrNotFound) {
			v = "<not found>"
			return nil
		}
		v = string(b)
		return err
	})
	return v
}

func testCRUD(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Get(ctx, "app", "a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get missing: err = %v, want ErrNotFound", err)
		}
		if err := tx.Put(ctx, "app", "a", []byte("1")); err != nil {
			return err
		}
		// A write is visible to the rest of its own transaction.
		if v, err := tx.Get(ctx, "app", "a"); err != nil || string(v) != "1" {
			t.Errorf("Get own write = %q, %v; want 1", v, err)
		}
		// Kinds are separate namespaces.
		if err := tx.Put(ctx, "dep", "a", []byte("other")); err != nil {
			return err
		}
		if err := tx.Put(ctx, "app", "empty", nil); err != nil {
			return err
		}
		return tx.Put(ctx, "app", "big", make([]byte, 1<<20))
	})
	if got := get(t, s, "app", "a"); got != "1" {
		t.Errorf("app/a = %q, want 1", got)
	}
	if got := get(t, s, "dep", "a"); got != "other" {
		t.Errorf("dep/a = %q, want other", got)
	}
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		v, err := tx.Get(ctx, "app", "empty")
		if err != nil || v == nil || len(v) != 0 {
			t.Errorf("Get empty value = %#v, %v; want []byte{}, nil", v, err)
		}
		v, err = tx.Get(ctx, "app", "big")
		if err != nil || len(v) != 1<<20 {
			t.Errorf("Get 1 MiB value: len %d, %v", len(v), err)
		}
		return nil
	})

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, "app", "a", []byte("2"))
	})
	if got := get(t, s, "app", "a"); got != "2" {
		t.Errorf("app/a after replace = %q, want 2", got)
	}

	update(t, s, func(ctx context.Context, tx store.Tx) error {
		removed, err := tx.Delete(ctx, "app", "a")
		if err != nil || !removed {
			t.Errorf("Delete existing = %v, %v; want true, nil", removed, err)
		}
		removed, err = tx.Delete(ctx, "app", "a")
		if err != nil || removed {
			t.Errorf("Delete again = %v, %v; want false, nil", removed, err)
		}
		removed, err = tx.Delete(ctx, "app", "never")
		if err != nil || removed {
			t.Errorf("Delete never existed = %v, %v; want false, nil", removed, err)
		}
		return nil
	})
	if got := get(t, s, "app", "a"); got != "<not found>" {
		t.Errorf("app/a after delete = %q", got)
	}
	if got := get(t, s, "dep", "a"); got != "other" {
		t.Errorf("dep/a after deleting app/a = %q, want other", got)
	}
}

func testInsert(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Insert(ctx, "app", "a", []byte("first"))
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Insert(ctx, "app", "a", []byte("second")); !errors.Is(err, store.ErrExists) {
			t.Errorf("Insert existing: err = %v, want ErrExists", err)
		}
		// The conflict must not poison the transaction (PostgreSQL
		// aborts a transaction on a unique violation).
		return tx.Insert(ctx, "app", "b", []byte("b"))
	})
	if got := get(t, s, "app", "a"); got != "first" {
		t.Errorf("app/a = %q, want first", got)
	}
	if got := get(t, s, "app", "b"); got != "b" {
		t.Errorf("app/b = %q, want b (written after the conflict)", got)
	}
}

// testInsertRace checks that Insert is a reliable create-once: of many
// concurrent inserts of one key, exactly one wins.
func testInsertRace(t *testing.T, open Opener) {
	s := openStore(t, open)
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), func(tx store.Tx) error {
				return tx.Insert(t.Context(), "lock", "k", []byte(strconv.Itoa(i)))
			})
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("insert %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d inserts succeeded, want 1", won)
	}
}

func testInvalidNames(t *testing.T, open Opener) {
	s := openStore(t, open)
	for _, name := range []string{"nul\x00byte", "bad\xffutf8"} {
		err := s.Update(t.Context(), func(tx store.Tx) error {
			return tx.Put(t.Context(), "app", name, []byte("x"))
		})
		if err == nil {
			t.Errorf("Put key %q: no error", name)
		}
		err = s.Update(t.Context(), func(tx store.Tx) error {
			return tx.Put(t.Context(), name, "k", []byte("x"))
		})
		if err == nil {
			t.Errorf("Put kind %q: no error", name)
		}
		err = s.View(t.Context(), func(tx store.Tx) error {
			_, err := tx.Scan(t.Context(), "app", name, "", 0)
			return err
		})
		if err == nil {
			t.Errorf("Scan prefix %q: no error", name)
		}
	}
}

// scanKeys are stored under kind "scan"; a few decoys share their keys
// under other kinds. They cover "/"-separated paths, a prefix that is a
// prefix of a longer segment ("a/b" and "a/bc", "app" and "apple"),
// multi-byte UTF-8, the byte order of 0x7F against 0x80-led sequences
// (where incrementing the last byte of a prefix yields invalid UTF-8) and
// U+10FFFF, the largest rune, which has no successor to bound a prefix.
var scanKeys = []string{
	"a", "a/b", "a/b/c", "a/bc", "ab",
	"app/1", "app/10", "app/2", "apple",
	"x\x7f", "x\x7f/1", "x\u0080", "x\u00e9",
	"\u00e9t\u00e9", "\u65e5\u672c/1", "\u65e5\u672c/2", "\uffff",
	"\U0010ffff", "\U0010ffff/1", "\U0010ffff\U0010ffff", "z\U0010ffff", "z\U0010ffffa", "{",
}

func testScan(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range scanKeys {
			if err := tx.Put(ctx, "scan", k, []byte("v:"+k)); err != nil {
				return err
			}
			// Neighbouring kinds must never leak into a scan of "scan".
			for _, other := range []string{"sca", "scan/", "scanx", "scan\U0010ffff"} {
				if err := tx.Put(ctx, other, k, []byte("decoy")); err != nil {
					return err
				}
			}
		}
		return nil
	})

	all := slices.Clone(scanKeys)
	slices.Sort(all) // Go compares strings bytewise, the order the store promises
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 0, all},
		{"", "", -1, all},
		{"", "", 3, []string{"a", "a/b", "a/b/c"}},
		{"a/", "", 0, []string{"a/b", "a/b/c", "a/bc"}},
		{"a/b", "", 0, []string{"a/b", "a/b/c", "a/bc"}},
		{"a/b/", "", 0, []string{"a/b/c"}},
		{"a/b", "a/b", 0, []string{"a/b/c", "a/bc"}},
		{"a/b", "a/b/c", 1, []string{"a/bc"}},
		{"a/b", "a/bc", 0, nil},
		{"app/", "", 0, []string{"app/1", "app/10", "app/2"}},
		{"app", "", 0, []string{"app/1", "app/10", "app/2", "apple"}},
		{"app", "app/2", 0, []string{"apple"}},
		{"a", "", 0, []string{"a", "a/b", "a/b/c", "a/bc", "ab", "app/1", "app/10", "app/2", "apple"}},
		{"a", "", 2, []string{"a", "a/b"}},
		{"a", "0", 2, []string{"a", "a/b"}}, // after before the prefix
		{"ab", "zzz", 0, nil},               // after past the prefix
		{"b", "", 0, nil},                   // nothing there
		{"x\x7f", "", 0, []string{"x\x7f", "x\x7f/1"}},
		{"x", "x\x7f/1", 0, []string{"x\u0080", "x\u00e9"}},
		{"\u65e5\u672c/", "", 0, []string{"\u65e5\u672c/1", "\u65e5\u672c/2"}},
		{"\u65e5", "\u65e5\u672c/1", 0, []string{"\u65e5\u672c/2"}},
		{"\u00e9", "", 0, []string{"\u00e9t\u00e9"}},
		{"\uffff", "", 0, []string{"\uffff"}},
		{"\U0010ffff", "", 0, []string{"\U0010ffff", "\U0010ffff/1", "\U0010ffff\U0010ffff"}},
		{"\U0010ffff\U0010ffff", "", 0, []string{"\U0010ffff\U0010ffff"}},
		{"\U0010ffff", "\U0010ffff/1", 0, []string{"\U0010ffff\U0010ffff"}},
		{"z\U0010ffff", "", 0, []string{"z\U0010ffff", "z\U0010ffffa"}},
		{"z", "", 0, []string{"z\U0010ffff", "z\U0010ffffa"}},
		{"", "z\U0010ffffa", 2, []string{"{", "\u00e9t\u00e9"}},
		{"", "\U0010ffff\U0010ffff", 0, nil}, // after the largest key
		{"", "z", 1, []string{"z\U0010ffff"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%q,after=%q,limit=%d", tt.prefix, tt.after, tt.limit), func(t *testing.T) {
			var items []store.Item
			view(t, s, func(ctx context.Context, tx store.Tx) error {
				var err error
				items, err = tx.Scan(ctx, "scan", tt.prefix, tt.after, tt.limit)
				return err
			})
			var got []string
			for _, it := range items {
				got = append(got, it.Key)
				if string(it.Value) != "v:"+it.Key {
					t.Errorf("value of %q = %q", it.Key, it.Value)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys = %q\nwant   %q", got, tt.want)
			}
		})
	}
}

// testScanPaging walks a prefix page by page, the way list APIs do.
func testScanPaging(t *testing.T, open Opener) {
	s := openStore(t, open)
	var want []string
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 25 {
			k := fmt.Sprintf("acct/%03d", i)
			want = append(want, k)
			if err := tx.Put(ctx, "page", k, []byte(k)); err != nil {
				return err
			}
		}
		return tx.Put(ctx, "page", "acct0", nil) // sorts right after "acct/..."
	})
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		var items []store.Item
		view(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			items, err = tx.Scan(ctx, "page", "acct/", after, 10)
			return err
		})
		for _, it := range items {
			got = append(got, it.Key)
		}
		if len(items) < 10 {
			break
		}
		after = items[len(items)-1].Key
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged keys = %q\nwant %q", got, want)
	}
}

var errBoom = errors.New("boom")

func testRollbackOnError(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, "app", "kept", []byte("old"))
	})
	err := s.Update(t.Context(), func(tx store.Tx) error {
		ctx := t.Context()
		if err := tx.Put(ctx, "app", "new", []byte("x")); err != nil {
			return err
		}
		if err := tx.Put(ctx, "app", "kept", []byte("changed")); err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, "app", "kept"); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update err = %v, want the function's error", err)
	}
	if got := get(t, s, "app", "new"); got != "<not found>" {
		t.Errorf("app/new = %q after rollback", got)
	}
	if got := get(t, s, "app", "kept"); got != "old" {
		t.Errorf("app/kept = %q after rollback, want old", got)
	}
}

func testRollbackOnPanic(t *testing.T, open Opener) {
	s := openStore(t, open)
	func() {
		defer func() {
			if p := recover(); p != errBoom {
				t.Errorf("recovered %v, want the function's panic", p)
			}
		}()
		s.Update(t.Context(), func(tx store.Tx) error {
			if err := tx.Put(t.Context(), "app", "a", []byte("x")); err != nil {
				t.Error(err)
			}
			panic(errBoom)
		})
		t.Error("Update returned instead of panicking")
	}()
	if got := get(t, s, "app", "a"); got != "<not found>" {
		t.Errorf("app/a = %q after panic", got)
	}
	// The panic must not leak the connection or its lock: SQLite has a
	// single writer connection, so a leak would hang this Update.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, "app", "a", []byte("y"))
	})
	if got := get(t, s, "app", "a"); got != "y" {
		t.Errorf("app/a = %q after the panic and a new Update, want y", got)
	}
}

func testCanceledContext(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.Update(ctx, func(tx store.Tx) error {
		called = true
		return tx.Put(ctx, "app", "a", []byte("x"))
	})
	if err == nil {
		t.Error("Update with canceled context: no error")
	}
	if called {
		t.Log("fn was called although the context was canceled before Update")
	}
	if got := get(t, s, "app", "a"); got != "<not found>" {
		t.Errorf("app/a = %q after a canceled Update", got)
	}
}

const (
	workers    = 20
	increments = 20
)

// increment adds one to the decimal counter at kind/key inside one
// transaction, creating it if absent: the read-modify-write that must never
// lose an update.
func increment(ctx context.Context, s store.Store, key string) error {
	return s.Update(ctx, func(tx store.Tx) error {
		n := 0
		v, err := tx.Get(ctx, "counter", key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			if n, err = strconv.Atoi(string(v)); err != nil {
				return err
			}
		}
		return tx.Put(ctx, "counter", key, []byte(strconv.Itoa(n+1)))
	})
}

func runIncrements(t *testing.T, s store.Store, key string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers*increments)
	for range workers {
		wg.Go(func() {
			for range increments {
				if err := increment(t.Context(), s, key); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment: %v", err)
	}
	if got, want := get(t, s, "counter", key), strconv.Itoa(workers*increments); got != want {
		t.Errorf("counter = %s, want %s: updates were lost", got, want)
	}
}

func testConcurrentIncrement(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, "counter", "c", []byte("0"))
	})
	runIncrements(t, s, "c")
}

// testConcurrentCreateOrIncrement makes goroutines race to increment a
// missing key, round after round, so that Get must serialise on absent keys
// too: FOR UPDATE alone locks nothing when there is no row.
func testConcurrentCreateOrIncrement(t *testing.T, open Opener) {
	s := openStore(t, open)
	for round := range increments {
		key := fmt.Sprintf("fresh-%d", round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				<-start
				if err := increment(t.Context(), s, key); err != nil {
					t.Errorf("increment: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if got, want := get(t, s, "counter", key), strconv.Itoa(workers); got != want {
			t.Fatalf("round %d: counter = %s, want %s: updates were lost", round, got, want)
		}
	}
}

func testViewSnapshot(t *testing.T, open Opener) {
	s := openStore(t, open)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Put(ctx, "acct", "a", []byte("100")); err != nil {
			return err
		}
		return tx.Put(ctx, "acct", "b", []byte("0"))
	})
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		a, err := tx.Get(ctx, "acct", "a") // the snapshot starts here
		if err != nil {
			return err
		}
		// A transfer commits while the view is open; the view must not
		// see half of it (or any of it).
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.Put(ctx, "acct", "a", []byte("40")); err != nil {
				return err
			}
			if err := tx.Put(ctx, "acct", "b", []byte("60")); err != nil {
				return err
			}
			return tx.Put(ctx, "acct", "c", []byte("new"))
		})
		b, err := tx.Get(ctx, "acct", "b")
		if err != nil {
			return err
		}
		if string(a) != "100" || string(b) != "0" {
			t.Errorf("view saw a=%s b=%s, want the snapshot a=100 b=0", a, b)
		}
		items, err := tx.Scan(ctx, "acct", "", "", 0)
		if err != nil {
			return err
		}
		if len(items) != 2 || string(items[0].Value) != "100" || string(items[1].Value) != "0" {
			t.Errorf("view scan saw %q, want the snapshot", items)
		}
		return nil
	})
	if a, b := get(t, s, "acct", "a"), get(t, s, "acct", "b"); a != "40" || b != "60" {
		t.Errorf("after the view a=%s b=%s, want 40 60", a, b)
	}
}

func testViewReadOnly(t *testing.T, open Opener) {
	s := openStore(t, open)
	writes := map[string]func(ctx context.Context, tx store.Tx) error{
		"Put":    func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, "app", "a", []byte("x")) },
		"Insert": func(ctx context.Context, tx store.Tx) error { return tx.Insert(ctx, "app", "a", []byte("x")) },
		"Delete": func(ctx context.Context, tx store.Tx) error { _, err := tx.Delete(ctx, "app", "a"); return err },
	}
	for name, w := range writes {
		err := s.View(t.Context(), func(tx store.Tx) error { return w(t.Context(), tx) })
		if err == nil {
			t.Errorf("%s inside View: no error", name)
		}
	}
	if got := get(t, s, "app", "a"); got != "<not found>" {
		t.Errorf("app/a = %q after writes in View", got)
	}
}

func testReopen(t *testing.T, open Opener) {
	s := open(t)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 100 {
			if err := tx.Put(ctx, "app", fmt.Sprintf("k%03d", i), []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Delete(ctx, "app", "k050")
		return err
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, open)
	view(t, s, func(ctx context.Context, tx store.Tx) error {
		items, err := tx.Scan(ctx, "app", "k", "", 0)
		if err != nil {
			return err
		}
		if len(items) != 99 {
			t.Errorf("after reopen: %d records, want 99", len(items))
		}
		if v, err := tx.Get(ctx, "app", "k099"); err != nil || string(v) != "99" {
			t.Errorf("after reopen: app/k099 = %q, %v", v, err)
		}
		if _, err := tx.Get(ctx, "app", "k050"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after reopen: deleted app/k050: err = %v", err)
		}
		return nil
	})
	// Migrations ran again on reopen; the store must still be writable.
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Insert(ctx, "app", "k050", []byte("back"))
	})
}

func testTxAfterReturn(t *testing.T, open Opener) {
	s := openStore(t, open)
	ops := map[string]func(ctx context.Context, tx store.Tx) error{
		"Get":    func(ctx context.Context, tx store.Tx) error { _, err := tx.Get(ctx, "app", "a"); return err },
		"Put":    func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, "app", "late", []byte("x")) },
		"Insert": func(ctx context.Context, tx store.Tx) error { return tx.Insert(ctx, "app", "late", []byte("x")) },
		"Delete": func(ctx context.Context, tx store.Tx) error { _, err := tx.Delete(ctx, "app", "a"); return err },
		"Scan":   func(ctx context.Context, tx store.Tx) error { _, err := tx.Scan(ctx, "app", "", "", 0); return err },
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, "app", "a", []byte("x"))
	})
	for _, run := range []struct {
		name string
		run  func(context.Context, func(store.Tx) error) error
		fail bool
	}{
		{"Update", s.Update, false},
		{"View", s.View, false},
		{"failed Update", s.Update, true},
	} {
		var leaked store.Tx
		err := run.run(t.Context(), func(tx store.Tx) error {
			leaked = tx
			if run.fail {
				return errBoom
			}
			return nil
		})
		if run.fail != (err != nil) {
			t.Fatalf("%s: %v", run.name, err)
		}
		for name, op := range ops {
			err := op(t.Context(), leaked)
			if !errors.Is(err, sql.ErrTxDone) {
				t.Errorf("%s after %s returned: err = %v, want sql.ErrTxDone", name, run.name, err)
			}
		}
	}
	if got := get(t, s, "app", "late"); got != "<not found>" {
		t.Errorf("app/late = %q, written by a finished transaction", got)
	}
	if got := get(t, s, "app", "a"); got != "x" {
		t.Errorf("app/a = %q, changed by a finished transaction", got)
	}
}

// testGetOutsideTx checks store.Get: the backends read without a
// transaction and must see committed data and report missing records.
func testGetOutsideTx(t *testing.T, open Opener) {
	s := open(t)
	ctx := context.Background()
	if _, ok := s.(store.Reader); !ok {
		t.Fatalf("%T does not implement store.Reader", s)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(ctx, "k", "a/b", []byte("v1")) }); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, s, "k", "a/b")
	if err != nil || string(got) != "v1" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := store.Get(ctx, s, "k", "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if _, err := store.Get(ctx, s, "k", "bad\x00key"); err == nil {
		t.Fatal("Get accepted a key with NUL")
	}
}
