package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(string, []byte, os.FileMode) error
		perm  os.FileMode
	}{
		{"Write", Write, 0o644},
		{"WriteSync", WriteSync, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sub", "f")
			for _, content := range []string{"first", "second"} {
				if err := tc.write(path, []byte(content), tc.perm); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(path)
				if err != nil || string(b) != content {
					t.Fatalf("read %q %v, want %q", b, err, content)
				}
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != tc.perm {
				t.Fatalf("mode %v %v, want %v", st.Mode().Perm(), err, tc.perm)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) != 1 {
				t.Fatalf("left %v beside the file", entries)
			}
		})
	}
	// A directory in the way: an error, and no temporary file left.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "d"), []byte("x"), 0o644); err == nil {
		t.Fatal("replaced a directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left %v", entries)
	}
}
