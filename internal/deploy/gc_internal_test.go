package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/lease"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// TestCollectGarbage: replies nobody read and readiness leases of replicas
// long gone are removed; fresh ones stay.
func TestCollectGarbage(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r := New(Config{Store: st, Now: func() time.Time { return now }})
	oldReply := fmt.Sprintf("d-1/%020d-aa", now.Add(-time.Hour).UnixNano())
	newReply := fmt.Sprintf("d-1/%020d-bb", now.Add(-time.Second).UnixNano())
	leaseRec := func(exp time.Time) []byte {
		b, _ := json.Marshal(map[string]any{"owner": "x", "epoch": 1, "expires": exp})
		return b
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		for _, k := range []string{oldReply, newReply} {
			if err := tx.Put(ctx, kindReply, k, []byte("{}")); err != nil {
				return err
			}
		}
		if err := tx.Put(ctx, lease.Kind, readinessPrefix+"gone", leaseRec(now.Add(-2*time.Hour))); err != nil {
			return err
		}
		if err := tx.Put(ctx, lease.Kind, readinessPrefix+"alive", leaseRec(now.Add(time.Second))); err != nil {
			return err
		}
		return tx.Put(ctx, lease.Kind, leaseName("d-2"), leaseRec(now.Add(-2*time.Hour)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.exec.collectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind, key string
		kept      bool
	}{
		{kindReply, oldReply, false},
		{kindReply, newReply, true},
		{lease.Kind, readinessPrefix + "gone", false},
		{lease.Kind, readinessPrefix + "alive", true},
		{lease.Kind, leaseName("d-2"), true}, // deployments' leases are not the collector's
	} {
		_, err := store.Get(ctx, st, tc.kind, tc.key)
		if kept := err == nil; kept != tc.kept {
			t.Errorf("%s/%s kept=%v, want %v (%v)", tc.kind, tc.key, kept, tc.kept, err)
		}
	}
}
