package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// CompletionsDirName holds the results of finished commands whose
// PutHostCommandComplete the server has not yet accepted.
const CompletionsDirName = "pending-completions"

// Completion is the outcome of a finished command, kept until the server
// has it: the agent never loses a result because the server was away.
type Completion struct {
	HostCommandIdentifier string    `json:"host_command_identifier"`
	DeploymentID          string    `json:"deployment_id,omitempty"`
	CommandName           string    `json:"command_name,omitempty"`
	CommandStatus         string    `json:"command_status"` // Succeeded or Failed
	Diagnostics           string    `json:"diagnostics"`    // the JSON payload, as sent
	Finished              time.Time `json:"finished"`
}

// CompletionsDir is <root>/pending-completions.
func (l Layout) CompletionsDir() string { return filepath.Join(l.Root, CompletionsDirName) }

// completionPath names the file by a hash: command identifiers are opaque
// strings from the server and must not pick paths.
func (l Layout) completionPath(hostCommandID string) string {
	sum := sha256.Sum256([]byte(hostCommandID))
	return filepath.Join(l.CompletionsDir(), hex.EncodeToString(sum[:16])+".json")
}

// SaveCompletion writes c atomically, so it survives a crash of the agent.
// It does not fsync (2-3 ms on a typical disk, on every command's path): a
// result that is sent at once never needs to survive the host; one that
// must wait is made durable with SyncCompletion.
func (l Layout) SaveCompletion(c Completion) error {
	if c.HostCommandIdentifier == "" {
		return errors.New("save completion: no host command identifier")
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("save completion: %w", err)
	}
	if err := os.MkdirAll(l.CompletionsDir(), 0o700); err != nil {
		return fmt.Errorf("save completion: %w", err)
	}
	if err := atomicfile.Write(l.completionPath(c.HostCommandIdentifier), data, 0o600); err != nil {
		return fmt.Errorf("save completion: %w", err)
	}
	return nil
}

// SyncCompletion flushes a saved result and its directory entry to disk,
// so that it also survives a crash of the host.
func (l Layout) SyncCompletion(hostCommandID string) error {
	for _, path := range []string{l.completionPath(hostCommandID), l.CompletionsDir()} {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("sync completion: %w", err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync completion: %w", err)
		}
	}
	return nil
}

// RemoveCompletion deletes the saved result of a command; a missing one is
// not an error.
func (l Layout) RemoveCompletion(hostCommandID string) error {
	err := os.Remove(l.completionPath(hostCommandID))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove completion: %w", err)
	}
	return nil
}

// ListCompletions returns the saved results, oldest first. Unreadable files
// (a crash mid-write leaves only a temporary file, which is skipped) are
// reported in the error but do not hide the others.
func (l Layout) ListCompletions() ([]Completion, error) {
	entries, err := os.ReadDir(l.CompletionsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list completions: %w", err)
	}
	var out []Completion
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			// A temporary file left by a crash before the rename (see
			// atomicfile): never a saved result.
			_ = os.Remove(filepath.Join(l.CompletionsDir(), e.Name()))
			continue
		}
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(l.CompletionsDir(), e.Name())
		data, err := os.ReadFile(path)
		var c Completion
		if err == nil {
			err = json.Unmarshal(data, &c)
		}
		if err == nil && c.HostCommandIdentifier == "" {
			err = errors.New("no host command identifier")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Finished.Before(out[j].Finished) })
	return out, errors.Join(errs...)
}
