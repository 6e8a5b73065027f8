package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/hooklog"
)

// Hook output streaming: a Cutover extension of the agent protocol. The
// output goes to the server in chunks while the hook runs, besides the
// local log files; a server that does not know the operation (or any
// failure) only costs the central copy, never the deployment.

// logFlushEvery is how long output may wait before it is sent.
const logFlushEvery = 250 * time.Millisecond

// logRetryMax bounds the wait between attempts while the server is
// unreachable or busy; output keeps collecting meanwhile (within the
// per-command bound) and goes out when it answers again.
const logRetryMax = 5 * time.Second

// logStream buffers a command's hook output and sends it with PutHookLog.
type logStream struct {
	client *protocol.Client
	log    *slog.Logger
	cmd    string
	event  string

	mu      sync.Mutex
	buf     []byte
	sent    int  // bytes accepted into the stream so far
	cut     bool // the 1 MiB bound was reached
	failed  bool // the server refused: stop sending
	backoff time.Duration
	retryAt time.Time // no attempt before this, after a transient failure
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	stopped bool
}

// streamHookLog starts a stream for one command; Close flushes and ends it.
func (a *agent) streamHookLog(cmd, event string) *logStream {
	c := *a.client
	c.TargetPrefix = hooklog.TargetPrefix
	c.MaxRetries = 1
	s := &logStream{client: &c, log: a.log, cmd: cmd, event: event,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Write implements io.Writer for hook.Request.Output. It never blocks on
// the network and never fails.
func (s *logStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut || s.failed {
		return len(p), nil
	}
	keep := p
	if room := hooklog.MaxPerCommand - s.sent; len(keep) > room {
		keep = keep[:room]
		s.cut = true
	}
	s.buf = append(s.buf, keep...)
	s.sent += len(keep)
	if s.cut {
		s.buf = append(s.buf, hooklog.TruncationMarker...)
	}
	if len(s.buf) >= hooklog.MaxChunk/2 || s.cut {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func (s *logStream) run() {
	defer close(s.done)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			// One last attempt, even while backing off: the hook has
			// ended and its completion waits for at most this call.
			s.mu.Lock()
			s.retryAt = time.Time{}
			s.mu.Unlock()
			s.flush()
			return
		case <-t.C:
		case <-s.wake:
		}
		s.flush()
	}
}

func (s *logStream) flush() {
	for {
		s.mu.Lock()
		if len(s.buf) == 0 || s.failed || time.Now().Before(s.retryAt) {
			s.mu.Unlock()
			return
		}
		n := min(len(s.buf), hooklog.MaxChunk)
		chunk := string(s.buf[:n])
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.client.Call(ctx, hooklog.OpPutHookLog, hooklog.PutHookLogInput{
			HostCommandIdentifier: s.cmd, LifecycleEvent: s.event, Data: chunk}, nil)
		cancel()
		s.mu.Lock()
		switch {
		case err == nil:
			s.buf = s.buf[n:]
			s.backoff, s.retryAt = 0, time.Time{}
		case refused(err):
			// A server without the extension, or one that will not take
			// this command's output: the central copy is lost, the
			// deployment is not.
			s.failed = true
			s.buf = nil
		default:
			// Unreachable or busy: the chunk stays first in line.
			s.backoff = min(max(2*s.backoff, logFlushEvery), logRetryMax)
			s.retryAt = time.Now().Add(s.backoff)
		}
		s.mu.Unlock()
		if err != nil {
			s.log.Debug("hook output not streamed to the server", "command", s.cmd, "err", err, "refused", refused(err))
			return
		}
	}
}

// refused reports whether the server answered err as final: an answer
// that is not throttling or a server error.
func refused(err error) bool {
	var ae *protocol.APIError
	return errors.As(err, &ae) && !ae.Retryable()
}

// Close sends what is buffered and ends the stream.
func (s *logStream) Close() error {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.done
	return nil
}
