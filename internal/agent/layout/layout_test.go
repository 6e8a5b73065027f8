package layout

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPointers(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	got, err := l.ReadPointer("g", LastSuccessful)
	if err != nil || got != "" {
		t.Fatalf("missing pointer = %q, %v", got, err)
	}
	if err := l.WritePointer("g", LastSuccessful, "d-1"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(l.Root, "deployment-instructions", "g_last_successful_install"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(l.Root, "g", "d-1"); string(raw) != want {
		t.Fatalf("pointer content = %q, want %q (no newline)", raw, want)
	}
	got, err = l.ReadPointer("g", LastSuccessful)
	if err != nil || got != filepath.Join(l.Root, "g", "d-1") {
		t.Fatalf("ReadPointer = %q, %v", got, err)
	}
}

func TestCleanupOldRevisions(t *testing.T) {
	tests := []struct {
		name        string
		existing    int // d-0 (oldest) .. d-(n-1)
		max         int
		lastSuccess string
		wantLeft    []string
	}{
		{"under limit", 3, 5, "", []string{"d-0", "d-1", "d-2"}},
		{"exactly max-1 kept", 4, 5, "", []string{"d-0", "d-1", "d-2", "d-3"}},
		{"oldest removed", 6, 5, "", []string{"d-2", "d-3", "d-4", "d-5"}},
		{"last successful kept", 6, 5, "d-0", []string{"d-0", "d-3", "d-4", "d-5"}},
		{"max one", 3, 1, "d-1", []string{"d-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Layout{Root: t.TempDir()}
			base := time.Now().Add(-time.Hour)
			for i := range tt.existing {
				dir := l.DeploymentDir("g", "d-"+string(rune('0'+i)))
				if err := os.MkdirAll(filepath.Join(dir, "deployment-archive"), 0o755); err != nil {
					t.Fatal(err)
				}
				mt := base.Add(time.Duration(i) * time.Minute)
				if err := os.Chtimes(dir, mt, mt); err != nil {
					t.Fatal(err)
				}
			}
			if tt.lastSuccess != "" {
				if err := l.WritePointer("g", LastSuccessful, tt.lastSuccess); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(l.DeploymentDir("g", "current"), 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := l.CleanupOldRevisions("g", "current", tt.max); err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(filepath.Join(l.Root, "g"))
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, e := range entries {
				if e.Name() != "current" {
					left = append(left, e.Name())
				}
			}
			if !slices.Equal(left, tt.wantLeft) {
				t.Fatalf("left = %v, want %v", left, tt.wantLeft)
			}
		})
	}
}

func TestTracking(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	if got, err := l.ListTracked(time.Now(), 24*time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("empty = %v, %v", got, err)
	}
	if err := l.Track("d-old", "cmd-old"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(filepath.Join(l.TrackingDir(), "d-old"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := l.Track("d-1", "cmd-1"); err != nil {
		t.Fatal(err)
	}
	got, err := l.ListTracked(time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].DeploymentID != "d-1" || got[0].HostCommandIdentifier != "cmd-1" {
		t.Fatalf("tracked = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(l.TrackingDir(), "d-old")); !os.IsNotExist(err) {
		t.Fatalf("stale tracking file not removed: %v", err)
	}
	if err := l.Untrack("d-1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Untrack("d-1"); err != nil {
		t.Fatalf("second untrack: %v", err)
	}
}
