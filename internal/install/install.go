// Package install copies the files of an unpacked revision to their destinations and
// applies the appspec permissions, following the official CodeDeploy agent's
// Installer (1.8.1): clean up what the previous Install of the deployment group
// installed, plan every step (failing on conflicts before anything is copied),
// record the plan, then execute it while writing the new cleanup list.
package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/internal/appspec"
	"github.com/cutoverhq/cutover/internal/bundle"
)

// Request describes one Install command.
type Request struct {
	ArchiveDir        string        // <root>/<DGID>/<DID>/deployment-archive
	Spec              *appspec.Spec // the parsed appspec of ArchiveDir
	InstructionsDir   string        // <root>/deployment-instructions
	DeploymentGroupID string
	// FileExistsBehavior comes from the deployment; the appspec's own key wins,
	// and DISALLOW applies when neither is set.
	FileExistsBehavior string
	// Logger receives progress and notes (nil = slog.Default()).
	Logger *slog.Logger
}

// Install runs the §7.3 algorithm. It does not write the last_successful pointer;
// the caller does that when Install returns nil.
func Install(ctx context.Context, r Request) error {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	if r.Spec == nil {
		return errors.New("install: no appspec")
	}
	if r.DeploymentGroupID == "" || r.InstructionsDir == "" {
		return errors.New("install: deployment group id and instructions dir are required")
	}
	if err := os.MkdirAll(r.InstructionsDir, 0o755); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	cleanupPath := filepath.Join(r.InstructionsDir, r.DeploymentGroupID+"-cleanup")
	if err := cleanup(ctx, log, cleanupPath); err != nil {
		return fmt.Errorf("install: cleanup of the previous deployment: %w", err)
	}

	behavior := r.Spec.FileExistsBehavior
	if behavior == "" {
		behavior = r.FileExistsBehavior
	}
	if behavior == "" {
		behavior = appspec.Disallow
	}
	p := &planner{behavior: behavior, copies: map[string]string{}, mkdirs: map[string]bool{}, permed: map[string]bool{}}
	if err := p.plan(r.ArchiveDir, r.Spec); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	data, err := json.Marshal(struct {
		Instructions []op `json:"instructions"`
	}{p.ops})
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.InstructionsDir, r.DeploymentGroupID+"-install.json"), data, 0o644); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	f, err := os.OpenFile(cleanupPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	for _, o := range p.ops {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("install: %w", err)
		}
		if err := o.execute(ctx, log, f); err != nil {
			return fmt.Errorf("install: %s %s: %w", o.Type, o.target(), err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	log.InfoContext(ctx, "install complete", "deployment_group", r.DeploymentGroupID, "steps", len(p.ops))
	return nil
}

// cleanup removes what the previous Install recorded, newest first, then the list.
func cleanup(ctx context.Context, log *slog.Logger, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.Split(string(data), "\n")
	// The last element is "" after a final newline; otherwise it is a line cut short
	// by a crash mid-write, and the official agent drops it too.
	lines = lines[:len(lines)-1]
	for _, line := range slices.Backward(lines) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if line == "" {
			continue
		}
		if p, ok := strings.CutPrefix(line, "semanage\x00"); ok {
			removeContext(ctx, log, p)
			continue
		}
		fi, err := os.Lstat(line)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case fi.IsDir():
			// A directory someone else put files into is left alone.
			if err := os.Remove(line); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
				return err
			}
		default:
			if err := os.Remove(line); err != nil {
				return err
			}
		}
	}
	return os.Remove(path)
}

func removeContext(ctx context.Context, log *slog.Logger, path string) {
	if _, err := exec.LookPath("semanage"); err != nil {
		log.WarnContext(ctx, "semanage not found; SELinux context left in place", "path", path)
		return
	}
	if out, err := exec.CommandContext(ctx, "semanage", "fcontext", "-d", path).CombinedOutput(); err != nil {
		// The official agent does not fail the Install on this either.
		log.WarnContext(ctx, "semanage fcontext -d failed", "path", path, "err", err, "output", string(out))
	}
}

// op is one planned step; its JSON form is the <DGID>-install.json entry.
type op struct {
	Type        string                  `json:"type"`
	Source      string                  `json:"source,omitempty"`
	Destination string                  `json:"destination,omitempty"`
	Directory   string                  `json:"directory,omitempty"`
	File        string                  `json:"file,omitempty"`
	Mode        string                  `json:"mode,omitempty"`
	Owner       string                  `json:"owner,omitempty"`
	Group       string                  `json:"group,omitempty"`
	ACL         []string                `json:"acl,omitempty"`
	Context     *appspec.SELinuxContext `json:"context,omitempty"`
	uid, gid    int
}

