package changefeed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the PostgreSQL notification channel the store notifies on.
const Channel = "cutover_changes"

// maxPayload keeps each notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7000

// maxChangesPerTopic bounds how many ids of one topic a transaction
// reports; beyond it the transaction reports the whole topic as changed.
const maxChangesPerTopic = 256

// Payloads encodes changes as notification payloads, each a JSON array
// under the size limit. A topic with too many changes in one transaction is
// reported once with an empty ID: "anything of this topic may have changed".
func Payloads(changes []Change) []string {
	perTopic := map[string]int{}
	for _, c := range changes {
		perTopic[c.Topic]++
	}
	seen := map[Change]bool{}
	var out []string
	var cur []Change
	size := 2
	flush := func() {
		if len(cur) > 0 {
			b, _ := json.Marshal(cur)
			out = append(out, string(b))
		}
		cur, size = nil, 2
	}
	for _, c := range changes {
		if perTopic[c.Topic] > maxChangesPerTopic {
			c.ID = ""
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		b, _ := json.Marshal(c)
		if len(b) > maxPayload-2 {
			c.ID = "" // an absurdly long key: report the topic
			b, _ = json.Marshal(c)
		}
		if size+len(b)+1 > maxPayload {
			flush()
		}
		cur = append(cur, c)
		size += len(b) + 1
	}
	flush()
	return out
}

// decode reads a notification payload.
func decode(payload string) ([]Change, error) {
	var cs []Change
	if err := json.Unmarshal([]byte(payload), &cs); err != nil {
		return nil, fmt.Errorf("changefeed: bad payload: %w", err)
	}
	return cs, nil
}

// Listener publishes a PostgreSQL database's change notifications to a
// Feed. It owns one connection, outside any pool: a pooled connection
// could sit in a transaction (notifications wait until it ends) or go
// through a transaction-mode pooler (LISTEN does not work there).
type Listener struct {
	cancel context.CancelFunc
	done   chan struct{}
	up     chan struct{} // closed once the first LISTEN is in place
}

// Listen starts listening on url's database until Close. After every
// (re)connection the feed is reset: notifications sent while no connection
// listened are lost.
func Listen(ctx context.Context, url string, feed *Feed, log *slog.Logger) *Listener {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Listener{cancel: cancel, done: make(chan struct{}), up: make(chan struct{})}
	go l.run(ctx, url, feed, log)
	return l
}

// WaitUp waits until the listener listens (or ctx ends).
func (l *Listener) WaitUp(ctx context.Context) error {
	select {
	case <-l.up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops listening and waits for the listener to finish.
func (l *Listener) Close() error {
	l.cancel()
	<-l.done
	return nil
}

func (l *Listener) run(ctx context.Context, url string, feed *Feed, log *slog.Logger) {
	defer close(l.done)
	first := true
	for attempt := 0; ; attempt++ {
		err := l.listenOnce(ctx, url, feed, &first)
		if ctx.Err() != nil {
			return
		}
		log.Warn("change feed: listener connection lost; reconnecting", "err", err)
		feed.Reset()
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second)):
		}
	}
}

func (l *Listener) listenOnce(ctx context.Context, url string, feed *Feed, first *bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, url)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	if *first {
		*first = false
		close(l.up)
	} else {
		feed.Reset() // whatever was notified while we were away is lost
	}
	for {
		// A bounded wait, then a ping: a half-open connection is found
		// within seconds instead of at TCP keepalive's pace.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if wctx.Err() == nil {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		cs, err := decode(n.Payload)
		if err != nil {
			feed.Reset()
			continue
		}
		feed.Publish(cs)
	}
}
