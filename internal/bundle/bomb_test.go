package bundle

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bombChunk is the uncompressed size of one repeated compressed block.
const bombChunk = 64 << 20

// zeroReader yields zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// deflateZeros returns raw deflate data of n zero bytes.
func deflateZeros(t *testing.T, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(fw, zeroReader{}, n); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipBomb writes a zip of entries files of 64 MiB of zeros each, sharing one
// compressed block made once, declaring declared bytes per entry (0 = the
// truth). 32 entries make the finding's bomb: ~2 MB expanding to 2 GiB.
func zipBomb(t *testing.T, path string, entries int, declared uint64) {
	t.Helper()
	data := deflateZeros(t, bombChunk)
	crc := crc32.ChecksumIEEE(make([]byte, bombChunk))
	if declared == 0 {
		declared = bombChunk
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for i := range entries {
		h := &zip.FileHeader{Name: "zeros" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Method: zip.Deflate,
			CRC32: crc, CompressedSize64: uint64(len(data)), UncompressedSize64: declared}
		h.SetMode(0o644)
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// tgzBomb writes a tar.gz holding one file of chunks×64 MiB of zeros as a
// multi-member gzip stream that repeats one compressed member, so building
// a 2 GiB bomb costs one 64 MiB compression.
func tgzBomb(t *testing.T, path string, chunks int) {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(chunks) * bombChunk, Typeflag: tar.TypeReg, ModTime: time.Unix(1_600_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	gz := func(r io.Reader) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := io.Copy(zw, r); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	member := gz(io.LimitReader(zeroReader{}, bombChunk))
	out := gz(&hdr)
	for range chunks {
		out = append(out, member...)
	}
	// The end-of-archive marker: two zero blocks.
	out = append(out, gz(io.LimitReader(zeroReader{}, 1024))...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// diskUse is the bytes of regular files under dir (the staging directory
// is removed on failure, so this also shows nothing was left behind).
func diskUse(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// unpackWatched runs Unpack into dir/out and reports the most disk the
// staging directory used, sampled while it ran.
func unpackWatched(t *testing.T, dir, archive, kind string, lim Limits) (peak int64, took time.Duration, err error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- Unpack(context.Background(), archive, kind, filepath.Join(dir, "out"), lim) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return peak, time.Since(start), err
		case <-tick.C:
			// Racing with the extractor: files may vanish under the walk.
			var n int64
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() && p != archive {
					if fi, err := d.Info(); err == nil {
						n += fi.Size()
					}
				}
				return nil
			})
			peak = max(peak, n)
		}
	}
}

func TestUnpackRefusesBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB")
	}
	tests := []struct {
		name     string
		kind     string
		build    func(t *testing.T, path string)
		lim      Limits
		maxDisk  int64 // the most the extraction may write before refusing
		wantKind error
	}{
		// The finding: a 2 MB zip of 32 x 64 MiB expands to 2 GiB. Its
		// central directory gives it away before a byte is written.
		{"zip 2 GiB", "zip", func(t *testing.T, p string) { zipBomb(t, p, 32, 0) }, Limits{}, 0, ErrLimit},
		// The same bomb declaring 1 KiB per entry: the headers lie, the
		// bytes written are counted (archive/zip also refuses to read past
		// the declared size).
		{"zip lying headers", "zip", func(t *testing.T, p string) { zipBomb(t, p, 32, 1024) }, Limits{}, 1 << 20, nil},
		// Every entry points at the same compressed data.
		{"zip declared total", "zip", func(t *testing.T, p string) { zipBomb(t, p, 32, 0) }, Limits{MaxRatio: -1, MaxTotalBytes: 1 << 30}, 0, ErrLimit},
		// A tar.gz has no sizes to check ahead: it is stopped by the
		// ratio of bytes written to compressed bytes read, just past the
		// floor.
		{"tgz 2 GiB", "tgz", func(t *testing.T, p string) { tgzBomb(t, p, 32) }, Limits{}, DefaultRatioFloor + 1<<20, ErrLimit},
		{"tgz 2 GiB small floor", "tgz", func(t *testing.T, p string) { tgzBomb(t, p, 32) }, Limits{RatioFloor: 1 << 20}, 2 << 20, ErrLimit},
		// Without the ratio the size caps still hold, from the tar header.
		{"tgz declared size", "tgz", func(t *testing.T, p string) { tgzBomb(t, p, 32) }, Limits{MaxRatio: -1, MaxTotalBytes: 100 << 20}, 101 << 20, ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, "bundle")
			tt.build(t, archive)
			fi, err := os.Stat(archive)
			if err != nil {
				t.Fatal(err)
			}
			peak, took, err := unpackWatched(t, dir, archive, tt.kind, tt.lim)
			t.Logf("%d-byte archive: refused in %s, peak %d bytes written: %v", fi.Size(), took, peak, err)
			if err == nil {
				t.Fatal("the bomb was unpacked")
			}
			if tt.wantKind != nil && !errors.Is(err, tt.wantKind) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			if peak > tt.maxDisk {
				t.Errorf("wrote up to %d bytes before refusing, want at most %d", peak, tt.maxDisk)
			}
			if left := diskUse(t, dir) - fi.Size(); left != 0 {
				t.Errorf("%d bytes left behind", left)
			}
			if took > 10*time.Second {
				t.Errorf("took %s to refuse", took)
			}
		})
	}
}

// TestUnpackRatioKeepsRealBundles checks that a compressible bundle under
// the floor, and a large one of ordinary ratio, still unpack.
func TestUnpackRatioKeepsRealBundles(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "b.tgz")
	// 4 MiB of zeros: a ratio of ~1000, but below the floor.
	writeTar(t, archive, true, []entry{{name: "appspec.yml", body: "version: 0.0\nos: linux\n"}, {name: "zeros", body: string(make([]byte, 4<<20))}})
	if err := Unpack(context.Background(), archive, "tgz", filepath.Join(dir, "out"), Limits{}); err != nil {
		t.Fatal(err)
	}
	// 3 MiB of random hex digits compress ~2x: fine with a 1 MiB floor
	// and a ratio of 4, refused with a ratio of 1.
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 3<<20)
	for i := range body {
		body[i] = "0123456789abcdef"[rng.IntN(16)]
	}
	writeTar(t, archive, true, []entry{{name: "data", body: string(body)}})
	if err := Unpack(context.Background(), archive, "tgz", filepath.Join(dir, "out2"), Limits{RatioFloor: 1 << 20, MaxRatio: 4}); err != nil {
		t.Fatal(err)
	}
	if err := Unpack(context.Background(), archive, "tgz", filepath.Join(dir, "out3"), Limits{RatioFloor: 1 << 20, MaxRatio: 1}); !errors.Is(err, ErrLimit) {
		t.Fatalf("ratio 1: err = %v", err)
	}
}
