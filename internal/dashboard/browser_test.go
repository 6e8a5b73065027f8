package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// chromium returns the browser to drive, or skips the test when there is
// none outside CI (scripts/test installs the Debian package; in CI a
// missing browser fails the test).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (scripts/test installs the Debian package chromium)")
	}
	t.Skip("chromium is not installed: install the Debian package chromium (scripts/test does) to run the browser test")
	return ""
}

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// screenshot saves the viewport (PNG) under testdata/screenshots (kept out of git
// except for the copies in docs/screenshots) and logs where.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	t.Logf("screenshot: %s", abs)
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#main")))
		t.Fatalf("waiting for %s: %v\npage: %s", what, err, text)
	}
}

// mouseAction clicks an action button with the mouse, as a person does. A
// click lands at coordinates read just before it, so a re-render in
// between can make it miss; the page says at once when an action is sent
// (#action-result), so a click that left no word is made again.
func mouseAction(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	for try := 1; ; try++ {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))); err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](`document.getElementById("action-result").textContent !== ""`, chromedp.WithPollingInterval(20*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		if try == 3 {
			text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#main")))
			t.Fatalf("three mouse clicks on #%s sent nothing\npage: %s", id, text)
		}
		t.Logf("mouse click on #%s sent nothing; clicking again", id)
	}
}