func (o op) target() string {
	switch o.Type {
	case "copy":
		return o.Destination
	case "mkdir":
		return o.Directory
	}
	return o.File
}

type planner struct {
	archive  string // the deployment archive, symlinks resolved
	behavior string
	ops      []op
	copies   map[string]string // destination -> source
	mkdirs   map[string]bool
	permed   map[string]bool
}

func (p *planner) plan(archive string, spec *appspec.Spec) error {
	realArchive, err := filepath.EvalSymlinks(archive)
	if err != nil {
		return fmt.Errorf("resolve the deployment archive: %w", err)
	}
	p.archive = realArchive
	for _, fi := range spec.Files {
		dest, err := filepath.Abs(fi.Destination)
		if err != nil {
			return err
		}
		// Joined like Ruby's File.join ("/", "./x" and "x" are inside the
		// archive), and unlike the official agent refused when it leads out
		// of the archive, by ".." or through a symlink.
		src, err := bundle.Resolve(archive, fi.Source)
		if err != nil {
			return fmt.Errorf("files source %w; Cutover installs only files from the revision bundle", err)
		}
		if isDir(src) {
			if err := p.missingAncestors(dest); err != nil {
				return err
			}
			if err := p.dirCopy(src, dest, nil); err != nil {
				return err
			}
			continue
		}
		// A file (or a missing source, which fails only when copied) always lands
		// inside destination: destination is a directory, never a new name.
		target := filepath.Join(dest, filepath.Base(src))
		if err := p.missingAncestors(target); err != nil {
			return err
		}
		if err := p.fileCopy(src, target); err != nil {
			return err
		}
	}
	for _, perm := range spec.Permissions {
		if err := p.permission(perm); err != nil {
			return err
		}
	}
	return nil
}

func (p *planner) missingAncestors(path string) error {
	var missing []string
	for dir := filepath.Dir(path); dir != "/" && dir != "." && !exists(dir); dir = filepath.Dir(dir) {
		missing = append(missing, dir)
	}
	for _, d := range slices.Backward(missing) {
		if err := p.mkdir(d); err != nil {
			return err
		}
	}
	return nil
}

