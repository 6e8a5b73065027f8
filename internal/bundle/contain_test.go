package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	base := t.TempDir()
	archive := filepath.Join(base, "real", "deployment-archive")
	for _, d := range []string{"scripts", "sub"} {
		if err := os.MkdirAll(filepath.Join(archive, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(archive, "scripts", "a.sh"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"in.sh":     "scripts/a.sh",
		"sub/up.sh": "../scripts/a.sh",
		"out":       "..",
		"abs":       "/etc",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(archive, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The agent's root may itself sit behind a symlink.
	linkedRoot := filepath.Join(base, "linked")
	if err := os.Symlink(filepath.Join(base, "real"), linkedRoot); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, archive string
		want          string // relative to archive; "" = outside
		real          bool   // outside through a symlink
	}{
		{"scripts/a.sh", archive, "scripts/a.sh", false},
		{"/scripts/a.sh", archive, "scripts/a.sh", false},
		{"./sub/../scripts/a.sh", archive, "scripts/a.sh", false},
		{"/", archive, ".", false},
		{"in.sh", archive, "in.sh", false},
		{"sub/up.sh", archive, "sub/up.sh", false},
		{"missing.sh", archive, "missing.sh", false},
		{"scripts/a.sh", filepath.Join(linkedRoot, "deployment-archive"), "scripts/a.sh", false},
		{"../x", archive, "", false},
		{"sub/../../x", archive, "", false},
		{"/../../bin/sh", archive, "", false},
		{"out/secret", archive, "", true},
		{"out", archive, "", true},
		{"abs/passwd", archive, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.archive, tt.name)
			if tt.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if want := filepath.Join(tt.archive, tt.want); got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
				return
			}
			out, ok := errors.AsType[*OutsideError](err)
			if !ok || !errors.Is(err, ErrOutside) {
				t.Fatalf("err = %v (%s), want an OutsideError", err, got)
			}
			if (out.Real != "") != tt.real {
				t.Errorf("Real = %q, want through a symlink: %v", out.Real, tt.real)
			}
		})
	}
}
