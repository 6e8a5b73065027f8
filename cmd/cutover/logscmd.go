package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// hookLog is one command's output as the server returns it.
type hookLog struct {
	Instance  string `json:"instance"`
	Event     string `json:"event"`
	Command   string `json:"command"`
	Truncated bool   `json:"truncated"`
	Omitted   bool   `json:"omitted"`
	Text      string `json:"text"`
}

func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := newSettings("logs")
	s.fs.SetOutput(stderr)
	s.args = "DEPLOYMENT_ID"
	s.about = "Prints the full output of the deployment's hooks, as the Cutover agent streamed it. For instances whose agent\ndoes not stream (the official CodeDeploy agent), it prints each lifecycle event's diagnostics and log tail."
	var rf remoteFlags
	rf.declare(s.fs)
	instance := s.fs.String("instance", "", "only this instance's hooks")
	followFlag := s.fs.Bool("follow", false, "keep printing output as hooks write it, until the deployment ends")
	if err := s.parse(args); err != nil {
		return err
	}
	if len(s.pos) != 1 {
		s.fs.Usage()
		return errors.New("give one DEPLOYMENT_ID")
	}
	r, err := rf.connect(ctx)
	if err != nil {
		return err
	}
	p := &logPrinter{r: r, id: s.pos[0], instance: *instance, out: stdout, stderr: stderr, printed: map[string]int{}, streamed: map[string]bool{}}
	if *followFlag {
		err = p.follow(ctx)
	} else {
		err = p.once(ctx)
	}
	if err != nil {
		return err
	}
	return p.unstreamed(ctx)
}

type logPrinter struct {
	r            *remote
	id, instance string
	out, stderr  io.Writer
	printed      map[string]int  // command -> bytes printed
	streamed     map[string]bool // instances with streamed output
	down         bool            // the event stream is unavailable (said on stderr)
	last         string          // command printed last (a header marks a switch)
}

// once prints what is new since the last call.
func (p *logPrinter) once(ctx context.Context) error {
	q := url.Values{"deployment": {p.id}}
	if p.instance != "" {
		q.Set("instance", p.instance)
	}
	resp, err := p.r.get(ctx, "/ui/logs", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var got struct {
		Logs []hookLog `json:"logs"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&got); err != nil {
		return fmt.Errorf("decode logs: %w", err)
	}
	for _, l := range got.Logs {
		p.streamed[l.Instance] = true
		if l.Omitted && p.printed[l.Command] == 0 {
			fmt.Fprintf(p.out, "==> %s %s <==\n(too much output for one request: use --instance %s)\n", l.Instance, l.Event, l.Instance)
			p.printed[l.Command] = -1
			p.last = ""
			continue
		}
		n := max(p.printed[l.Command], 0)
		if len(l.Text) <= n {
			continue
		}
		if p.last != l.Command {
			fmt.Fprintf(p.out, "==> %s %s <==\n", l.Instance, l.Event)
			p.last = l.Command
		}
		_, _ = io.WriteString(p.out, l.Text[n:])
		p.printed[l.Command] = len(l.Text)
	}
	return nil
}

// follow prints output as it arrives, woken by the server's log events
// (polling every second while the stream is unavailable), until the
// deployment ends.
func (p *logPrinter) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan sse, 16)
	done := make(chan struct{})
	go p.r.follow(ctx, url.Values{"deployment": {p.id}}, events, done)
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	streaming := false
	for {
		if err := p.once(ctx); err != nil {
			return err
		}
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case ev := <-events:
				switch ev.event {
				case "_down":
					streaming = false
					p.down = streamDown(p.stderr, p.down, ev.data)
				case "log":
					streaming, wait, p.down = true, false, false
				case "state":
					streaming = true
					var st struct {
						Deployment struct {
							Status string `json:"status"`
						} `json:"deployment"`
					}
					if json.Unmarshal(ev.data, &st) == nil && isTerminal(st.Deployment.Status) {
						return p.once(ctx)
					}
				}
			case <-tick.C:
				if !streaming {
					out, err := p.r.cd.GetDeployment(ctx, deploymentInput(p.id))
					if err != nil {
						return err
					}
					if isTerminal(string(out.DeploymentInfo.Status)) {
						return p.once(ctx)
					}
					wait = false
				}
			}
		}
	}
}

// unstreamed prints, for each instance of the deployment without streamed
// output (its agent does not stream, as the official CodeDeploy agent
// does not), what the server has of its hooks instead: each lifecycle
// event's status and diagnostics, with the log tail an agent sends for a
// failed hook. A note on stderr says why.
func (p *logPrinter) unstreamed(ctx context.Context) error {
	targets, err := p.r.instanceTargets(ctx, p.id)
	if err != nil {
		return err
	}
	noted := false
	for _, t := range targets {
		inst := aws.ToString(t.TargetId)
		if p.streamed[inst] || (p.instance != "" && inst != p.instance) || len(t.LifecycleEvents) == 0 {
			continue
		}
		if !noted {
			fmt.Fprintf(p.stderr, "cutover logs: no streamed output from %s: its agent does not stream hook output "+
				"(the official CodeDeploy agent does not); showing each lifecycle event's diagnostics and log tail instead\n", strings.Join(p.quiet(targets), ", "))
			noted = true
		}
		for _, e := range t.LifecycleEvents {
			head := fmt.Sprintf("==> %s %s (%s", inst, aws.ToString(e.LifecycleEventName), e.Status)
			var tail string
			if d := e.Diagnostics; d != nil {
				if d.ErrorCode != "" && d.ErrorCode != types.LifecycleErrorCodeSuccess {
					head += ", " + string(d.ErrorCode)
				}
				if s := aws.ToString(d.ScriptName); s != "" {
					head += ", script " + s
				}
				if m := aws.ToString(d.Message); m != "" && m != string(e.Status) {
					head += ": " + m
				}
				tail = aws.ToString(d.LogTail)
			}
			fmt.Fprintln(p.out, head+") <==")
			if tail != "" {
				_, _ = io.WriteString(p.out, tail)
				if !strings.HasSuffix(tail, "\n") {
					fmt.Fprintln(p.out)
				}
			}
		}
	}
	return nil
}

// quiet names the instances unstreamed reports on.
func (p *logPrinter) quiet(targets []*types.InstanceTarget) []string {
	var out []string
	for _, t := range targets {
		inst := aws.ToString(t.TargetId)
		if !p.streamed[inst] && (p.instance == "" || inst == p.instance) && len(t.LifecycleEvents) > 0 {
			out = append(out, inst)
		}
	}
	return out
}
