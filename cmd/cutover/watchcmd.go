package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"golang.org/x/sys/unix"

	"github.com/cutoverhq/cutover/internal/engine"
)

// errNotSucceeded is returned when a watched deployment ends otherwise
// than Succeeded (the exit status is then non-zero).
var errNotSucceeded = errors.New("deployment did not succeed")

// liveExtra is what the event stream adds to the API shapes.
type liveExtra struct {
	Waits struct {
		Phase          engine.Phase `json:"phase"`
		ReadyDeadline  time.Time    `json:"readyDeadline"`
		TerminationDue time.Time    `json:"terminationDue"`
	} `json:"waits"`
	Traffic []struct {
		Name    string `json:"name"`
		Members []struct {
			ID     string `json:"id"`
			Weight int    `json:"weight"`
			State  string `json:"state"`
		} `json:"members"`
		Error string `json:"error"`
	} `json:"traffic"`
	ServerTime time.Time `json:"serverTime"`
	received   time.Time
}

func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := newSettings("watch")
	s.fs.SetOutput(stderr)
	s.args = "DEPLOYMENT_ID | --group APP/GROUP"
	s.about = "Follows a deployment live; exits 0 when it succeeds, 1 otherwise."
	var rf remoteFlags
	rf.declare(s.fs)
	group := s.fs.String("group", "", "APP/GROUP: wait for the group's next deployment and watch it")
	plain := s.fs.Bool("plain", false, "print plain lines even on a terminal")
	if err := s.parse(args); err != nil {
		return err
	}
	if (len(s.pos) == 1) == (*group != "") || len(s.pos) > 1 {
		s.fs.Usage()
		return errors.New("give one DEPLOYMENT_ID or --group APP/GROUP")
	}
	r, err := rf.connect(ctx)
	if err != nil {
		return err
	}
	var id string
	if len(s.pos) == 1 {
		id = s.pos[0]
	}
	if *group != "" {
		app, grp, ok := strings.Cut(*group, "/")
		if !ok || app == "" || grp == "" {
			return errors.New("--group wants APP/GROUP")
		}
		fmt.Fprintf(stdout, "waiting for the next deployment of %s/%s…\n", app, grp)
		if id, err = r.nextDeployment(ctx, app, grp, time.Now(), stderr); err != nil {
			return err
		}
	}
	cols, tty := termWidth(stdout)
	w := &watcher{r: r, id: id, out: stdout, stderr: stderr, tty: tty && !*plain, cols: cols, seen: map[string]string{}}
	return w.run(ctx)
}

// termWidth returns the terminal's width, and false when w is not a
// terminal.
func termWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, false
	}
	return int(ws.Col), true
}

// fit cuts a line to the terminal's width: a wrapped line would break the
// redraw in place, which counts lines.
func fit(s string, cols int) string {
	if cols <= 1 {
		return s
	}
	r := []rune(s)
	if len(r) < cols {
		return s
	}
	return string(r[:cols-2]) + "…"
}

// nextDeployment waits for a deployment of the group created at or after
// since, woken by the server's deployment events (polling every second
// when they are unavailable).
func (r *remote) nextDeployment(ctx context.Context, app, group string, since time.Time, stderr io.Writer) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan sse, 16)
	done := make(chan struct{})
	go r.follow(ctx, url.Values{}, events, done)
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Deployments already there (created since a minute of clock skew
	// before since) are not the next one.
	window := &types.TimeRange{Start: aws.Time(since.Add(-time.Minute))}
	list := func() ([]string, error) {
		var ids []string
		in := &codedeploy.ListDeploymentsInput{ApplicationName: &app, DeploymentGroupName: &group, CreateTimeRange: window}
		for p := codedeploy.NewListDeploymentsPaginator(r.cd, in); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			ids = append(ids, out.Deployments...)
		}
		return ids, nil
	}
	before, err := list()
	if err != nil {
		return "", err
	}
	streaming, down := false, false
	for {
		ids, err := list()
		if err != nil {
			return "", err
		}
		for i := len(ids) - 1; i >= 0; i-- { // newest first: the oldest new one is next
			if !slices.Contains(before, ids[i]) {
				return ids[i], nil
			}
		}
		for {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case ev := <-events:
				streaming = ev.event != "_down"
				if streaming {
					down = false
				} else {
					down = streamDown(stderr, down, ev.data)
				}
			case <-tick.C:
				if streaming {
					continue
				}
			}
			break
		}
	}
}

