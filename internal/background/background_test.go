package background

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestTask(t *testing.T) {
	tests := []struct {
		name   string
		starts int
	}{
		{"closed before started", 0},
		{"started once", 1},
		{"started again while running", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var task Task
			var running, ran atomic.Int32
			type key struct{}
			parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
			for range tc.starts {
				task.Start(parent, func(ctx context.Context) {
					if ctx.Value(key{}) != "v" {
						t.Error("the context's values did not reach the goroutine")
					}
					if running.Add(1) > 1 {
						t.Error("two runs at once")
					}
					ran.Add(1)
					<-ctx.Done()
					running.Add(-1)
				})
			}
			// The parent's cancellation does not stop it; Close does.
			cancelParent()
			time.Sleep(20 * time.Millisecond)
			if tc.starts > 0 && running.Load() != 1 {
				t.Fatalf("%d runs after the parent context was cancelled, want 1", running.Load())
			}
			task.Close()
			if running.Load() != 0 {
				t.Fatal("Close returned before the goroutine did")
			}
			if int(ran.Load()) != tc.starts {
				t.Fatalf("ran %d times, want %d", ran.Load(), tc.starts)
			}
			task.Close() // idempotent
		})
	}
}
