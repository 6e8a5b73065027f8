package engine

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// TestStoredOldShapeRunsToCompletion loads deployments stored by the
// engine before strategies had their own kind (captured from that code:
// booleans blueGreen/rollback, no kind), resumes them as a restarted
// replica does and steps them to completion.
func TestStoredOldShapeRunsToCompletion(t *testing.T) {
	cases := []struct {
		file       string
		kind       Kind
		want       Status
		terminated []string
		// events the resumed deployment runs, per instance
		ran map[string][]string
	}{
		{"bluegreen-allow.json", KindBlueGreen, StatusSucceeded, []string{"b0", "b1"}, map[string][]string{
			"g1": {AllowTraffic, AfterAllowTraffic},
			"b0": {BeforeBlockTraffic, BlockTraffic, AfterBlockTraffic, ApplicationStop},
		}},
		{"bluegreen-rollback-block.json", KindReroute, StatusSucceeded, nil, map[string][]string{
			"g0": {BlockTraffic, AfterBlockTraffic},
		}},
		{"inplace-traffic.json", KindInPlace, StatusSucceeded, nil, map[string][]string{
			"h1": {Install, AfterInstall, ApplicationStart, ValidateService, BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var d Deployment
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.Kind != tc.kind {
				t.Fatalf("kind %q, want %q", d.Kind, tc.kind)
			}
			w := newWorld(t, &d)
			w.now = d.Created.Add(time.Hour)
			// The command in flight when it was stored is handed out again
			// (agents) or asked of the traffic layer again (Resumed).
			if err := w.step(Resumed{}); err != nil {
				t.Fatal(err)
			}
			for _, in := range d.Instances {
				if c := in.Cmd; c != nil && !IsTrafficEvent(c.Event) {
					w.queue = append(w.queue, Dispatch{Instance: in.Name, HostID: in.HostID, Command: *c})
				}
			}
			w.drain()
			if d.Phase == PhaseTermination {
				if err := w.step(Continue{WaitType: "TERMINATION_WAIT"}); err != nil {
					t.Fatal(err)
				}
				w.drain()
			}
			if d.Status != tc.want {
				t.Fatalf("status %s (%s %s), want %s", d.Status, d.ErrorCode, d.ErrorMessage, tc.want)
			}
			if !slices.Equal(w.terminated, tc.terminated) {
				t.Fatalf("terminated %v, want %v", w.terminated, tc.terminated)
			}
			for host, want := range tc.ran {
				if got := w.events(host); !slices.Equal(got, want) {
					t.Fatalf("%s ran %v, want %v", host, got, want)
				}
			}
			// Written back, the record has the new shape and reads the same.
			out, err := json.Marshal(&d)
			if err != nil {
				t.Fatal(err)
			}
			var again Deployment
			if err := json.Unmarshal(out, &again); err != nil || again.Kind != tc.kind {
				t.Fatalf("round trip: kind %q err %v", again.Kind, err)
			}
		})
	}
}

// TestResumedReemitsTrafficInFlight: a traffic change in flight when the
// owner died is asked of the traffic layer again by the engine itself, with
// the same command and the same Keep decision.
func TestResumedReemitsTrafficInFlight(t *testing.T) {
	d := NewDeployment(bgDeployment("CONTINUE_DEPLOYMENT", 0, "KEEP_ALIVE", 0), hosts(1), []Instance{{Name: "g0"}}, t0)
	w := newWorld(t, d)
	_ = w.step(Start{})
	w.hold = func(h, e string) bool { return e == BlockTraffic }
	w.drain()
	in := d.Instances[1]
	if in.Cmd == nil || in.Cmd.Event != BlockTraffic {
		t.Fatalf("no BlockTraffic in flight: %+v", in.Cmd)
	}
	id := in.Cmd.ID
	acts, err := Step(d, testCfg, Resumed{}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 {
		t.Fatalf("actions %v, want the one traffic change", acts)
	}
	tr, ok := acts[0].(Traffic)
	if !ok || tr.Command.ID != id || tr.Allow || !tr.Keep || tr.Instance != "h0" {
		t.Fatalf("re-emitted %+v", acts[0])
	}
	if !tr.Command.Dispatched.Equal(t0.Add(time.Hour)) {
		t.Fatalf("traffic timeout clock not restarted: %v", tr.Command.Dispatched)
	}
}
