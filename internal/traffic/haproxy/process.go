package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/internal/traffic"
)

// Process is an haproxy started by Start, for tests and benchmarks; in
// production HAProxy is run by the operator's service manager.
type Process struct {
	Socket string
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	out    bytes.Buffer
}

// Start writes dir/haproxy.cfg for tgs and runs "haproxy -f cfg -db" until
// Stop, returning once the runtime API answers.
func Start(ctx context.Context, dir string, tgs []traffic.TargetGroupConfig) (*Process, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, err
	}
	p := &Process{Socket: filepath.Join(dir, "haproxy.sock"), done: make(chan struct{})}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		return nil, err
	}
	if err := WriteConfig(f, p.Socket, tgs); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, "-f", cfgPath, "-db")
	p.cmd.Stdout = &lockedWriter{p}
	p.cmd.Stderr = &lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	c := Client{Socket: p.Socket}
	for {
		if _, err := c.Do(ctx, "show info"); err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("haproxy exited: %s", p.Output())
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("haproxy not ready: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Output is what haproxy printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stop terminates haproxy and waits for it.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

type lockedWriter struct{ p *Process }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}
