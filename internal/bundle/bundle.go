// Package bundle unpacks a revision bundle (tar, tar.gz or zip) into a deployment
// archive directory, the way the official CodeDeploy agent's `tar -xpsf` / `unzip -o`
// does, but in-process and refusing anything that could write outside the
// destination.
package bundle

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults used for zero Limits fields.
const (
	DefaultMaxFiles      = 100_000
	DefaultMaxTotalBytes = 4 << 30
	// DefaultMaxRatio is far above what real bundles reach (source and
	// binaries compress 2-10x, text and logs 10-30x) and far below what a
	// compression bomb needs (deflate reaches ~1000x on repeated bytes).
	DefaultMaxRatio = 200
	// DefaultRatioFloor is the output below which the ratio is not checked,
	// so a small bundle of very compressible files is never refused.
	DefaultRatioFloor = 64 << 20
)

// ErrUnsafe is wrapped by errors about entries that would escape the destination
// (absolute or ".." names, symlinks pointing outside, writes through symlinks).
var ErrUnsafe = errors.New("unsafe archive entry")

// ErrLimit is wrapped by errors about a bundle exceeding its Limits.
var ErrLimit = errors.New("bundle exceeds limit")

// Limits bounds what one bundle may unpack. A zero field takes its default
// (100,000 entries, 4 GiB in total, MaxFileBytes = the total limit, a ratio
// of 200 beyond the first 64 MiB); a negative field means no limit.
//
// The sizes are enforced twice: on what the archive declares, before
// anything is written (all of a zip's central directory; each tar header),
// and on the bytes actually written, since declared sizes can lie and tar
// (sparse entries, gzip) has no size a ratio could be computed from.
type Limits struct {
	MaxFiles      int
	MaxTotalBytes int64
	MaxFileBytes  int64
	// MaxRatio bounds the bytes written per compressed byte read from the
	// archive file, once more than RatioFloor bytes have been written.
	MaxRatio   int64
	RatioFloor int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxTotalBytes == 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = l.MaxTotalBytes
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.RatioFloor == 0 {
		l.RatioFloor = DefaultRatioFloor
	}
	return l
}

// ratioBudget is how many bytes may be written in all once compressed bytes
// of the archive have been consumed (-1 = unlimited).
func (l Limits) ratioBudget(compressed int64) int64 {
	if l.MaxRatio < 0 {
		return -1
	}
	if compressed > math.MaxInt64/l.MaxRatio {
		return math.MaxInt64
	}
	return max(l.RatioFloor, l.MaxRatio*compressed)
}

// Unpack extracts archivePath into dest, replacing dest if it exists (the official
// agent runs `rm -rf deployment-archive` first). bundleType is "tar", "tgz" or "zip";
// any other value is treated as tar, like the official agent. A tar is checked for
// gzip or bzip2 compression by its magic bytes, as GNU tar does, so "tar" and "tgz"
// both accept compressed and uncompressed input.
//
// Extraction happens in a temporary sibling of dest that is renamed into place only
// when everything succeeded, so a failed unpack never leaves a half-written
// deployment archive. After extraction the wrapper-directory rule applies: if the
// archive root holds exactly one entry, it is a directory, and that directory has an
// entry whose name contains "appspec" (any case), its contents become the root.
//
// Modes are preserved exactly for tar (tar -p) and from Unix attributes for zip
// (without setuid/setgid/sticky, like unzip without -K). When running as root, tar
// entries get their archived owner (by name when the name exists on this host, else
// by number, as GNU tar does); zip entries stay owned by root, as with unzip without -X.
func Unpack(ctx context.Context, archivePath, bundleType, dest string, lim Limits) error {
	if dest == "" {
		return errors.New("bundle: empty destination")
	}
	dest = filepath.Clean(dest)
	staging, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".unpack-")
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
		}
	}()
	x := &extractor{
		ctx:    ctx,
		root:   staging,
		lim:    lim.withDefaults(),
		asRoot: os.Geteuid() == 0,
		uids:   map[string]int{},
		gids:   map[string]int{},
	}
	// MkdirTemp creates 0700; a deployment archive is normally 0755 (mkdir under umask 022).
	// A "./" entry in the archive overrides this through the deferred directory metadata.
	if err := os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if bundleType == "zip" {
		err = x.unzip(archivePath)
	} else {
		err = x.untar(archivePath)
	}
	if err == nil {
		err = x.finishDirs()
	}
	if err != nil {
		return fmt.Errorf("bundle: unpack %s: %w", archivePath, err)
	}

	root, err := wrapperRoot(staging)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("bundle: remove old archive: %w", err)
	}
	if err := os.Rename(root, dest); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	ok = true
	if root != staging {
		// The wrapper moved out; what is left is the empty staging directory.
		if err := os.Remove(staging); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}

