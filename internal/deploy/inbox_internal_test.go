package deploy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/cutoverhq/cutover/internal/engine"
)

// TestInboxEventsRoundTrip: every event another replica may send reaches
// the owner's engine unchanged through the store inbox's JSON.
func TestInboxEventsRoundTrip(t *testing.T) {
	yes := true
	for _, ev := range []engine.Event{
		engine.Start{},
		engine.Acked{CommandID: "d-X-1"},
		engine.Completed{CommandID: "d-X-2", Succeeded: true, Diagnostics: engine.Diagnostics{ErrorCode: "Success"}},
		engine.Continue{WaitType: "READY_WAIT"},
		engine.Stop{Rollback: &yes},
		engine.AlarmStop{Message: "alarm a1 fired", Rollback: true},
		engine.JudgmentFailed{Reason: "green's p50 latency 3x blue's", Rollback: true},
	} {
		ie, err := encodeEvent(ev)
		if err != nil {
			t.Fatalf("%T: %v", ev, err)
		}
		b, err := json.Marshal(ie)
		if err != nil {
			t.Fatal(err)
		}
		var back inboxEvent
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.event()
		if err != nil {
			t.Fatalf("%T: %v", ev, err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("%T: got %#v, want %#v", ev, got, ev)
		}
	}
}