// TestDashboardBlueGreen signs in with an access key, watches a blue/green
// deployment reach Ready live, reads the hook logs, clicks Continue and
// sees the traffic panel move to the green hosts; it measures the latency
// from the server hearing of a committed change to the browser's DOM update.
func TestDashboardBlueGreen(t *testing.T) {
	ctx := newBrowser(t)
	hook := newWebhook(t)
	f := servertest.StartBlueGreen(t, 2, func(c *server.Config) { c.TriggersConfig = hook.config(t) })
	hook.subscribe(t, f.Env)
	load := driveTraffic(t, "http://"+f.TG.Listen+"/")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.Env.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("login-key")),
		chromedp.SendKeys(chromedp.ID("login-key"), f.Env.AccessKey),
		chromedp.SendKeys(chromedp.ID("login-secret"), "wrong secret"),
		chromedp.Click(chromedp.ID("login-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the refused sign-in", `document.getElementById("login-error").textContent.includes("not valid")`, 20*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.getElementById("login-secret").value = ""`),
		chromedp.SendKeys(chromedp.ID("login-secret"), f.Env.SecretKey),
		chromedp.Click(chromedp.ID("login-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the application list", `!!document.querySelector("#apps a[href='#/app/`+servertest.BGApp+`']")`, 20*time.Second)
	screenshot(t, ctx, "applications")

	// The group's page lists the bootstrap deployment, live.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#apps a"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the deployment list", `document.querySelectorAll("#deployments tr[data-id]").length === 1`, 20*time.Second)
	id := f.Deploy(t, "green")
	waitJS(t, ctx, "the new deployment listed live, newest first", `document.querySelector("#deployments tr[data-id]").dataset.id === "`+id+`"`, 20*time.Second)
	screenshot(t, ctx, "deployments")

	// The list re-renders live, so find and click the link in one step.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#deployments tr[data-id="`+id+`"] a').click()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "status Ready", `(document.getElementById("status")||{}).textContent === "Ready"`, 60*time.Second)
	waitJS(t, ctx, "the Ready-wait countdown", `/\d+h \d\dm \d\ds until the Ready wait ends/.test(document.getElementById("countdown").textContent)`, 15*time.Second)
	waitJS(t, ctx, "the grid", `document.querySelectorAll("#grid tr[data-target]").length === 4 && document.querySelectorAll("#grid td.ev.Succeeded").length > 0`, 15*time.Second)
	waitJS(t, ctx, "hook logs", `[...document.querySelectorAll("#logs .log pre")].some(p => p.textContent.includes("hook AfterInstall on green-1 for `+id+`"))`, 20*time.Second)
	waitJS(t, ctx, "traffic still on blue", `document.querySelector(".serving-list[data-tg=web]").textContent === "blue-1 blue-2"`, 20*time.Second)
	// The rates panel: the requests the test sends through the router
	// land on the serving (blue) hosts, none on the green ones yet.
	waitJS(t, ctx, "a request rate on the serving backends", rateOf("blue-1")+` > 0 && `+rateOf("blue-2")+` > 0 && +document.querySelector(".tg-rate[data-tg=web]").textContent > 0`, 20*time.Second)
	if v := evalNumber(t, ctx, rateOf("green-1")); v != 0 {
		t.Errorf("green-1 request rate %v before traffic moved, want 0", v)
	}
	phase, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("phase")))
	if err != nil {
		t.Fatal(err)
	}
	if phase != "ready" {
		t.Errorf("phase %q while Ready, want ready", phase)
	}
	screenshot(t, ctx, "deployment-ready")
	// The wide lifecycle grid scrolls inside its card; the page itself
	// never scrolls sideways (it did, as seen on the screenshots).
	if w := evalNumber(t, ctx, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
		wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 8).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join("; ")`))
		t.Errorf("the page is %v px wider than the window: %s", w, wide)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#grid tr[data-target="green-1"] td.ev[data-event="AfterInstall"]').click(); document.getElementById("grid").scrollIntoView()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "an event's details", `document.getElementById("detail").textContent.includes("AfterInstall · Succeeded")`, 15*time.Second)
	screenshot(t, ctx, "deployment-grid-logs")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}

	mouseAction(t, ctx, "btn-continue")
	waitJS(t, ctx, "traffic moved to green", `document.querySelector(".serving-list[data-tg=web]").textContent === "green-1 green-2"`, 60*time.Second)
	waitJS(t, ctx, "status Succeeded", `document.getElementById("status").textContent === "Succeeded"`, 60*time.Second)
	screenshot(t, ctx, "deployment-succeeded")
	waitJS(t, ctx, "a request rate on green, the serving backends now", rateOf("green-1")+` > 0 && `+rateOf("green-2")+` > 0`, 30*time.Second)
	if n := load.count(); n == 0 {
		t.Fatal("no request went through the router")
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("rates").scrollIntoView()`)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "deployment-traffic-rates")
	// The delivery log fills live from the change feed as the worker
	// delivers: DeploymentSuccess was committed after the page opened.
	waitJS(t, ctx, "the delivery log", `["DeploymentStart", "DeploymentReady", "DeploymentSuccess"].every(e => !!document.querySelector('#delivery-log tr[data-event="' + e + '"][data-status="Delivered"]'))`, 30*time.Second)
	checkDeliveries(t, f, id)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("deliveries").scrollIntoView()`)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "deployment-deliveries")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}

	// More samples for the latency figures: further deployments, back and
	// forth, each watched on its page from creation to success.
	for i, color := range []string{"blue", "green", "blue", "green"} {
		id := f.Deploy(t, color)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = "#/deployment/`+id+`"`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, fmt.Sprintf("deployment %d Ready", i+2), `(document.getElementById("status")||{}).textContent === "Ready"`, 60*time.Second)
		// A DOM click: a mouse click at coordinates can miss while the
		// page re-renders under load (the mouse path is tested above).
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("btn-continue").click()`)); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, fmt.Sprintf("deployment %d continued", i+2), `document.getElementById("action-result").textContent === "Continued (READY_WAIT)."`, 20*time.Second)
		waitJS(t, ctx, fmt.Sprintf("deployment %d Succeeded", i+2), `document.getElementById("status").textContent === "Succeeded" && document.querySelector(".serving-list[data-tg=web]").textContent === "`+color+`-1 `+color+`-2"`, 60*time.Second)
	}

	// Stop and roll back from the Ready wait: the deployment stops and
	// traffic never leaves the hosts serving it (green, after the loop).
	id = f.Deploy(t, "blue")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = "#/deployment/`+id+`"`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the last deployment Ready", `(document.getElementById("status")||{}).textContent === "Ready"`, 60*time.Second)
	// A DOM click, as in the loop above: CI once saw a mouse click here
	// land on nothing while the page re-rendered.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("btn-stop-rollback").click()`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the stop sent", `document.getElementById("action-result").textContent !== ""`, 10*time.Second)
	waitJS(t, ctx, "the stop answered", `document.getElementById("action-result").textContent.startsWith("Stop: Succeeded")`, 30*time.Second)
	waitJS(t, ctx, "status Stopped", `document.getElementById("status").textContent === "Stopped" && document.getElementById("btn-stop").disabled && document.getElementById("btn-continue").disabled`, 60*time.Second)
	waitJS(t, ctx, "traffic still on green", `document.querySelector(".serving-list[data-tg=web]").textContent === "green-1 green-2"`, 20*time.Second)
	screenshot(t, ctx, "deployment-stopped")

	// The application page shows each group's fleet now: the green hosts
	// (the bootstrap deployment's blue ones were replaced), not what the
	// tag filters of the group's configuration say.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = "#/app/`+servertest.BGApp+`"`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the group's fleet", `(document.querySelector('#groups td.fleet[data-group="`+servertest.BGGroup+`"]')||{}).textContent === "green-1 green-2"`, 20*time.Second)
	screenshot(t, ctx, "groups-fleet")

	samples, err := chromedp.Run(ctx, chromedp.Evaluate[[]struct {
		ChangedAt float64 `json:"changedAt"`
		DomAt     float64 `json:"domAt"`
	}](`window.__latency`))
	if err != nil {
		t.Fatal(err)
	}
	var lat []float64
	for _, s := range samples {
		lat = append(lat, s.DomAt-s.ChangedAt)
	}
	if len(lat) < 5 {
		t.Fatalf("only %d latency samples: %v", len(lat), lat)
	}
	sort.Float64s(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("dashboard latency, change feed -> DOM update, %d samples: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms",
		len(lat), q(0.5), q(0.9), q(0.99), lat[len(lat)-1])
	// The target is p99 < 200 ms (BENCHMARKS.md, measured there); the
	// test fails only on a gross regression (a polling loop, a stuck
	// stream), which moves the median: on a saturated machine the tail
	// alone reached 1.2 s with nothing wrong.
	if p50 := q(0.5); p50 > 500 {
		t.Errorf("median dashboard latency %.1f ms (p99 %.1f ms): the page is not following the change feed (target p99 < 200 ms; fails above a 500 ms median)", p50, q(0.99))
	}
	if slices.ContainsFunc(lat, func(v float64) bool { return v < -5 }) {
		t.Errorf("negative latencies %v: clocks disagree", lat[:3])
	}
}

