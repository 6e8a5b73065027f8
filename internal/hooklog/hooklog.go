// Package hooklog keeps the full output of lifecycle hooks centrally.
//
// The official agent reports only a 2 KiB logTail of failed hooks. The
// Cutover agent additionally streams each hook's output while it runs, with
// PutHookLog, a Cutover extension operation on its own target prefix of the
// agent protocol (the official agent never calls it). Output is kept as
// store records, bounded per command and pruned after a retention period.
package hooklog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/store"
)

// Wire constants of the extension operation.
const (
	TargetPrefix = "CutoverAgent_20261129"
	OpPutHookLog = "PutHookLog"
)

// Store kinds: a header per command (Kind) and its chunks (ChunkKind).
// Subscribers of the change feed watch Kind: every chunk updates its header.
const (
	Kind      = "hooklog"
	ChunkKind = "hooklogchunk"
)

// Limits.
const (
	// MaxPerCommand bounds the output kept of one command (one event on one
	// instance); the rest is replaced by TruncationMarker.
	MaxPerCommand = 1 << 20
	// MaxChunk bounds one PutHookLog call's data.
	MaxChunk = 64 << 10
	// TruncationMarker ends an output that exceeded MaxPerCommand.
	TruncationMarker = "\n[cutover: output truncated at 1 MiB]\n"
	// DefaultRetention is how long logs are kept unless configured.
	DefaultRetention = 7 * 24 * time.Hour
	// MaxRead bounds the output one Read returns; the logs beyond it are
	// listed with Omitted set (read them one instance at a time).
	MaxRead = 16 << 20
)

// PutHookLogInput is the request of PutHookLog.
type PutHookLogInput struct {
	HostCommandIdentifier string `json:"hostCommandIdentifier"`
	LifecycleEvent        string `json:"lifecycleEvent"`
	Data                  string `json:"data"`
}

// header describes one command's log.
type header struct {
	Deployment string    `json:"deployment"`
	Instance   string    `json:"instance"`
	Event      string    `json:"event"`
	Command    string    `json:"command"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Bytes      int       `json:"bytes"`
	Chunks     int       `json:"chunks"`
	Truncated  bool      `json:"truncated,omitempty"`
}

// Log is one command's output as read back.
type Log struct {
	Instance  string    `json:"instance"`
	Event     string    `json:"event"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
	Truncated bool      `json:"truncated"`
	Omitted   bool      `json:"omitted,omitempty"`
	Text      string    `json:"text"`
}

// Service stores and reads hook logs.
type Service struct {
	Store store.Store
	Now   func() time.Time
	// Instance returns the calling host's instance name ("" when the
	// caller is not an instance).
	Instance func(ctx context.Context) (string, error)
	// Command checks that a command id is a current command of the
	// calling host and returns its deployment id.
	Command func(ctx context.Context, cmdID string) (string, error)
	Logger  *slog.Logger
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Serve serves the extension operations of TargetPrefix.
func (s *Service) Serve(ctx context.Context, op string, body []byte) (any, error) {
	if op != OpPutHookLog {
		return nil, awsjson.Errorf("UnknownOperationException", "unknown operation %s.%s", TargetPrefix, op)
	}
	var in PutHookLogInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, awsjson.Errorf("SerializationException", "cannot decode PutHookLog input: %v", err)
	}
	return nil, s.Put(ctx, in)
}

// validName rejects what would break the key layout.
func validName(s string, max int) bool {
	return s != "" && len(s) <= max && !strings.ContainsAny(s, "/\x00") && utf8.ValidString(s)
}

