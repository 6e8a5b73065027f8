package changefeed_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/postgres"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

func TestFeedTopicsAndOverflow(t *testing.T) {
	var f changefeed.Feed
	web := f.Subscribe("web")
	all := f.Subscribe()
	defer web.Close()
	defer all.Close()
	f.Publish([]changefeed.Change{{Topic: "web", ID: "1"}, {Topic: "db", ID: "2"}})
	for _, tc := range []struct {
		name string
		sub  *changefeed.Subscription
		want []changefeed.Change
	}{
		{"one topic", web, []changefeed.Change{{Topic: "web", ID: "1"}}},
		{"every topic", all, []changefeed.Change{{Topic: "web", ID: "1"}, {Topic: "db", ID: "2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			select {
			case <-tc.sub.Ready():
			default:
				t.Fatal("not ready")
			}
			got, reset := tc.sub.Take()
			if reset || !slices.Equal(got, tc.want) {
				t.Fatalf("got %v reset=%v, want %v", got, reset, tc.want)
			}
		})
	}
	// A subscriber that does not keep up is told to re-read everything.
	for i := range 5000 {
		f.Publish([]changefeed.Change{{Topic: "web", ID: fmt.Sprint(i)}})
	}
	got, reset := web.Take()
	if !reset || len(got) != 0 {
		t.Fatalf("after overflow: %d changes, reset=%v", len(got), reset)
	}
}

func TestPayloadsStayUnderTheLimit(t *testing.T) {
	var cs []changefeed.Change
	for i := range 200 {
		cs = append(cs, changefeed.Change{Topic: "hostcmd", ID: fmt.Sprintf("arn:aws:iam::000000000000:user/host-%04d d-ABCDEFGHI", i)})
	}
	cs = append(cs, cs[0]) // duplicates are sent once
	ps := changefeed.Payloads(cs)
	if len(ps) < 2 {
		t.Fatalf("%d payloads for %d changes", len(ps), len(cs))
	}
	for _, p := range ps {
		if len(p) >= 8000 {
			t.Fatalf("payload of %d bytes", len(p))
		}
	}
	var many []changefeed.Change
	for i := range 1000 {
		many = append(many, changefeed.Change{Topic: "dtarget", ID: fmt.Sprint(i)})
	}
	if ps := changefeed.Payloads(many); len(ps) != 1 || ps[0] != `[{"t":"dtarget","k":""}]` {
		t.Fatalf("a topic with too many changes: %v", ps)
	}
}

// TestSQLiteReportsCommittedWrites: the SQLite store publishes the watched
// records a committed transaction wrote, and nothing for a rolled back one.
func TestSQLiteReportsCommittedWrites(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var f changefeed.Feed
	st.NotifyChanges([]string{"web"}, f.Publish)
	sub := f.Subscribe()
	defer sub.Close()
	checkCommitOnly(t, st, sub)
}

// TestPostgresNotifiesOtherReplicas: a transaction committed through one
// replica's store reaches another replica's listener; a rolled back one
// does not; a listener that lost its connection resets its subscribers.
func TestPostgresNotifiesOtherReplicas(t *testing.T) {
	url := pgtest.Start(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.NotifyChanges([]string{"web"}, nil)
	var f changefeed.Feed
	sub := f.Subscribe()
	defer sub.Close()
	l := changefeed.Listen(ctx, url, &f, slog.Default())
	defer l.Close()
	if err := l.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkCommitOnly(t, a, sub)

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatal("no reset after the listener's connection was killed")
		}
		if _, reset := sub.Take(); reset {
			break
		}
	}
	// And it listens again (writes before its new LISTEN are lost: that
	// is what the reset said).
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("the listener did not listen again")
		}
		put(t, a, "web", fmt.Sprint("after-", i))
		time.Sleep(100 * time.Millisecond)
		if got, _ := sub.Take(); slices.Contains(got, changefeed.Change{Topic: "web", ID: fmt.Sprint("after-", i)}) {
			break
		}
	}
}

func put(t *testing.T, st store.Store, kind, key string) {
	t.Helper()
	ctx := context.Background()
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put(ctx, kind, key, []byte("v")) }); err != nil {
		t.Fatal(err)
	}
}

func waitChange(t *testing.T, sub *changefeed.Subscription, want changefeed.Change) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatalf("%v never arrived", want)
		}
		got, _ := sub.Take()
		if slices.Contains(got, want) {
			return
		}
	}
}

func checkCommitOnly(t *testing.T, st store.Store, sub *changefeed.Subscription) {
	t.Helper()
	ctx := context.Background()
	errBoom := errors.New("boom")
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.Put(ctx, "web", "rolled-back", []byte("v")); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	put(t, st, "other", "unwatched")
	put(t, st, "web", "1")
	waitChange(t, sub, changefeed.Change{Topic: "web", ID: "1"})
	time.Sleep(100 * time.Millisecond)
	if got, _ := sub.Take(); len(got) != 0 {
		t.Fatalf("unexpected changes %v", got)
	}
}

// BenchmarkCrossReplicaWake measures how long a change committed through
// one replica's store takes to reach a subscriber of another replica's
// feed (PostgreSQL LISTEN/NOTIFY), against the commit alone
// (BenchmarkCommitBaseline) measured on the same database.
func BenchmarkCrossReplicaWake(b *testing.B) {
	a, sub, stop := benchPair(b)
	defer stop()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := a.Update(ctx, func(tx store.Tx) error { return tx.Put(ctx, "hostcmd", fmt.Sprint("host ", i), []byte("v")) }); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			<-sub.Ready()
			cs, _ := sub.Take()
			got = slices.Contains(cs, changefeed.Change{Topic: "hostcmd", ID: fmt.Sprint("host ", i)})
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkCommitBaseline is the same write without waiting for its
// notification.
func BenchmarkCommitBaseline(b *testing.B) {
	a, _, stop := benchPair(b)
	defer stop()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := a.Update(ctx, func(tx store.Tx) error { return tx.Put(ctx, "hostcmd", fmt.Sprint("host ", i), []byte("v")) }); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func benchPair(b *testing.B) (store.Store, *changefeed.Subscription, func()) {
	url := pgtest.Start(b)
	ctx := context.Background()
	a, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	a.NotifyChanges([]string{"hostcmd"}, nil)
	var f changefeed.Feed
	sub := f.Subscribe("hostcmd")
	l := changefeed.Listen(ctx, url, &f, slog.Default())
	if err := l.WaitUp(ctx); err != nil {
		b.Fatal(err)
	}
	return a, sub, func() { l.Close(); sub.Close(); a.Close() }
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(p(0.5), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}
