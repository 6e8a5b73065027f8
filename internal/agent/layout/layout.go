// Package layout owns the agent's on-host directory layout under root_dir
// (§6.1): deployment directories, the last-successful and most-recent pointer
// files, keep-last-N revision cleanup and the crash-tracking files (§9).
package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/atomicfile"
)

// Layout is the directory tree rooted at the agent's root_dir.
type Layout struct {
	Root string
}

// Names of fixed entries under the root.
const (
	InstructionsDirName = "deployment-instructions"
	DeploymentLogsDir   = "deployment-logs"
	TrackingDirName     = "ongoing-deployment"
	ArchiveDirName      = "deployment-archive"
	BundleFileName      = "bundle.tar"
)

// DeploymentDir is <root>/<DGID>/<DID>.
func (l Layout) DeploymentDir(dgid, did string) string { return filepath.Join(l.Root, dgid, did) }

// ArchiveDir is <root>/<DGID>/<DID>/deployment-archive.
func (l Layout) ArchiveDir(dgid, did string) string {
	return filepath.Join(l.DeploymentDir(dgid, did), ArchiveDirName)
}

// BundlePath is <root>/<DGID>/<DID>/bundle.tar, whatever the bundle type.
func (l Layout) BundlePath(dgid, did string) string {
	return filepath.Join(l.DeploymentDir(dgid, did), BundleFileName)
}

// ScriptLog is <root>/<DGID>/<DID>/logs/scripts.log.
func (l Layout) ScriptLog(dgid, did string) string {
	return filepath.Join(l.DeploymentDir(dgid, did), "logs", "scripts.log")
}

// DeploymentLog is the host-wide hook output log.
func (l Layout) DeploymentLog() string {
	return filepath.Join(l.Root, DeploymentLogsDir, "codedeploy-agent-deployments.log")
}

// InstructionsDir is <root>/deployment-instructions.
func (l Layout) InstructionsDir() string { return filepath.Join(l.Root, InstructionsDirName) }

// TrackingDir is <root>/ongoing-deployment.
func (l Layout) TrackingDir() string { return filepath.Join(l.Root, TrackingDirName) }

// Pointer names one of the two per-group pointer files.
type Pointer string

// The pointer files of §6.1.
const (
	LastSuccessful Pointer = "last_successful_install"
	MostRecent     Pointer = "most_recent_install"
)

func (l Layout) pointerPath(dgid string, p Pointer) string {
	return filepath.Join(l.InstructionsDir(), dgid+"_"+string(p))
}

// WritePointer records <root>/<DGID>/<DID> in the pointer file, without a
// trailing newline, as the official agent does. It replaces the file
// atomically so a crash never leaves a half-written pointer.
func (l Layout) WritePointer(dgid string, p Pointer, did string) error {
	if err := os.MkdirAll(l.InstructionsDir(), 0o755); err != nil {
		return fmt.Errorf("write %s pointer: %w", p, err)
	}
	return atomicfile.Write(l.pointerPath(dgid, p), []byte(l.DeploymentDir(dgid, did)), 0o644)
}

// ReadPointer returns the deployment directory a pointer names, or "" when
// the pointer does not exist (for example on the first deployment).
func (l Layout) ReadPointer(dgid string, p Pointer) (string, error) {
	b, err := os.ReadFile(l.pointerPath(dgid, p))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s pointer: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// CleanupOldRevisions removes old deployment directories of a group so that,
// with the current one, at most maxRevisions remain (§6.2). The oldest by
// mtime go first, and the last-successful revision is never removed because
// ApplicationStop of the next deployment needs its scripts.
func (l Layout) CleanupOldRevisions(dgid, currentDID string, maxRevisions int) ([]string, error) {
	if maxRevisions < 1 {
		return nil, fmt.Errorf("max revisions %d is below 1", maxRevisions)
	}
	groupDir := filepath.Join(l.Root, dgid)
	entries, err := os.ReadDir(groupDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list revisions: %w", err)
	}
	type rev struct {
		path  string
		mtime time.Time
	}
	var revs []rev
	for _, e := range entries {
		if !e.IsDir() || e.Name() == currentDID {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // vanished meanwhile
		}
		revs = append(revs, rev{filepath.Join(groupDir, e.Name()), info.ModTime()})
	}
	extra := len(revs) - maxRevisions + 1
	if extra <= 0 {
		return nil, nil
	}
	last, err := l.ReadPointer(dgid, LastSuccessful)
	if err != nil {
		return nil, err
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].mtime.Before(revs[j].mtime) })
	var removed []string
	for _, r := range revs {
		if extra == 0 {
			break
		}
		if filepath.Clean(r.path) == filepath.Clean(last) {
			continue
		}
		if err := os.RemoveAll(r.path); err != nil {
			return removed, fmt.Errorf("remove old revision: %w", err)
		}
		removed = append(removed, r.path)
		extra--
	}
	return removed, nil
}

// Tracked is one crash-tracking file.
type Tracked struct {
	DeploymentID          string
	HostCommandIdentifier string
	ModTime               time.Time
}

// Track writes the tracking file for a command about to execute.
func (l Layout) Track(did, hostCommandID string) error {
	if err := os.MkdirAll(l.TrackingDir(), 0o700); err != nil {
		return fmt.Errorf("track command: %w", err)
	}
	return atomicfile.Write(filepath.Join(l.TrackingDir(), did), []byte(hostCommandID), 0o644)
}

// Untrack removes a tracking file; a missing one is not an error.
func (l Layout) Untrack(did string) error {
	err := os.Remove(filepath.Join(l.TrackingDir(), did))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("untrack command: %w", err)
	}
	return nil
}

// ListTracked returns the tracking files, oldest first. Files older than
// maxAge are deleted and not returned (§9 step 1): the service gave up on
// those commands long ago.
func (l Layout) ListTracked(now time.Time, maxAge time.Duration) ([]Tracked, error) {
	entries, err := os.ReadDir(l.TrackingDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tracking files: %w", err)
	}
	var out []Tracked
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(l.TrackingDir(), e.Name())
		info, err := e.Info()
		if err != nil {
			continue
		}
		if maxAge > 0 && now.Sub(info.ModTime()) > maxAge {
			_ = os.Remove(path) // stale; best effort, like the official agent
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		out = append(out, Tracked{DeploymentID: e.Name(), HostCommandIdentifier: strings.TrimSpace(string(b)), ModTime: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ModTime.Before(out[j].ModTime) })
	return out, nil
}

// UntrackIf removes the tracking file of did only if it still names
// hostCommandID, so that recovering an old command never drops the tracking
// file of a newer command of the same deployment.
func (l Layout) UntrackIf(did, hostCommandID string) error {
	b, err := os.ReadFile(filepath.Join(l.TrackingDir(), did))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("untrack command: %w", err)
	}
	if strings.TrimSpace(string(b)) != hostCommandID {
		return nil
	}
	return l.Untrack(did)
}