// wrapperRoot implements §6.2 step 4 (GitHub tarballs wrap everything in one directory).
func wrapperRoot(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	// DirEntry.IsDir does not follow symlinks: a lone symlink is never a wrapper.
	if len(entries) != 1 || !entries[0].IsDir() {
		return dir, nil
	}
	sub := filepath.Join(dir, entries[0].Name())
	inner, err := os.ReadDir(sub)
	if err != nil {
		return "", err
	}
	for _, e := range inner {
		if strings.Contains(strings.ToLower(e.Name()), "appspec") {
			return sub, nil
		}
	}
	return dir, nil
}

type dirMeta struct {
	path     string
	mode     uint32
	uid, gid int
	mtime    time.Time
	chown    bool
}

type extractor struct {
	ctx    context.Context
	root   string
	lim    Limits
	asRoot bool
	files  int
	total  int64
	// consumed reports how many compressed bytes of the archive have been
	// read (or, for zip, opened) so far, for the expansion ratio.
	consumed func() int64
	dirs     []dirMeta
	uids     map[string]int // user name -> uid cache, -1 = unknown here
	gids     map[string]int
}

func (x *extractor) untar(archivePath string) error {
	f, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := &countingReader{r: f}
	x.consumed = func() int64 { return cr.n }
	br := bufio.NewReader(cr)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return errors.New("xz-compressed bundles are not supported; use tar, tar.gz or zip")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return errors.New("zstd-compressed bundles are not supported; use tar, tar.gz or zip")
	}
	cr2 := &ctxReader{x.ctx, r}
	tr := tar.NewReader(cr2)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if r == io.Reader(br) {
				return nil
			}
			return drainCompressed(cr2)
		}
		// ErrInsecurePath (GODEBUG tarinsecurepath=0) comes with a usable header;
		// our own checks below reject the entry with a clearer message.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return err
		}
		if err := x.ctx.Err(); err != nil {
			return err
		}
		if err := x.tarEntry(hdr, tr); err != nil {
			return err
		}
	}
}

// maxTrailing bounds what a compressed archive may hold after the tar
// end-of-archive blocks (tar pads to its record size, 10 KiB by default).
const maxTrailing = 1 << 20

// drainCompressed reads a compressed stream to its end after the tar
// reader stopped: only there do gzip and bzip2 check their trailer (CRC and
// length), so a truncated or corrupted archive is refused, as GNU tar does.
func drainCompressed(r io.Reader) error {
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxTrailing+1))
	switch {
	case err != nil:
		return fmt.Errorf("corrupt compressed archive: %w", err)
	case n > maxTrailing:
		return fmt.Errorf("compressed archive has more than %d bytes after the end of the tar archive", maxTrailing)
	}
	return nil
}

func (x *extractor) tarEntry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader:
		// GitHub tarballs start with a pax global header holding the commit id.
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if err := x.count(); err != nil {
		return err
	}
	own := owner{}
	if x.asRoot {
		own = owner{uid: x.lookupUID(hdr.Uname, hdr.Uid), gid: x.lookupGID(hdr.Gname, hdr.Gid), set: true}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(rel, mode, own, hdr.ModTime)
	case tar.TypeReg, 0 /* old TypeRegA */ :
		return x.file(rel, r, hdr.Size, mode, own, hdr.ModTime)
	case tar.TypeSymlink:
		return x.symlink(rel, hdr.Linkname, own)
	case tar.TypeLink:
		return x.hardlink(rel, hdr.Linkname)
	default:
		// Device nodes and FIFOs have no place in an application bundle; GNU tar
		// run as root would create them, which is exactly what we do not want.
		return fmt.Errorf("%w: %s: unsupported entry type %q", ErrUnsafe, hdr.Name, hdr.Typeflag)
	}
}

