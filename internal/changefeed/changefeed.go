// Package changefeed tells every replica of a Cutover server, and
// subscribers inside each process, which store records changed.
//
// The store reports the records a committed transaction wrote (kind and
// key, never values: subscribers re-read what they need). On SQLite the
// report reaches the process's Feed directly after the commit. On
// PostgreSQL the transaction itself issues pg_notify before it commits, so
// a notification exists exactly when the change does, and every replica's
// [Listener] (one dedicated connection doing LISTEN) publishes it to its
// own Feed, the writing replica included: one path for all.
//
// Notifications can be lost (a Listener reconnecting, a subscriber too slow
// to keep up). Subscribers then receive a reset: forget what you cached
// and re-read everything you watch. A subscriber that acts on state (an
// agent's long poll, a router) should also re-read on a slow timer.
package changefeed

import (
	"sync"
)

// Change names one record written by a committed transaction. Topic is the
// store kind, ID the record's key.
type Change struct {
	Topic string `json:"t"`
	ID    string `json:"k"`
}

// maxPending bounds a subscription's queue; beyond it the subscription is
// reset instead of growing without limit.
const maxPending = 4096

// Feed fans changes out to subscriptions. The zero value is ready to use.
type Feed struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscribe returns a subscription to changes of the given topics (all
// topics when none is given). Close it when done.
func (f *Feed) Subscribe(topics ...string) *Subscription {
	s := &Subscription{feed: f, ready: make(chan struct{}, 1)}
	if len(topics) > 0 {
		s.topics = map[string]bool{}
		for _, t := range topics {
			s.topics[t] = true
		}
	}
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[*Subscription]struct{}{}
	}
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
}

// Publish delivers changes to every subscription watching their topics. It
// never blocks: a subscription that falls too far behind is reset.
func (f *Feed) Publish(changes []Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.offer(changes)
	}
}

// Reset tells every subscription that changes may have been missed.
func (f *Feed) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.mu.Lock()
		s.reset, s.pending = true, nil
		s.mu.Unlock()
		s.signal()
	}
}

// Subscription is one subscriber's queue of changes.
type Subscription struct {
	feed   *Feed
	topics map[string]bool // nil: every topic
	ready  chan struct{}

	mu      sync.Mutex
	pending []Change
	reset   bool
}

func (s *Subscription) offer(changes []Change) {
	s.mu.Lock()
	n := len(s.pending)
	for _, c := range changes {
		if s.topics != nil && !s.topics[c.Topic] {
			continue
		}
		if s.reset {
			break // a reset already covers everything
		}
		if len(s.pending) >= maxPending {
			s.reset, s.pending = true, nil
			break
		}
		s.pending = append(s.pending, c)
	}
	woke := len(s.pending) != n || s.reset
	s.mu.Unlock()
	if woke {
		s.signal()
	}
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready receives a value when changes (or a reset) are waiting for Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns the waiting changes, in publication order, and whether the
// subscriber must assume it missed some and re-read everything it watches.
func (s *Subscription) Take() (changes []Change, reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes, reset = s.pending, s.reset
	s.pending, s.reset = nil, false
	return changes, reset
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.feed.mu.Lock()
	delete(s.feed.subs, s)
	s.feed.mu.Unlock()
}
