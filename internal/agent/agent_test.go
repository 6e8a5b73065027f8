package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

const testHost = "arn:aws:iam::111122223333:user/web-01"

// call is one request the fake server received.
type call struct {
	Op   string
	Body map[string]any
}

// fakeServer is a deliberately small stand-in for the Cutover command
// service: it hands out queued commands one at a time, each only after the
// previous one completed, and records every call. The real server's
// behaviour is covered by the lead's end-to-end tests.
type fakeServer struct {
	t     *testing.T
	mu    sync.Mutex
	queue []fakeCommand
	specs map[string]fakeSpec // by DeploymentExecutionId
	calls []call
	busy  bool
	done  chan struct{} // closed when the queue is empty and nothing is busy
	// completeAnswer, when set, may answer the n-th (from 1)
	// PutHostCommandComplete with an HTTP error status and body instead.
	completeAnswer func(n int) (status int, body string)
	completes      int
	// handedAgain is closed when a command marked Again was handed out
	// the second time; its acknowledgement waits for that.
	handedAgain chan struct{}
	// ackAnswer, when set, may answer the n-th (from 1) acknowledgement
	// with an HTTP error status and body instead.
	ackAnswer func(n int) (status int, body string)
	acks      int
}

type fakeCommand struct {
	ID, Host, ExecID, Name string
	AckStatus              string // "" answers InProgress
	// Again hands the command out a second time while the agent runs it,
	// as a server that took a deployment over may.
	Again bool
}

type fakeSpec struct{ Format, Payload string }