// Put appends a chunk of output for the caller's own current command.
func (s *Service) Put(ctx context.Context, in PutHookLogInput) error {
	if !validName(in.HostCommandIdentifier, 200) {
		return awsjson.Errorf("ValidationException", "hostCommandIdentifier is required and must not contain '/'")
	}
	if !validName(in.LifecycleEvent, 100) {
		return awsjson.Errorf("ValidationException", "lifecycleEvent is required and must not contain '/'")
	}
	if len(in.Data) > MaxChunk {
		return awsjson.Errorf("ValidationException", "data exceeds %d bytes", MaxChunk)
	}
	inst, err := s.Instance(ctx)
	if err != nil {
		return err
	}
	if inst == "" {
		return awsjson.Errorf("AccessDeniedException", "PutHookLog is only for the keys of registered on-premises instances")
	}
	dep, err := s.Command(ctx, in.HostCommandIdentifier)
	if err != nil {
		return err
	}
	if in.Data == "" {
		return nil
	}
	key := dep + "/" + inst + "/" + in.HostCommandIdentifier
	now := s.now()
	return s.Store.Update(ctx, func(tx store.Tx) error {
		h := header{Deployment: dep, Instance: inst, Event: in.LifecycleEvent, Command: in.HostCommandIdentifier, Started: now}
		b, err := tx.Get(ctx, Kind, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &h); err != nil {
				return fmt.Errorf("hook log header %s: %w", key, err)
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if h.Truncated {
			return nil
		}
		data := in.Data
		if room := MaxPerCommand - h.Bytes; len(data) > room {
			data = data[:max(room, 0)] + TruncationMarker
			h.Truncated = true
		}
		if err := tx.Put(ctx, ChunkKind, fmt.Sprintf("%s/%08d", key, h.Chunks), []byte(data)); err != nil {
			return err
		}
		h.Chunks++
		h.Bytes += len(data)
		h.Updated = now
		hb, err := json.Marshal(h)
		if err != nil {
			return err
		}
		return tx.Put(ctx, Kind, key, hb)
	})
}

// Read returns the logs of a deployment (of one instance when instance is
// not empty), oldest command first. Callers check the reader may see the
// deployment.
func (s *Service) Read(ctx context.Context, deployment, instance string) ([]Log, error) {
	if !validName(deployment, 200) || (instance != "" && !validName(instance, 200)) {
		return nil, nil
	}
	prefix := deployment + "/"
	if instance != "" {
		prefix += instance + "/"
	}
	var out []Log
	budget := MaxRead
	err := s.Store.View(ctx, func(tx store.Tx) error {
		heads, err := tx.Scan(ctx, Kind, prefix, "", 0)
		if err != nil {
			return err
		}
		for _, it := range heads {
			var h header
			if err := json.Unmarshal(it.Value, &h); err != nil {
				return fmt.Errorf("hook log header %s: %w", it.Key, err)
			}
			l := Log{Instance: h.Instance, Event: h.Event, Command: h.Command, Started: h.Started,
				Updated: h.Updated, Truncated: h.Truncated, Omitted: h.Bytes > budget}
			if !l.Omitted {
				chunks, err := tx.Scan(ctx, ChunkKind, it.Key+"/", "", 0)
				if err != nil {
					return err
				}
				var sb strings.Builder
				for _, c := range chunks {
					sb.Write(c.Value)
				}
				l.Text = sb.String()
				budget -= len(l.Text)
			}
			out = append(out, l)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, err
}

// DeploymentOf returns the deployment id of a header key (a change feed ID).
func DeploymentOf(key string) string {
	d, _, _ := strings.Cut(key, "/")
	return d
}

// Prune deletes the logs not written to since before, a bounded batch at a
// time, and returns how many commands' logs it deleted.
func (s *Service) Prune(ctx context.Context, before time.Time) (int, error) {
	n := 0
	after := ""
	for {
		var heads []store.Item
		err := s.Store.View(ctx, func(tx store.Tx) error {
			var err error
			heads, err = tx.Scan(ctx, Kind, "", after, 500)
			return err
		})
		if err != nil || len(heads) == 0 {
			return n, err
		}
		after = heads[len(heads)-1].Key
		for _, it := range heads {
			var h header
			if json.Unmarshal(it.Value, &h) == nil && !h.Updated.Before(before) {
				continue
			}
			err := s.Store.Update(ctx, func(tx store.Tx) error {
				chunks, err := tx.Scan(ctx, ChunkKind, it.Key+"/", "", 0)
				if err != nil {
					return err
				}
				for _, c := range chunks {
					if _, err := tx.Delete(ctx, ChunkKind, c.Key); err != nil {
						return err
					}
				}
				_, err = tx.Delete(ctx, Kind, it.Key)
				return err
			})
			if err != nil {
				return n, err
			}
			n++
		}
	}
}

// Pruner prunes logs older than a retention period, hourly, until Close.
type Pruner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartPruner prunes now and then every interval.
func (s *Service) StartPruner(retention, interval time.Duration) *Pruner {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pruner{cancel: cancel, done: make(chan struct{})}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			n, err := s.Prune(ctx, s.now().Add(-retention))
			if err != nil && ctx.Err() == nil {
				log.Warn("pruning hook logs", "err", err)
			} else if n > 0 {
				log.Info("pruned hook logs", "commands", n, "retention", retention)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// Close stops the pruner and waits for it.
func (p *Pruner) Close() error {
	p.cancel()
	<-p.done
	return nil
}
