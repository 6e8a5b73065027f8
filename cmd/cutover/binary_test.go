package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cutoverBin is the cutover binary the tests in this package run, built
// once by TestMain: CLI behaviour (exit codes, signals, what -h leaves on
// disk) is tested on the real program.
var cutoverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cutoverBin = filepath.Join(dir, "cutover")
	if err := goBuild(cutoverBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds this package to out. Where git refuses to describe the
// tree (another user's checkout, as root in CI), it builds without VCS
// stamping rather than not at all.
func goBuild(out string, flags ...string) error {
	build := func(extra ...string) ([]byte, error) {
		args := append(append([]string{"build", "-o", out}, extra...), flags...)
		return exec.Command("go", append(args, ".")...).CombinedOutput()
	}
	b, err := build()
	if err != nil && bytes.Contains(b, []byte("buildvcs")) {
		b, err = build("-buildvcs=false")
	}
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	return nil
}

// cleanEnv is the test's environment without Cutover or AWS settings, so
// that the developer's own do not leak into the program under test.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUTOVER_") && !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBin runs the binary to completion with env (see cleanEnv).
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(cutoverBin, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("cutover %v: %v", args, err)
	}
	return r
}

// proc is a long-running cutover command.
type proc struct {
	cmd     *exec.Cmd
	lines   chan string // stdout, line by line
	errPath string      // stderr
}

// startBin starts a long-running command; it is killed at the end of the
// test if still running.
func startBin(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{errPath: filepath.Join(dir, "stderr"), lines: make(chan string, 1000)}
	errFile, err := os.Create(p.errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	p.cmd = exec.Command(cutoverBin, args...)
	p.cmd.Env = cleanEnv(env...)
	p.cmd.Dir = dir
	p.cmd.Stderr = errFile
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_, _ = p.stop(nil, time.Minute)
		}
	})
	return p
}

// readUntil returns the stdout lines up to and including the first that
// contains marker.
func (p *proc) readUntil(t *testing.T, marker string, timeout time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("exited before printing %q; stdout %q; stderr:\n%s", marker, got, p.stderr())
			}
			got = append(got, line)
			if strings.Contains(line, marker) {
				return got
			}
		case <-deadline:
			t.Fatalf("no %q within %s; stdout %q; stderr:\n%s", marker, timeout, got, p.stderr())
		}
	}
}

func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errPath)
	return string(b)
}

// stop sends sig (nil: none), reads the rest of stdout and waits for the
// process to exit within timeout; it returns the exit code.
func (p *proc) stop(sig os.Signal, timeout time.Duration) (int, error) {
	if sig != nil {
		if err := p.cmd.Process.Signal(sig); err != nil {
			return -1, err
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-p.lines:
			if ok {
				continue
			}
		case <-deadline:
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			return -1, fmt.Errorf("did not exit within %s", timeout)
		}
		break
	}
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}