func newFakeServer(t *testing.T, cmds []fakeCommand, specs map[string]fakeSpec) (*fakeServer, *httptest.Server) {
	f := &fakeServer{t: t, queue: cmds, specs: specs, done: make(chan struct{}), handedAgain: make(chan struct{})}
	if len(cmds) == 0 {
		close(f.done)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "CodeDeployCommandService_v20141006.")
	if !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		http.Error(w, `{"__type":"ClientException","message":"unsigned"}`, http.StatusBadRequest)
		return
	}
	var body map[string]any
	data, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(data, &body)
	f.mu.Lock()
	f.calls = append(f.calls, call{op, body})
	var resp any = struct{}{}
	switch op {
	case "PollHostCommand":
		again := f.busy && len(f.queue) > 0 && f.queue[0].Again
		if again {
			f.queue[0].Again = false
			close(f.handedAgain)
		}
		if (!f.busy || again) && len(f.queue) > 0 {
			c := f.queue[0]
			f.busy = true
			resp = map[string]any{"HostCommand": map[string]any{
				"HostCommandIdentifier": c.ID, "HostIdentifier": c.Host,
				"DeploymentExecutionId": c.ExecID, "CommandName": c.Name,
			}}
		} else {
			f.mu.Unlock()
			time.Sleep(5 * time.Millisecond) // a very short long poll
			f.mu.Lock()
		}
	case "GetDeploymentSpecification":
		s := f.specs[body["DeploymentExecutionId"].(string)]
		resp = map[string]any{"DeploymentSystem": "CodeDeploy", "DeploymentSpecification": map[string]any{
			"GenericEnvelope": map[string]any{"Format": s.Format, "Payload": s.Payload}}}
	case "PutHostCommandAcknowledgement":
		f.acks++
		if f.answerError(w, f.ackAnswer, f.acks) {
			return
		}
		if len(f.queue) > 0 && f.queue[0].Again {
			f.mu.Unlock()
			select {
			case <-f.handedAgain:
			case <-time.After(5 * time.Second):
			}
			f.mu.Lock()
		}
		status := "InProgress"
		if len(f.queue) > 0 && f.queue[0].AckStatus != "" {
			status = f.queue[0].AckStatus
		}
		resp = map[string]any{"CommandStatus": status}
		if status == "Succeeded" || status == "Failed" {
			f.next() // the agent may send nothing more for this command
		}
	case "PutHostCommandComplete":
		f.completes++
		if f.answerError(w, f.completeAnswer, f.completes) {
			return
		}
		if f.busy && len(f.queue) > 0 && body["HostCommandIdentifier"] == f.queue[0].ID {
			f.next()
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(resp)
}

// answerError answers the n-th call with answer's error, if it gives one,
// and reports whether it did (then f.mu is released); f.mu is held.
func (f *fakeServer) answerError(w http.ResponseWriter, answer func(n int) (int, string), n int) bool {
	if answer == nil {
		return false
	}
	status, body := answer(n)
	if status == 0 {
		return false
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	return true
}

// next moves to the following command; f.mu is held.
func (f *fakeServer) next() {
	f.queue = f.queue[1:]
	f.busy = false
	if len(f.queue) == 0 {
		close(f.done)
	}
}

func (f *fakeServer) allCalls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func testConfig(t *testing.T, endpoint string) Config {
	return Config{
		Endpoint:       endpoint,
		Region:         "us-east-1",
		Credentials:    credentials.NewStaticCredentialsProvider("AKIDHOST", "secret", ""),
		HostIdentifier: testHost,
		RootDir:        t.TempDir(),
		PollInterval:   -1,
		ErrorBackoff:   func(int) time.Duration { return time.Millisecond },
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Environ:        []string{"PATH=/usr/bin:/bin"},
	}
}

// runUntil runs the agent until the fake server has handed out and seen the
// end of every command, then shuts it down.
func runUntil(t *testing.T, cfg Config, f *fakeServer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		t.Error("timed out waiting for the commands to finish")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func textSpec(t *testing.T, fields map[string]any) fakeSpec {
	spec := map[string]any{
		"DeploymentId": "d-AAAAAAAAA", "DeploymentGroupId": "dg-1", "DeploymentGroupName": "web",
		"ApplicationName": "app",
		"Revision": map[string]any{"RevisionType": "String", "StringRevision": map[string]any{
			"Content": "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n", "Sha256": ""}},
	}
	for k, v := range fields {
		spec[k] = v
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return fakeSpec{Format: "TEXT/JSON", Payload: string(b)}
}

type diag struct {
	ErrorCode  int    `json:"error_code"`
	ScriptName string `json:"script_name"`
	Message    string `json:"message"`
	Log        string `json:"log"`
}

// summary reduces a command's calls to "Op[detail]" strings.
func summary(t *testing.T, calls []call) []string {
	var out []string
	for _, c := range calls {
		s := c.Op
		diagnostics, _ := c.Body["Diagnostics"].(map[string]any)
		switch c.Op {
		case "PutHostCommandAcknowledgement":
			s += diagnostics["Payload"].(string)
		case "PutHostCommandComplete":
			var d diag
			if err := json.Unmarshal([]byte(diagnostics["Payload"].(string)), &d); err != nil {
				t.Fatal(err)
			}
			s += fmt.Sprintf("[%s %d %s]", c.Body["CommandStatus"], d.ErrorCode, d.Message)
		}
		out = append(out, s)
	}
	return out
}

func TestCommandFlow(t *testing.T) {
	spec := textSpec(t, nil)
	badSpec := fakeSpec{Format: "XML", Payload: "<spec/>"}
	cmds := []fakeCommand{
		{ID: "c-stop", Host: testHost, ExecID: "x/y/z/d1", Name: "ApplicationStop"},
		{ID: "c-block", Host: testHost, ExecID: "x/y/z/d1", Name: "BlockTraffic"},
		{ID: "c-dl", Host: testHost, ExecID: "x/y/z/d1", Name: "DownloadBundle"},
		{ID: "c-install", Host: testHost, ExecID: "x/y/z/d1", Name: "Install"},
		{ID: "c-start", Host: testHost, ExecID: "x/y/z/d1", Name: "ApplicationStart"},
		{ID: "c-acked-done", Host: testHost, ExecID: "x/y/z/d1", Name: "DownloadBundle", AckStatus: "Succeeded"},
		{ID: "c-noop-failed", Host: testHost, ExecID: "x/y/z/d1", Name: "ValidateService", AckStatus: "Failed"},
		{ID: "c-badspec", Host: testHost, ExecID: "x/y/z/bad", Name: "Install"},
	}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": spec, "x/y/z/bad": badSpec})
	cfg := testConfig(t, srv.URL)
	runUntil(t, cfg, f)

	tests := []struct {
		id   string
		want []string
	}{
		{"c-stop", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":true}`, "PutHostCommandComplete[Succeeded 0 Succeeded: ]"}},
		{"c-block", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":true}`, "PutHostCommandComplete[Failed 5 Unsupported command type: BlockTraffic.]"}},
		{"c-dl", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":false}`, "PutHostCommandComplete[Succeeded 0 Succeeded: ]"}},
		{"c-install", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":false}`, "PutHostCommandComplete[Succeeded 0 Succeeded: ]"}},
		{"c-start", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":true}`, "PutHostCommandComplete[Succeeded 0 Succeeded: ]"}},
		{"c-acked-done", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":false}`}},
		{"c-noop-failed", []string{`PutHostCommandAcknowledgement{"IsCommandNoop":true}`, "PutHostCommandComplete[Succeeded 0 Succeeded: CompletedNoopCommand]"}},
		{"c-badspec", []string{`PutHostCommandComplete[Failed 5 unsupported DeploymentSpecification format: "XML"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			var calls []call
			for _, c := range f.allCalls() {
				if c.Body["HostCommandIdentifier"] == tt.id {
					calls = append(calls, c)
				}
			}
			got := summary(t, calls)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	// The spec is always fetched right before the ack (polls go on meanwhile).
	var ops []string
	for _, c := range f.allCalls() {
		if c.Op != "PollHostCommand" {
			ops = append(ops, c.Op)
		}
	}
	for i, op := range ops {
		if op == "PutHostCommandAcknowledgement" && (i == 0 || ops[i-1] != "GetDeploymentSpecification") {
			t.Errorf("ack at %d not preceded by GetDeploymentSpecification: %v", i, ops)
		}
	}

	root := cfg.RootDir
	archive := filepath.Join(root, "dg-1", "d-AAAAAAAAA", "deployment-archive", "appspec.yml")
	if _, err := os.Stat(archive); err != nil {
		t.Errorf("inline appspec not written: %v", err)
	}
	for _, ptr := range []string{"dg-1_most_recent_install", "dg-1_last_successful_install"} {
		b, err := os.ReadFile(filepath.Join(root, "deployment-instructions", ptr))
		if err != nil || string(b) != filepath.Join(root, "dg-1", "d-AAAAAAAAA") {
			t.Errorf("%s = %q, %v", ptr, b, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "ongoing-deployment")); len(entries) != 0 {
		t.Errorf("tracking files left behind: %v", entries)
	}
}

func TestForeignHostCommandIsNeverAcked(t *testing.T) {
	cmds := []fakeCommand{{ID: "c-other", Host: "arn:aws:iam::111122223333:user/db-01", ExecID: "x/y/z/d1", Name: "Install"}}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
	cfg := testConfig(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	polls := 0
	for _, c := range f.allCalls() {
		if c.Op != "PollHostCommand" {
			t.Fatalf("unexpected %s for a foreign command", c.Op)
		}
		polls++
	}
	if polls < 2 {
		t.Fatalf("agent stopped polling after a bad command (%d polls)", polls)
	}
}

func TestRecoveryOnStart(t *testing.T) {
	f, srv := newFakeServer(t, nil, nil)
	cfg := testConfig(t, srv.URL)
	tracking := filepath.Join(cfg.RootDir, "ongoing-deployment")
	if err := os.MkdirAll(tracking, 0o700); err != nil {
		t.Fatal(err)
	}
	for did, hcid := range map[string]string{"d-1": "cmd-1", "d-2": "cmd-2"} {
		if err := os.WriteFile(filepath.Join(tracking, did), []byte(hcid), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(tracking, "d-stale")
	if err := os.WriteFile(stale, []byte("cmd-stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	calls := f.allCalls()
	completed := map[string]bool{}
	for i, c := range calls {
		if c.Op != "PutHostCommandComplete" {
			continue
		}
		if i >= 2 {
			t.Errorf("recovery Complete at position %d; it must precede polling", i)
		}
		var d diag
		payload := c.Body["Diagnostics"].(map[string]any)["Payload"].(string)
		if err := json.Unmarshal([]byte(payload), &d); err != nil {
			t.Fatal(err)
		}
		want := diag{ErrorCode: 7, Message: "Failed: Failing in-progress lifecycle event after an agent restart."}
		if c.Body["CommandStatus"] != "Failed" || d != want {
			t.Errorf("recovery Complete = %v %+v", c.Body["CommandStatus"], d)
		}
		completed[c.Body["HostCommandIdentifier"].(string)] = true
	}
	if !completed["cmd-1"] || !completed["cmd-2"] || completed["cmd-stale"] || len(completed) != 2 {
		t.Fatalf("completed = %v, want cmd-1 and cmd-2 only", completed)
	}
	if entries, _ := os.ReadDir(tracking); len(entries) != 0 {
		t.Fatalf("tracking files left: %v", entries)
	}
}

// TestCommandHandedOutAgainRunsOnce: a command the server hands out again
// while the agent runs it is neither acknowledged nor run a second time.
func TestCommandHandedOutAgainRunsOnce(t *testing.T) {
	cmds := []fakeCommand{{ID: "hc-1", Host: testHost, ExecID: "x/y/z/d1", Name: "DownloadBundle", Again: true}}
	f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
	runUntil(t, testConfig(t, srv.URL), f)
	select {
	case <-f.handedAgain:
	default:
		t.Fatal("the command was not handed out a second time")
	}
	var got []string
	for _, c := range f.allCalls() {
		if c.Body["HostCommandIdentifier"] == "hc-1" {
			got = append(got, c.Op)
		}
	}
	if want := []string{"PutHostCommandAcknowledgement", "PutHostCommandComplete"}; !slices.Equal(got, want) {
		t.Errorf("calls for the command handed out twice: %v, want %v", got, want)
	}
}

// TestAcknowledgementRetried: while the server answers 503 (restarting,
// failing over) the agent retries the acknowledgement, then runs the
// command once; a refused acknowledgement fails it at once.
func TestAcknowledgementRetried(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   func(n int) (int, string)
		wantAcks int
		want     string
	}{
		// Six answers: past the client's own three retries.
		{"busy six times", func(n int) (int, string) {
			if n <= 6 {
				return 503, `{"__type":"ServiceUnavailableException","message":"restarting"}`
			}
			return 0, ""
		}, 7, "PutHostCommandComplete[Succeeded 0 Succeeded: ]"},
		{"refused", func(int) (int, string) {
			return 400, `{"__type":"ClientException","message":"command does not belong to this host"}`
		}, 1, "PutHostCommandComplete[Failed 5 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := []fakeCommand{{ID: "hc-1", Host: testHost, ExecID: "x/y/z/d1", Name: "DownloadBundle"}}
			f, srv := newFakeServer(t, cmds, map[string]fakeSpec{"x/y/z/d1": textSpec(t, nil)})
			f.ackAnswer = tc.answer
			runUntil(t, testConfig(t, srv.URL), f)
			var got []string
			for _, s := range summary(t, f.allCalls()) {
				if strings.HasPrefix(s, "PutHostCommand") {
					got = append(got, s)
				}
			}
			acks := 0
			for _, s := range got {
				if strings.HasPrefix(s, "PutHostCommandAcknowledgement") {
					acks++
				}
			}
			if acks != tc.wantAcks || len(got) != acks+1 || !strings.HasPrefix(got[len(got)-1], tc.want) {
				t.Errorf("calls %q; want %d acknowledgements then %s", got, tc.wantAcks, tc.want)
			}
		})
	}
}