func (x *extractor) unzip(archivePath string) error {
	zf, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer zf.Close()
	fi, err := zf.Stat()
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(zf, fi.Size())
	if err != nil {
		return err
	}
	if err := x.checkZipDirectory(zr.File, fi.Size()); err != nil {
		return err
	}
	var opened int64
	x.consumed = func() int64 { return opened }
	for _, f := range zr.File {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		// archive/zip reads an entry through a section of exactly its
		// compressed size, so this bounds what the entry can consume.
		opened = min(opened+int64(f.CompressedSize64), fi.Size())
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return nil
}

// checkZipDirectory refuses, before anything is written, a zip whose central
// directory declares more entries, more bytes or a higher expansion ratio
// than the limits allow, or entries that share compressed data (the
// overlapping-entry bomb, where the declared compressed sizes add up to more
// than the file holds).
func (x *extractor) checkZipDirectory(files []*zip.File, size int64) error {
	if x.lim.MaxFiles > 0 && len(files) > x.lim.MaxFiles {
		return fmt.Errorf("%w: %d entries, more than %d", ErrLimit, len(files), x.lim.MaxFiles)
	}
	var declared, compressed uint64
	for _, f := range files {
		declared += f.UncompressedSize64
		compressed += f.CompressedSize64
		if declared > math.MaxInt64 || compressed > math.MaxInt64 {
			return fmt.Errorf("%w: declared sizes overflow", ErrLimit)
		}
		if x.lim.MaxFileBytes >= 0 && f.UncompressedSize64 > uint64(x.lim.MaxFileBytes) {
			return fmt.Errorf("%w: %s: declares %d bytes, more than %d for one file", ErrLimit, f.Name, f.UncompressedSize64, x.lim.MaxFileBytes)
		}
	}
	if compressed > uint64(size) {
		return fmt.Errorf("%w: entries declare %d compressed bytes in a %d-byte archive (overlapping entries)", ErrUnsafe, compressed, size)
	}
	if x.lim.MaxTotalBytes >= 0 && declared > uint64(x.lim.MaxTotalBytes) {
		return fmt.Errorf("%w: declares %d bytes in total, more than %d", ErrLimit, declared, x.lim.MaxTotalBytes)
	}
	if b := x.lim.ratioBudget(size); b >= 0 && declared > uint64(b) {
		return fmt.Errorf("%w: declares %d bytes from a %d-byte archive, an expansion ratio above %d", ErrLimit, declared, size, x.lim.MaxRatio)
	}
	return nil
}

const (
	creatorUnix  = 3
	creatorMacOS = 19
)

func (x *extractor) zipEntry(f *zip.File) error {
	name := f.Name
	creator := f.CreatorVersion >> 8
	unixAttrs := creator == creatorUnix || creator == creatorMacOS
	if !unixAttrs {
		// Archives made on Windows may use backslashes; unzip converts them.
		name = strings.ReplaceAll(name, `\`, "/")
	}
	rel, err := cleanName(name)
	if err != nil {
		return err
	}
	if err := x.count(); err != nil {
		return err
	}
	fm := f.Mode()
	isDir := fm.IsDir() || strings.HasSuffix(name, "/")
	// unzip restores Unix permission bits when the archive carries them, minus
	// setuid/setgid/sticky (no -K); otherwise files get the umask default (assumed 022).
	var mode uint32 = 0o644
	if isDir {
		mode = 0o755
	}
	if unixAttrs && f.ExternalAttrs>>16 != 0 {
		mode = (f.ExternalAttrs >> 16) & 0o777
	}
	switch {
	case isDir:
		return x.dir(rel, mode, owner{}, f.Modified)
	case fm&fs.ModeSymlink != 0:
		rc, err := f.Open()
		if err != nil {
			return err
		}
		target, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return err
		}
		return x.symlink(rel, string(target), owner{})
	case fm.IsRegular():
		rc, err := f.Open()
		if err != nil {
			return err
		}
		defer rc.Close()
		return x.file(rel, rc, int64(f.UncompressedSize64), mode, owner{}, f.Modified)
	default:
		return fmt.Errorf("%w: %s: unsupported entry type %v", ErrUnsafe, f.Name, fm.Type())
	}
}

// cleanName validates an entry name and returns it as a clean relative slash path
// ("." for the root itself).
func cleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrUnsafe)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %s: absolute path", ErrUnsafe, name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: %s: path contains a \"..\" component", ErrUnsafe, name)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: %q: NUL in name", ErrUnsafe, name)
	}
	return path.Clean(name), nil
}

func (x *extractor) count() error {
	x.files++
	if x.lim.MaxFiles > 0 && x.files > x.lim.MaxFiles {
		return fmt.Errorf("%w: more than %d entries", ErrLimit, x.lim.MaxFiles)
	}
	return nil
}

// prepare checks that no existing parent of rel is a symlink (so nothing is written
// through a link an earlier entry planted), creates missing parents, and removes a
// non-directory already at rel (tar replaces files). It returns the absolute path.
func (x *extractor) prepare(rel string, wantDir bool) (string, error) {
	p := x.root
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", fmt.Errorf("%w: %s: path goes through symlink %s", ErrUnsafe, rel, strings.TrimPrefix(p, x.root+"/"))
		case !fi.IsDir():
			return "", fmt.Errorf("%s: parent %s is not a directory", rel, strings.TrimPrefix(p, x.root+"/"))
		}
	}
	target := filepath.Join(x.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case fi.IsDir():
		if !wantDir {
			return "", fmt.Errorf("%s: cannot replace a directory with a non-directory", rel)
		}
	case wantDir:
		return "", fmt.Errorf("%s: cannot replace a file with a directory", rel)
	default:
		if err := os.Remove(target); err != nil {
			return "", err
		}
	}
	return target, nil
}

type owner struct {
	uid, gid int
	set      bool
}

func (x *extractor) dir(rel string, mode uint32, own owner, mtime time.Time) error {
	target := x.root
	if rel != "." {
		var err error
		if target, err = x.prepare(rel, true); err != nil {
			return err
		}
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// Applied at the end: writing entries into a directory changes its mtime, and a
	// read-only directory mode would block its own contents.
	x.dirs = append(x.dirs, dirMeta{path: target, mode: mode, uid: own.uid, gid: own.gid, chown: own.set, mtime: mtime})
	return nil
}

func (x *extractor) file(rel string, r io.Reader, size int64, mode uint32, own owner, mtime time.Time) error {
	if rel == "." {
		return fmt.Errorf("%w: file entry names the archive root", ErrUnsafe)
	}
	if err := x.checkSize(rel, size); err != nil {
		return err
	}
	target, err := x.prepare(rel, false)
	if err != nil {
		return err
	}
	// O_EXCL|O_NOFOLLOW: prepare removed whatever was there, so anything at the
	// path now is a race we refuse rather than follow.
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	// The declared size can lie (zip) or be absent (compressed tar); count
	// what is actually written.
	n, err := io.Copy(&budgetWriter{x: x, rel: rel, w: f}, r)
	x.total += n
	if err == nil && own.set {
		err = f.Chown(own.uid, own.gid)
	}
	if err == nil {
		// Chmod after chown: chown clears setuid/setgid bits.
		err = syscall.Fchmod(int(f.Fd()), mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(target, mtime, mtime); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	return nil
}

// budgetWriter writes one file's content and fails, before writing, the
// write that would take the file or the bundle past a limit.
type budgetWriter struct {
	x   *extractor
	rel string
	w   io.Writer
	n   int64
}

func (b *budgetWriter) Write(p []byte) (int, error) {
	x, next := b.x, b.n+int64(len(p))
	if err := x.checkSize(b.rel, next); err != nil {
		return 0, err
	}
	if budget := x.lim.ratioBudget(x.consumed()); budget >= 0 && x.total+next > budget {
		return 0, fmt.Errorf("%w: %s: more than %d bytes written from %d compressed bytes, an expansion ratio above %d",
			ErrLimit, b.rel, x.total+next, x.consumed(), x.lim.MaxRatio)
	}
	n, err := b.w.Write(p)
	b.n += int64(n)
	return n, err
}

// countingReader counts the compressed bytes read from the archive file.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (x *extractor) checkSize(rel string, n int64) error {
	if x.lim.MaxFileBytes >= 0 && n > x.lim.MaxFileBytes {
		return fmt.Errorf("%w: %s: file larger than %d bytes", ErrLimit, rel, x.lim.MaxFileBytes)
	}
	if x.lim.MaxTotalBytes >= 0 && x.total+n > x.lim.MaxTotalBytes {
		return fmt.Errorf("%w: %s: bundle larger than %d bytes in total", ErrLimit, rel, x.lim.MaxTotalBytes)
	}
	return nil
}

// symlink creates a symlink whose target stays inside the archive. Only leading ".."
// components are allowed: they walk up through real directories (prepare guarantees
// no parent is a symlink), so a lexical check is exact; a ".." after another
// component could follow a symlink first and land anywhere.
func (x *extractor) symlink(rel, linkname string, own owner) error {
	if rel == "." {
		return fmt.Errorf("%w: symlink entry names the archive root", ErrUnsafe)
	}
	if linkname == "" || strings.HasPrefix(linkname, "/") {
		return fmt.Errorf("%w: %s: symlink to absolute path %q", ErrUnsafe, rel, linkname)
	}
	leading := true
	for _, c := range strings.Split(linkname, "/") {
		switch {
		case c == "..":
			if !leading {
				return fmt.Errorf("%w: %s: symlink target %q has .. after a name", ErrUnsafe, rel, linkname)
			}
		case c == "." || c == "":
		default:
			leading = false
		}
	}
	if r := path.Join(path.Dir(rel), linkname); r == ".." || strings.HasPrefix(r, "../") {
		return fmt.Errorf("%w: %s: symlink target %q points outside the archive", ErrUnsafe, rel, linkname)
	}
	target, err := x.prepare(rel, false)
	if err != nil {
		return err
	}
	if err := os.Symlink(linkname, target); err != nil {
		return err
	}
	if own.set {
		return os.Lchown(target, own.uid, own.gid)
	}
	return nil
}

func (x *extractor) hardlink(rel, linkname string) error {
	src, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link %s: %w", rel, err)
	}
	if rel == "." || src == "." {
		return fmt.Errorf("%w: hard link %s -> %s names the archive root", ErrUnsafe, rel, linkname)
	}
	// The source must be an entry already extracted, reached without symlinks.
	p := x.root
	for _, c := range strings.Split(src, "/") {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("hard link %s -> %s: %w", rel, linkname, err)
		}
		if p != filepath.Join(x.root, src) && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: hard link %s -> %s goes through a symlink", ErrUnsafe, rel, linkname)
		}
		if p == filepath.Join(x.root, src) && fi.IsDir() {
			return fmt.Errorf("%w: hard link %s -> %s: target is a directory", ErrUnsafe, rel, linkname)
		}
	}
	target, err := x.prepare(rel, false)
	if err != nil {
		return err
	}
	// os.Link uses linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the
	// symlink itself, never what it points to.
	return os.Link(p, target)
}

func (x *extractor) finishDirs() error {
	// Deepest first, so a read-only parent is locked only after its children are done.
	sort.SliceStable(x.dirs, func(i, j int) bool { return len(x.dirs[i].path) > len(x.dirs[j].path) })
	for _, d := range x.dirs {
		if d.chown {
			if err := os.Lchown(d.path, d.uid, d.gid); err != nil {
				return err
			}
		}
		if err := syscall.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
		if !d.mtime.IsZero() {
			if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupUID prefers the archived user name when it exists here (GNU tar's default
// without --numeric-owner) and falls back to the numeric id.
func (x *extractor) lookupUID(name string, id int) int {
	if name == "" {
		return id
	}
	if v, ok := x.uids[name]; ok {
		if v < 0 {
			return id
		}
		return v
	}
	x.uids[name] = -1
	if u, err := user.Lookup(name); err == nil {
		if n, err := strconv.Atoi(u.Uid); err == nil {
			x.uids[name] = n
			return n
		}
	}
	return id
}

func (x *extractor) lookupGID(name string, id int) int {
	if name == "" {
		return id
	}
	if v, ok := x.gids[name]; ok {
		if v < 0 {
			return id
		}
		return v
	}
	x.gids[name] = -1
	if g, err := user.LookupGroup(name); err == nil {
		if n, err := strconv.Atoi(g.Gid); err == nil {
			x.gids[name] = n
			return n
		}
	}
	return id
}

// ctxReader stops a long extraction when the agent shuts down.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
