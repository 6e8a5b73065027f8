package deploy

import (
	"maps"
	"testing"

	"github.com/cutoverhq/cutover/internal/engine"
)

// TestDepIndexUpdate: a live deployment's index, updated in place commit
// after commit, always equals one built afresh from the same record, and a
// record of other instances is refused rather than merged.
func TestDepIndexUpdate(t *testing.T) {
	inst := func(host, cmd, event string) *engine.Instance {
		in := &engine.Instance{Name: host, HostID: "arn:" + host}
		if cmd != "" {
			in.Cmd = &engine.Command{ID: cmd, Event: event}
		}
		return in
	}
	rec := func(ins ...*engine.Instance) *Record {
		return &Record{ID: "d-1", Account: "111111111111", Region: "eu-west-1", Engine: &engine.Deployment{Instances: ins}}
	}
	steps := []struct {
		name string
		rec  *Record
		ok   bool
	}{
		{"first commands", rec(inst("a", "d-1-1", "BeforeInstall"), inst("b", "d-1-2", "BeforeInstall")), true},
		{"one moves on", rec(inst("a", "d-1-3", "AfterInstall"), inst("b", "d-1-2", "BeforeInstall")), true},
		{"one done", rec(inst("a", "d-1-3", "AfterInstall"), inst("b", "", "")), true},
		{"traffic event is not the agent's", rec(inst("a", "d-1-4", engine.AllowTraffic), inst("b", "", "")), true},
		{"an instance added", rec(inst("a", "d-1-4", engine.AllowTraffic), inst("b", "", ""), inst("c", "d-1-5", "BeforeInstall")), true},
		{"other hosts", rec(inst("x", "d-1-6", "BeforeInstall"), inst("b", "", ""), inst("c", "", "")), false},
		{"fewer instances", rec(inst("a", "", "")), false},
	}
	idx := indexOf(steps[0].rec)
	want := indexOf(steps[0].rec)
	for _, s := range steps {
		if got := idx.update(s.rec); got != s.ok {
			t.Fatalf("%s: update = %v, want %v", s.name, got, s.ok)
		}
		if s.ok {
			want = indexOf(s.rec)
		}
		if !maps.Equal(idx.hosts, want.hosts) || !maps.Equal(idx.current, want.current) {
			t.Fatalf("%s: index hosts %v current %v, want %v %v", s.name, idx.hosts, idx.current, want.hosts, want.current)
		}
	}
	if got := idx.owner("d-1-5"); got != "arn:c" {
		t.Errorf("owner of d-1-5 = %q, want arn:c", got)
	}
	if idx.owner("d-1-4") != "" || idx.owner("d-1-1") != "" {
		t.Errorf("a traffic command or a replaced one is current: %v", idx.current)
	}
	if !idx.member("arn:b") || idx.member("arn:x") {
		t.Errorf("members %v", idx.hosts)
	}
}
