package devenv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// sessionVar is set in the environment of every hook the local agents run.
// Hooks start long-lived processes detached from themselves (the demo's
// `nohup python3 -m http.server &`); these outlive the hook and its process
// group id, and may have called setsid, but they inherit the environment.
// So Close finds them by the marker: no process of another dev session or
// of the user's carries it.
const sessionVar = "CUTOVER_DEV_SESSION"

// killSession sends SIGTERM to every process whose environment holds the
// session marker, waits up to grace for them to exit, then sends SIGKILL to
// those left. It reads /proc, so it finds nothing where there is none.
func killSession(session string, grace time.Duration) error {
	marker := []byte(sessionVar + "=" + session)
	pids, err := sessionProcs(marker)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if pids, err = sessionProcs(marker); err != nil || len(pids) == 0 {
			return err
		}
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sessionProcs lists the live processes, other than this one, whose
// environment holds marker. Zombies have an empty environment and are not
// listed.
func sessionProcs(marker []byte) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		// Unreadable (another user's process) or gone: not ours.
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if bytes.Equal(kv, marker) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}