// watcher renders one deployment until it ends.
type watcher struct {
	r   *remote
	id  string
	out io.Writer
	// stderr hears that the event stream is unavailable.
	stderr io.Writer
	down   bool
	tty    bool
	cols   int
	extra  *liveExtra
	seen   map[string]string // plain mode: last printed line per key
	lines  int               // tty mode: lines drawn last time
}

func (w *watcher) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan sse, 16)
	done := make(chan struct{})
	go w.r.follow(ctx, url.Values{"deployment": {w.id}}, events, done)
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	streaming := false
	for {
		info, targets, err := w.read(ctx)
		if err != nil {
			return err
		}
		w.render(info, targets)
		if isTerminal(string(info.Status)) {
			if info.Status != types.DeploymentStatusSucceeded {
				return fmt.Errorf("%w: %s %s", errNotSucceeded, w.id, info.Status)
			}
			return nil
		}
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case ev := <-events:
				switch ev.event {
				case "_down":
					streaming = false
					if w.down {
						continue
					}
					// Said once per outage; on a terminal the view is
					// erased first and drawn again below the line.
					if w.tty && w.lines > 0 {
						fmt.Fprintf(w.out, "\x1b[%dA\x1b[J", w.lines)
						w.lines = 0
					}
					w.down = streamDown(w.stderr, false, ev.data)
				case "state":
					var x liveExtra
					if json.Unmarshal(ev.data, &x) == nil {
						x.received = time.Now()
						w.extra = &x
					}
				case "failure":
					return fmt.Errorf("event stream: %s", ev.data)
				case "log":
					continue
				}
				if ev.event != "_down" {
					streaming, w.down = true, false
				}
			case <-tick.C:
				if streaming {
					if w.tty && w.extra != nil && !w.extra.Waits.ReadyDeadline.IsZero() {
						break // redraw the countdown
					}
					continue
				}
			}
			break
		}
	}
}

func (w *watcher) read(ctx context.Context) (*types.DeploymentInfo, []*types.InstanceTarget, error) {
	got, err := w.r.cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: &w.id})
	if err != nil {
		return nil, nil, err
	}
	targets, err := w.r.instanceTargets(ctx, w.id)
	if err != nil {
		return nil, nil, err
	}
	return got.DeploymentInfo, targets, nil
}

// instanceTargets reads a deployment's instance targets, with their
// lifecycle events, sorted by id.
func (r *remote) instanceTargets(ctx context.Context, id string) ([]*types.InstanceTarget, error) {
	var ids []string
	var tok *string
	for {
		page, err := r.cd.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: &id, NextToken: tok})
		if err != nil {
			return nil, err
		}
		ids = append(ids, page.TargetIds...)
		if tok = page.NextToken; tok == nil {
			break
		}
	}
	var targets []*types.InstanceTarget
	for i := 0; i < len(ids); i += 25 {
		b, err := r.cd.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: &id, TargetIds: ids[i:min(i+25, len(ids))]})
		if err != nil {
			return nil, err
		}
		for _, t := range b.DeploymentTargets {
			if t.InstanceTarget != nil {
				targets = append(targets, t.InstanceTarget)
			}
		}
	}
	slices.SortFunc(targets, func(a, b *types.InstanceTarget) int {
		return strings.Compare(aws.ToString(a.TargetId), aws.ToString(b.TargetId))
	})
	return targets, nil
}

func progressBar(ov *types.DeploymentOverview, width int) (string, string) {
	if ov == nil {
		ov = &types.DeploymentOverview{}
	}
	total := ov.Succeeded + ov.Failed + ov.InProgress + ov.Ready + ov.Skipped + ov.Pending
	done := ov.Succeeded + ov.Failed + ov.Skipped + ov.Ready
	n := 0
	if total > 0 {
		n = int(int64(width) * done / total)
	}
	bar := "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
	counts := fmt.Sprintf("%d/%d done · succeeded %d · failed %d · in progress %d · ready %d · skipped %d · pending %d",
		done, total, ov.Succeeded, ov.Failed, ov.InProgress, ov.Ready, ov.Skipped, ov.Pending)
	return bar, counts
}

