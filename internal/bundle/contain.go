package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ErrOutside is matched (errors.Is) by Resolve's *OutsideError.
var ErrOutside = errors.New("outside the deployment archive")

// OutsideError is Resolve's error for a name that leads out of the archive.
type OutsideError struct {
	Name    string // as the appspec gave it
	Archive string
	Real    string // where a symlink led, "" when ".." did
}

// Reason says where the name leads, without repeating it.
func (e *OutsideError) Reason() string {
	if e.Real != "" {
		return "it resolves through a symlink to " + e.Real + ", outside the deployment archive " + e.Archive
	}
	return "it leads outside the deployment archive " + e.Archive
}

func (e *OutsideError) Error() string { return fmt.Sprintf("%q: %s", e.Name, e.Reason()) }

// Is makes errors.Is(err, ErrOutside) true.
func (e *OutsideError) Is(target error) bool { return target == ErrOutside }

// Resolve returns the absolute path of name (an appspec hook location or
// files source, relative to the archive; a leading "/" is the archive root,
// as the official agent's File.join makes it) and checks that it stays
// inside archiveDir: lexically after cleaning, and again after resolving
// symlinks (of the longest part of the path that exists). The official agent
// follows "../../bin/sh" or a symlink to "/"; Cutover does not. A missing
// path inside is returned without error so the caller reports it as missing.
func Resolve(archiveDir, name string) (string, error) {
	root, err := filepath.Abs(archiveDir)
	if err != nil {
		return "", err
	}
	abs := filepath.Join(root, name)
	if !within(root, abs) {
		return "", &OutsideError{Name: name, Archive: root}
	}
	real, err := resolveExisting(abs)
	if err != nil {
		return "", fmt.Errorf("resolve %q: %w", name, err)
	}
	realRoot, err := resolveExisting(root)
	if err != nil {
		return "", fmt.Errorf("resolve the deployment archive: %w", err)
	}
	if !within(realRoot, real) {
		return "", &OutsideError{Name: name, Archive: root, Real: real}
	}
	return abs, nil
}

// within reports whether path (absolute, clean) is root or below it.
func within(root, path string) bool {
	return path == root || strings.HasPrefix(path, root+string(filepath.Separator))
}

// resolveExisting resolves the symlinks of path's longest existing prefix
// and appends the missing rest as it is.
func resolveExisting(path string) (string, error) {
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(path)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		parent := filepath.Dir(path)
		if !errors.Is(err, fs.ErrNotExist) || parent == path {
			return "", err
		}
		rest = filepath.Join(filepath.Base(path), rest)
		path = parent
	}
}
