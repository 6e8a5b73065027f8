package revstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path"

	"github.com/spf13/afero"
)

// partialDir holds files being written; it lies outside "buckets" so that
// listings never show them, and on the same file system so that the final
// rename is atomic.
const partialDir = "partial"

// atomicFs makes every file s3afero creates (objects and their metadata)
// appear whole or not at all: it is written under partialDir, synced, and
// renamed into place on Close. s3afero itself writes in place, so a crash
// or a full disk mid-write would leave a torn object under the old name.
type atomicFs struct {
	afero.Fs
}

func (fs atomicFs) Create(name string) (afero.File, error) {
	return fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
}

func (fs atomicFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	const replace = os.O_CREATE | os.O_TRUNC
	if flag&replace != replace {
		return fs.Fs.OpenFile(name, flag, perm)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	tmp := path.Join(partialDir, hex.EncodeToString(b[:]))
	f, err := fs.Fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm&0o600|0o600)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, fs: fs.Fs, tmp: tmp, name: name}, nil
}

type atomicFile struct {
	afero.File
	fs        afero.Fs
	tmp, name string
	failed    bool
	closed    bool
}

func (f *atomicFile) Name() string { return f.name }

func (f *atomicFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if err != nil {
		f.failed = true
	}
	return n, err
}

func (f *atomicFile) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

// Close publishes the file under its name unless a write failed.
func (f *atomicFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.File.Sync()
	err = errors.Join(err, f.File.Close())
	if err == nil && !f.failed {
		err = f.fs.Rename(f.tmp, f.name)
		if err == nil {
			return nil
		}
	}
	_ = f.fs.Remove(f.tmp)
	if err == nil {
		err = errors.New("revstore: write failed; object not stored")
	}
	return err
}