// dirCopy plans a recursive copy. Entries are walked in name order (the official agent
// uses readdir order; sorting makes plans and errors reproducible). A symlink to a
// directory is descended into, as File.directory? does; seen guards against loops,
// which would recurse forever in the official agent.
func (p *planner) dirCopy(src, dest string, seen []string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if slices.Contains(seen, real) {
		return fmt.Errorf("symlink loop in the bundle at %s", src)
	}
	if real != p.archive && !strings.HasPrefix(real, p.archive+string(filepath.Separator)) {
		return fmt.Errorf("files source directory %w; Cutover installs only files from the revision bundle", &bundle.OutsideError{Name: src, Archive: p.archive, Real: real})
	}
	seen = append(seen, real)
	if !isDir(dest) {
		if err := p.mkdir(dest); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dest, e.Name())
		if isDir(s) {
			err = p.dirCopy(s, d, seen)
		} else {
			err = p.fileCopy(s, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *planner) fileCopy(src, dest string) error {
	if exists(dest) {
		switch p.behavior {
		case appspec.Disallow:
			//lint:ignore ST1005 the official agent's wire message, kept verbatim
			return fmt.Errorf("The deployment failed because a specified file already exists at this location: %s", dest)
		case appspec.Overwrite:
		case appspec.Retain:
			// Kept as it is, and not recorded: the next Install will not remove it.
			return nil
		default:
			//lint:ignore ST1005 the official agent's wire message, kept verbatim
			return fmt.Errorf("The deployment failed because an invalid option was specified for fileExistsBehavior: %s. Valid options include OVERWRITE, RETAIN, and DISALLOW.", p.behavior)
		}
	}
	if prev, ok := p.copies[dest]; ok {
		//lint:ignore ST1005 the official agent's wire message, kept verbatim
		return fmt.Errorf("Duplicate copy instruction to %s from %s and %s", dest, src, prev)
	}
	if p.mkdirs[dest] {
		//lint:ignore ST1005 the official agent's wire message, kept verbatim
		return fmt.Errorf("Duplicate copy instruction to %s from %s which is already being installed as a directory", dest, src)
	}
	p.ops = append(p.ops, op{Type: "copy", Source: src, Destination: dest})
	p.copies[dest] = src
	return nil
}

func (p *planner) mkdir(dir string) error {
	if src, ok := p.copies[dir]; ok {
		//lint:ignore ST1005 the official agent's wire message, kept verbatim
		return fmt.Errorf("Duplicate mkdir instruction for %s which is already being copied from %s", dir, src)
	}
	if !p.mkdirs[dir] {
		p.ops = append(p.ops, op{Type: "mkdir", Directory: dir})
		p.mkdirs[dir] = true
	}
	return nil
}

func (p *planner) permission(perm appspec.Permission) error {
	obj, err := filepath.Abs(perm.Object)
	if err != nil {
		return err
	}
	hasFile, hasDir := slices.Contains(perm.Type, "file"), slices.Contains(perm.Type, "directory")
	if _, copied := p.copies[obj]; copied && hasFile {
		if perm.Pattern != "**" || len(perm.Except) > 0 {
			return fmt.Errorf("permissions for file %s: pattern and except are only allowed when object is a directory", obj)
		}
		for _, a := range perm.ACLs {
			if strings.HasPrefix(a, "d:") || strings.HasPrefix(a, "default:") {
				return fmt.Errorf("permissions for file %s: default ACL entry %q on a file", obj, a)
			}
		}
		return p.setPermissions(obj, perm)
	}
	if !p.mkdirs[obj] && !isDir(obj) {
		return nil // the official agent silently ignores any other object
	}
	var matches []string
	for _, o := range p.ops {
		switch {
		case o.Type == "copy" && hasFile && matchesObject(obj, o.Destination, perm):
			matches = append(matches, o.Destination)
		}
	}
	for _, o := range p.ops {
		if o.Type == "mkdir" && hasDir && matchesObject(obj, o.Directory, perm) {
			matches = append(matches, o.Directory)
		}
	}
	for _, m := range matches {
		if err := p.setPermissions(m, perm); err != nil {
			return err
		}
	}
	return nil
}

func (p *planner) setPermissions(path string, perm appspec.Permission) error {
	if p.permed[path] {
		//lint:ignore ST1005 the official agent's wire message, kept verbatim
		return fmt.Errorf("The deployment failed because the permissions setting for (%s) is specified more than once in the application specification file. Only one permissions setting for an object is allowed.", path)
	}
	p.permed[path] = true
	if perm.Mode != "" {
		p.ops = append(p.ops, op{Type: "chmod", Mode: perm.Mode, File: path})
	}
	if len(perm.ACLs) > 0 {
		p.ops = append(p.ops, op{Type: "setfacl", ACL: perm.ACLs, File: path})
	}
	if c, ok := perm.Context.(*appspec.SELinuxContext); ok && c != nil {
		p.ops = append(p.ops, op{Type: "semanage", Context: c, File: path})
	}
	if perm.Owner != "" || perm.Group != "" {
		// Names are resolved while planning, so an unknown user fails the Install
		// before anything is copied (the official agent fails when it gets there).
		o := op{Type: "chown", Owner: perm.Owner, Group: perm.Group, File: path, uid: -1, gid: -1}
		if perm.Owner != "" {
			u, err := user.Lookup(perm.Owner)
			if err != nil {
				return fmt.Errorf("permissions for %s: owner: %w", path, err)
			}
			o.uid, _ = strconv.Atoi(u.Uid)
		}
		if perm.Group != "" {
			g, err := user.LookupGroup(perm.Group)
			if err != nil {
				return fmt.Errorf("permissions for %s: group: %w", path, err)
			}
			o.gid, _ = strconv.Atoi(g.Gid)
		}
		p.ops = append(p.ops, o)
	}
	return nil
}

// matchesObject reports whether path lies under obj (never obj itself), matches the
// pattern and no except glob. Like the official agent, pattern and except are
// matched against the path relative to obj and only match a direct child, except
// the pattern "**", which matches every descendant.
func matchesObject(obj, path string, perm appspec.Permission) bool {
	base := obj
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	rel, ok := strings.CutPrefix(path, base)
	if !ok || rel == "" {
		return false
	}
	if perm.Pattern != "**" && !simpleGlob(rel, perm.Pattern) {
		return false
	}
	for _, e := range perm.Except {
		if simpleGlob(rel, e) {
			return false
		}
	}
	return true
}

// simpleGlob matches a single path component against a glob whose only wildcard is '*'.
func simpleGlob(name, pattern string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return name == pattern
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(name); i++ {
		if simpleGlob(name[i:], rest) {
			return true
		}
	}
	return false
}

func (o op) execute(ctx context.Context, log *slog.Logger, cleanupFile *os.File) error {
	switch o.Type {
	case "copy":
		// Recorded before copying, so a crash mid-copy still gets the file cleaned up.
		if _, err := cleanupFile.WriteString(o.Destination + "\n"); err != nil {
			return err
		}
		return copyFile(o.Source, o.Destination)
	case "mkdir":
		if err := os.Mkdir(o.Directory, 0o777); err != nil {
			return err
		}
		_, err := cleanupFile.WriteString(o.Directory + "\n")
		return err
	case "chmod":
		fi, err := os.Lstat(o.File)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// chmod would follow the link, whose target is resolved relative to the
			// destination and may be outside anything this deployment owns.
			log.InfoContext(ctx, "permissions: mode not applied to symlink", "path", o.File)
			return nil
		}
		m, err := strconv.ParseUint(o.Mode, 8, 32)
		if err != nil {
			return err
		}
		return syscall.Chmod(o.File, uint32(m))
	case "chown":
		return os.Lchown(o.File, o.uid, o.gid)
	case "setfacl":
		return setfacl(ctx, log, o.File, o.ACL)
	case "semanage":
		ok, err := semanage(ctx, log, o.File, o.Context)
		if err != nil || !ok {
			return err
		}
		_, err = cleanupFile.WriteString("semanage\x00" + o.File + "\n")
		return err
	}
	return fmt.Errorf("unknown step %q", o.Type)
}

// copyFile copies like Ruby's FileUtils.copy(preserve: true): a symlink is recreated
// with the same target text (failing if the path exists); a file's content is written
// to the destination (through an existing symlink there, with OVERWRITE) and then
// its times, owner (when allowed) and mode are copied.
func copyFile(src, dest string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dest)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	st, _ := fi.Sys().(*syscall.Stat_t)
	if err == nil && st != nil {
		if cerr := out.Chown(int(st.Uid), int(st.Gid)); cerr != nil && !errors.Is(cerr, syscall.EPERM) {
			err = cerr
		}
	}
	if err == nil && st != nil {
		// After chown, which clears setuid/setgid.
		err = syscall.Fchmod(int(out.Fd()), st.Mode&0o7777)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	atime := fi.ModTime()
	if st != nil {
		atime = timespec(st.Atim)
	}
	return os.Chtimes(dest, atime, fi.ModTime())
}

func setfacl(ctx context.Context, log *slog.Logger, path string, acl []string) error {
	if _, err := exec.LookPath("setfacl"); err != nil {
		log.WarnContext(ctx, "setfacl not found; acls ignored", "path", path, "acls", acl)
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// setfacl --set replaces the whole ACL, so the base entries come from the current
	// mode, as the official agent builds them; setfacl recomputes the mask.
	m := fi.Mode().Perm()
	entries := []string{"u::" + rwx(m>>6), "g::" + rwx(m>>3), "o::" + rwx(m)}
	entries = append(entries, acl...)
	out, err := exec.CommandContext(ctx, "setfacl", "--set", strings.Join(entries, ","), path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("setfacl: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func rwx(m fs.FileMode) string {
	b := []byte("---")
	if m&4 != 0 {
		b[0] = 'r'
	}
	if m&2 != 0 {
		b[1] = 'w'
	}
	if m&1 != 0 {
		b[2] = 'x'
	}
	return string(b)
}

func semanage(ctx context.Context, log *slog.Logger, path string, c *appspec.SELinuxContext) (bool, error) {
	if _, err := exec.LookPath("semanage"); err != nil {
		log.WarnContext(ctx, "semanage not found; SELinux context ignored", "path", path)
		return false, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, err
	}
	args := []string{"fcontext", "-a"}
	if c.User != "" {
		args = append(args, "-s", c.User)
	}
	args = append(args, "-t", c.Type)
	if c.Range != "" {
		args = append(args, "-r", c.Range)
	}
	args = append(args, real)
	if out, err := exec.CommandContext(ctx, "semanage", args...).CombinedOutput(); err != nil {
		return false, fmt.Errorf("semanage: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "restorecon", "-v", real).CombinedOutput(); err != nil {
		return false, fmt.Errorf("restorecon: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func timespec(ts syscall.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
