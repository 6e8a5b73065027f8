package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/deploy"
)

// TestTeardownCommandAndWebhook checks the operator's teardown hooks get
// the retired instances: the command through its environment and stdin,
// the webhook as a JSON POST.
func TestTeardownCommandAndWebhook(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var got deploy.TeardownEvent
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || json.Unmarshal(b, &got) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
		}
	}))
	defer hook.Close()
	// The server's secrets stay out of the command's environment.
	t.Setenv("CUTOVER_SERVER_KEY", "server-key-secret")
	t.Setenv("CUTOVER_ROOT_SECRET_ACCESS_KEY", "root-secret")
	cmd := `echo "$CUTOVER_DEPLOYMENT_ID|$CUTOVER_INSTANCES|$CUTOVER_TERMINATE|$CUTOVER_ACCOUNT|$CUTOVER_REGION|$CUTOVER_SERVER_KEY$CUTOVER_ROOT_SECRET_ACCESS_KEY|$(env | grep -c -i secret)" > ` + out + `; cat >> ` + out
	fn := teardown(cmd, hook.URL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := deploy.TeardownEvent{DeploymentID: "d-ABCDEFGH1", ApplicationName: "app", DeploymentGroup: "web", Instances: []string{"b1", "b2"}, Terminate: true,
		Account: "111111111111", Region: "eu-west-1"}
	if err := fn(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	first, rest, _ := strings.Cut(string(b), "\n")
	if first != "d-ABCDEFGH1|b1 b2|true|111111111111|eu-west-1||0" || !strings.Contains(rest, `"instances":["b1","b2"]`) {
		t.Fatalf("command saw %q", b)
	}
	if got.DeploymentID != "d-ABCDEFGH1" || len(got.Instances) != 2 || !got.Terminate {
		t.Fatalf("webhook got %+v", got)
	}
	// A failing command is reported, not ignored.
	if err := teardown("exit 3", "", slog.Default())(context.Background(), ev); err == nil {
		t.Fatal("failing teardown command reported success")
	}
}
