// Package background runs a component's goroutine with an owner that stops
// and joins it: Start launches it, Close cancels it and waits for it to
// return, so that a server's Close leaves nothing running.
package background

import (
	"context"
	"sync"
)

// Task is one owned goroutine. The zero value is ready to use; a Task may
// be started again after Close.
type Task struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs run in a goroutine with a context that ctx's values reach
// but not its cancellation: only Close ends it. Starting a running Task
// closes the previous run first.
func (t *Task) Start(ctx context.Context, run func(ctx context.Context)) {
	t.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	t.mu.Lock()
	t.cancel, t.done = cancel, done
	t.mu.Unlock()
	go func() {
		defer close(done)
		run(ctx)
	}()
}

// Close cancels the running goroutine, if any, and waits until it returns.
func (t *Task) Close() {
	t.mu.Lock()
	cancel, done := t.cancel, t.done
	t.cancel, t.done = nil, nil
	t.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
