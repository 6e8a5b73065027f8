package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cutoverhq/cutover/internal/store"
)

// benchKeys is how many records BenchGet reads from, enough that reads do
// not all hit one page.
const benchKeys = 1000

// BenchGet measures one Get in its own View, from parallel goroutines.
func BenchGet(b *testing.B, s store.Store) {
	ctx := b.Context()
	value := make([]byte, 512) // about the size of a JSON deployment record
	err := s.Update(ctx, func(tx store.Tx) error {
		for i := range benchKeys {
			if err := tx.Put(ctx, "bench", benchKey(i), value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := benchKey(int(next.Add(1) % benchKeys))
			err := s.View(ctx, func(tx store.Tx) error {
				_, err := tx.Get(ctx, "bench", key)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchUpdatePut measures one committed Update holding one Put of a new
// record, from parallel goroutines: the cost of an acknowledged write.
func BenchUpdatePut(b *testing.B, s store.Store) {
	ctx := context.Background()
	value := make([]byte, 512)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := benchKey(int(next.Add(1)))
			err := s.Update(ctx, func(tx store.Tx) error {
				return tx.Put(ctx, "bench", key, value)
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchKey(i int) string { return fmt.Sprintf("acct/us-east-1/app-%08d", i) }
