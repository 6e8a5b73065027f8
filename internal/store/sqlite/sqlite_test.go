package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
	"github.com/cutoverhq/cutover/internal/store/storetest"
)

// opener returns a storetest.Opener keeping one database file per subtest
// under dir, so that reopening within a subtest finds its data.
func opener(dir string) storetest.Opener {
	var mu sync.Mutex
	paths := map[string]string{}
	return func(t *testing.T) store.Store {
		mu.Lock()
		p, ok := paths[t.Name()]
		if !ok {
			p = filepath.Join(dir, fmt.Sprintf("%d.db", len(paths)))
			paths[t.Name()] = p
		}
		mu.Unlock()
		db, err := sqlite.Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, opener(t.TempDir()))
}

func TestOpenPathNeedingEscape(t *testing.T) {
	for _, name := range []string{"a?b#c%d.db", "sp ace.db"} {
		p := filepath.Join(t.TempDir(), name)
		db, err := sqlite.Open(t.Context(), p)
		if err != nil {
			t.Fatalf("Open(%q): %v", p, err)
		}
		db.Close()
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Open(%q) did not create that file: %v", p, err)
		}
	}
}

// crashEnv names the database file the crash child writes to; the test
// binary re-executed with it set becomes that child.
const crashEnv = "CUTOVER_SQLITE_CRASH_DB"

// TestCrashChild is the writer TestCrash kills. It commits transactions
// that each set records A and B to the same counter, and prints each
// counter once its Update has returned, i.e. once the write is acknowledged.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrash")
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	start := 0
	db.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get(ctx, "crash", "A")
		if err == nil {
			start, _ = strconv.Atoi(string(v[:bytes.IndexByte(v, ' ')]))
		}
		return nil
	})
	for i := start + 1; ; i++ {
		// Values span several pages so a torn write has room to show.
		v := []byte(strconv.Itoa(i) + " " + string(bytes.Repeat([]byte{byte('a' + i%26)}, 10000)))
		err := db.Update(ctx, func(tx store.Tx) error {
			if err := tx.Put(ctx, "crash", "A", v); err != nil {
				return err
			}
			if err := tx.Put(ctx, "crash", "filler", bytes.Repeat(v, 3)); err != nil {
				return err
			}
			return tx.Put(ctx, "crash", "B", v)
		})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(i)
	}
}

// TestCrash kills a writer with SIGKILL at random points and checks that
// the database then holds, for every run, either the old or the new state
// of a transaction, never half of one, and never less than what was
// acknowledged. (SIGKILL tests process crashes; surviving power loss is
// what synchronous=FULL is for, and no test here can cut the power.)
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := 0
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Let it commit for a while, then kill it at a random moment.
		deadline := time.After(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		started := false
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("round %d: child exited early", round)
				}
				n, err := strconv.Atoi(line)
				if err != nil {
					t.Fatalf("round %d: child: %s", round, line)
				}
				acked, started = n, true
			case <-deadline:
				if started {
					break read
				}
				deadline = time.After(50 * time.Millisecond)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for line := range lines { // acknowledged before the kill landed
			if n, err := strconv.Atoi(line); err == nil {
				acked = n
			}
		}
		cmd.Wait()

		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		err = db.View(t.Context(), func(tx store.Tx) error {
			a, err := tx.Get(t.Context(), "crash", "A")
			if err != nil {
				return err
			}
			b, err := tx.Get(t.Context(), "crash", "B")
			if err != nil {
				return err
			}
			if !bytes.Equal(a, b) {
				t.Errorf("round %d: A and B differ after crash: half a transaction survived", round)
			}
			n, err := strconv.Atoi(string(a[:bytes.IndexByte(a, ' ')]))
			if err != nil {
				return err
			}
			if n < acked {
				t.Errorf("round %d: counter %d after crash, but %d was acknowledged", round, n, acked)
			}
			t.Logf("round %d: %d acknowledged, %d found", round, acked, n)
			return nil
		})
		if err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchGet(b, db)
}

func BenchmarkUpdatePut(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchUpdatePut(b, db)
}
