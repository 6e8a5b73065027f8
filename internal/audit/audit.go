// Package audit keeps the record of every call that changes something:
// who (access key and principal), what (operation and the resources it
// names), when, from where, and how it ended. Entries live in the store,
// ordered by time, and are pruned after a retention period.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/internal/store"
)

const kind = "audit"

// keyTime is the fixed-width, sortable time part of an entry's key.
const keyTime = "20060102T150405.000000000Z"

// Success is the outcome of a call that succeeded; others carry the error
// code answered (AccessDeniedException, ValidationException, …).
const Success = "Success"

// Entry is one audited call.
type Entry struct {
	ID          string    `json:"-"` // store key: time, then a random suffix
	Time        time.Time `json:"Time"`
	AccessKeyID string    `json:"AccessKeyId"`
	Principal   string    `json:"Principal"`
	Account     string    `json:"Account"`
	Region      string    `json:"Region,omitempty"`
	Operation   string    `json:"Operation"` // e.g. codedeploy:CreateDeployment
	Resources   []string  `json:"Resources,omitempty"`
	Source      string    `json:"Source"` // remote address, or "cli" for local tools
	Outcome     string    `json:"Outcome"`
	Message     string    `json:"Message,omitempty"`
	RequestID   string    `json:"RequestId,omitempty"`
}

// maxMessage bounds the error message kept per entry.
const maxMessage = 512

func newID(t time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format(keyTime) + "-" + hex.EncodeToString(b[:])
}

// Record stores e; its Time defaults to now.
func Record(ctx context.Context, st store.Store, e Entry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	if len(e.Message) > maxMessage {
		e.Message = e.Message[:maxMessage]
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return st.Update(ctx, func(tx store.Tx) error {
		return tx.Insert(ctx, kind, newID(e.Time), b)
	})
}

// Filter selects entries. Zero fields select everything.
type Filter struct {
	Since, Until time.Time
	AccessKeyID  string
	Account      string
	Operation    string // exact, e.g. codedeploy:DeleteApplication
	Outcome      string
	// After continues a listing after the entry with this ID.
	After string
	// Limit bounds the answer; default and maximum 1000.
	Limit int
}

// MaxList is the most entries one List answers.
const MaxList = 1000

// List returns the entries f selects, oldest first. A full page (Limit
// entries) may have more after its last entry's ID.
func List(ctx context.Context, st store.Store, f Filter) ([]Entry, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxList {
		limit = MaxList
	}
	after := f.After
	if s := f.Since.UTC().Format(keyTime); !f.Since.IsZero() && s > after {
		after = s
	}
	var out []Entry
	err := st.View(ctx, func(tx store.Tx) error {
		out = nil
		for len(out) < limit {
			items, err := tx.Scan(ctx, kind, "", after, 500)
			if err != nil {
				return err
			}
			for _, it := range items {
				after = it.Key
				var e Entry
				if err := json.Unmarshal(it.Value, &e); err != nil {
					return fmt.Errorf("decode audit entry %s: %w", it.Key, err)
				}
				if !f.Until.IsZero() && e.Time.After(f.Until) {
					return nil
				}
				e.ID = it.Key
				if f.matches(e) {
					out = append(out, e)
					if len(out) == limit {
						return nil
					}
				}
			}
			if len(items) < 500 {
				return nil
			}
		}
		return nil
	})
	return out, err
}

func (f Filter) matches(e Entry) bool {
	return (f.AccessKeyID == "" || e.AccessKeyID == f.AccessKeyID) &&
		(f.Account == "" || e.Account == f.Account) &&
		(f.Operation == "" || e.Operation == f.Operation) &&
		(f.Outcome == "" || e.Outcome == f.Outcome)
}

// Prune deletes the entries older than before and returns how many.
func Prune(ctx context.Context, st store.Store, before time.Time) (int, error) {
	cutoff := before.UTC().Format(keyTime)
	total := 0
	for {
		n := 0
		err := st.Update(ctx, func(tx store.Tx) error {
			n = 0
			items, err := tx.Scan(ctx, kind, "", "", 500)
			if err != nil {
				return err
			}
			for _, it := range items {
				if it.Key >= cutoff {
					break
				}
				if _, err := tx.Delete(ctx, kind, it.Key); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil || n < 500 {
			return total, err
		}
	}
}
