package layout

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestCompletions(t *testing.T) {
	l := Layout{Root: t.TempDir()}
	if cs, err := l.ListCompletions(); err != nil || len(cs) != 0 {
		t.Fatalf("empty root: %v %v", cs, err)
	}
	now := time.Now().UTC()
	// Identifiers are opaque: one with a slash and dots must not pick a path.
	ids := []string{"d-1-3", "../../etc/passwd", "d-2-1"}
	for i, id := range ids {
		c := Completion{HostCommandIdentifier: id, DeploymentID: "d-1", CommandStatus: "Failed", Diagnostics: `{"error_code":4}`, Finished: now.Add(time.Duration(i) * time.Second)}
		if err := l.SaveCompletion(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SyncCompletion("d-2-1"); err != nil {
		t.Errorf("sync: %v", err)
	}
	if err := l.SyncCompletion("never-saved"); err == nil {
		t.Errorf("sync of a result never saved succeeded")
	}
	// A crash between write and rename leaves a temporary file behind.
	if err := os.WriteFile(filepath.Join(l.CompletionsDir(), ".tmp123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs, err := l.ListCompletions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.HostCommandIdentifier)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %v, want %v (oldest first)", got, ids)
	}
	if cs[1].Diagnostics != `{"error_code":4}` || !cs[1].Finished.Equal(now.Add(time.Second)) {
		t.Errorf("round trip: %+v", cs[1])
	}
	entries, _ := os.ReadDir(l.CompletionsDir())
	if len(entries) != 3 {
		t.Errorf("files %v: the temporary file should be gone", entries)
	}
	if _, err := os.Stat(filepath.Join(l.Root, "..", "etc")); err == nil {
		t.Errorf("an identifier chose a path")
	}
	// Saving again replaces; removing twice is fine.
	if err := l.SaveCompletion(Completion{HostCommandIdentifier: "d-1-3", CommandStatus: "Succeeded", Finished: now}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.RemoveCompletion("d-2-1"); err != nil {
			t.Fatal(err)
		}
	}
	cs, _ = l.ListCompletions()
	if len(cs) != 2 || cs[0].CommandStatus != "Succeeded" {
		t.Errorf("after replace and remove: %+v", cs)
	}
	// A corrupt file is reported without hiding the others.
	if err := os.WriteFile(filepath.Join(l.CompletionsDir(), "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cs, err := l.ListCompletions(); err == nil || len(cs) != 2 {
		t.Errorf("with a corrupt file: %d results, err %v", len(cs), err)
	}
}