func (w *watcher) waitLine(info *types.DeploymentInfo) string {
	x := w.extra
	if x == nil || x.Waits.Phase == "" {
		return ""
	}
	line := "phase " + string(x.Waits.Phase)
	now := x.ServerTime.Add(time.Since(x.received))
	var due time.Time
	var what string
	switch {
	case x.Waits.Phase == engine.PhaseReadyWait && !x.Waits.ReadyDeadline.IsZero():
		due, what = x.Waits.ReadyDeadline, "Ready wait ends in"
	case x.Waits.Phase == engine.PhaseTermination && !x.Waits.TerminationDue.IsZero():
		due, what = x.Waits.TerminationDue, "original instances terminated in"
	}
	if !due.IsZero() && !isTerminal(string(info.Status)) {
		left := max(due.Sub(now), 0).Truncate(time.Second)
		if w.tty {
			line += " · " + what + " " + left.String()
		} else {
			line += " · " + strings.TrimSuffix(what, " in") + " at " + due.UTC().Format(time.RFC3339)
		}
	}
	return line
}

func (w *watcher) trafficLines() []string {
	if w.extra == nil {
		return nil
	}
	var out []string
	for _, tg := range w.extra.Traffic {
		var parts []string
		for _, m := range tg.Members {
			parts = append(parts, fmt.Sprintf("%s(%s w%d)", m.ID, m.State, m.Weight))
		}
		s := "traffic " + tg.Name + ": " + strings.Join(parts, " ")
		if tg.Error != "" {
			s += " (" + tg.Error + ")"
		}
		out = append(out, s)
	}
	return out
}

func (w *watcher) render(info *types.DeploymentInfo, targets []*types.InstanceTarget) {
	bar, counts := progressBar(info.DeploymentOverview, 30)
	head := fmt.Sprintf("deployment %s %s/%s: %s", w.id, aws.ToString(info.ApplicationName), aws.ToString(info.DeploymentGroupName), info.Status)
	var lines []string
	lines = append(lines, head, bar+" "+counts)
	if wl := w.waitLine(info); wl != "" {
		lines = append(lines, wl)
	}
	lines = append(lines, w.trafficLines()...)
	var instLines []string
	for _, t := range targets {
		var evs []string
		for _, e := range t.LifecycleEvents {
			evs = append(evs, aws.ToString(e.LifecycleEventName)+"="+string(e.Status))
		}
		label := ""
		if t.InstanceLabel != "" {
			label = " [" + string(t.InstanceLabel) + "]"
		}
		instLines = append(instLines, fmt.Sprintf("  %s%s %s: %s", aws.ToString(t.TargetId), label, t.Status, strings.Join(evs, " ")))
	}
	if info.ErrorInformation != nil {
		lines = append(lines, fmt.Sprintf("error %s: %s", info.ErrorInformation.Code, aws.ToString(info.ErrorInformation.Message)))
	}
	if w.tty {
		var b strings.Builder
		if w.lines > 0 {
			fmt.Fprintf(&b, "\x1b[%dA\x1b[J", w.lines)
		}
		all := append(lines[:2:2], instLines...)
		all = append(all, lines[2:]...)
		for _, l := range all {
			b.WriteString(fit(l, w.cols) + "\n")
		}
		w.lines = len(all)
		_, _ = io.WriteString(w.out, b.String())
		return
	}
	// Plain: one line per change, stamped.
	stamp := time.Now().UTC().Format("15:04:05")
	emit := func(key, line string) {
		if w.seen[key] == line {
			return
		}
		w.seen[key] = line
		fmt.Fprintf(w.out, "%s %s\n", stamp, line)
	}
	emit("head", head+" "+counts)
	for i, l := range lines[2:] {
		key := fmt.Sprintf("extra%d", i)
		if strings.HasPrefix(l, "phase ") {
			key = "phase"
		}
		emit(key, l)
	}
	for i, l := range instLines {
		emit(fmt.Sprint("inst", aws.ToString(targets[i].TargetId)), strings.TrimSpace(l))
	}
}