// TestDashboardUnstreamedLogs: a deployment whose agent streamed no hook
// output (as the official agent) shows, in the log panel, that nothing was
// streamed and each lifecycle event's diagnostics with the failed hook's
// log tail, instead of "No output yet." for ever.
func TestDashboardUnstreamedLogs(t *testing.T) {
	ctx := newBrowser(t)
	env := servertest.Start(t)
	id := env.DeployWithoutStreaming(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.URL+"/ui/#/deployment/"+id),
		chromedp.WaitVisible(chromedp.ID("login-key")),
		chromedp.SendKeys(chromedp.ID("login-key"), env.AccessKey),
		chromedp.SendKeys(chromedp.ID("login-secret"), env.SecretKey),
		chromedp.Click(chromedp.ID("login-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "status Failed", `(document.getElementById("status")||{}).textContent === "Failed"`, 30*time.Second)
	inst := `document.querySelector('#logs-unstreamed .unstreamed[data-instance="` + servertest.QuietInstance + `"]')`
	waitJS(t, ctx, "the unstreamed instance's diagnostics",
		`!!`+inst+` && `+inst+`.querySelector('[data-event="AfterInstall"] pre').textContent.includes("`+servertest.QuietFailure+`")`, 20*time.Second)
	note, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("unstreamed-note")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "No streamed output from "+servertest.QuietInstance) {
		t.Errorf("note %q", note)
	}
	diag, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#logs-unstreamed [data-event="AfterInstall"]`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Failed", "ScriptFailed", "script scripts/AfterInstall.sh"} {
		if !strings.Contains(diag, want) {
			t.Errorf("AfterInstall diagnostics %q lack %q", diag, want)
		}
	}
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`[...document.querySelectorAll("#logs p.muted")].some(p => !p.hidden && p.textContent === "No output yet.")`)); err != nil || v {
		t.Errorf("the panel still says No output yet (%v)", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("logs").scrollIntoView()`)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "deployment-unstreamed-logs")
}
