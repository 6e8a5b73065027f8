// Package hook runs the scripts of one appspec lifecycle event the way the official
// CodeDeploy agent's HookExecutor (1.8.1) does: in list order, stopping at the first
// failure, each in its own process group with stdin closed, the agent's environment
// plus the deployment variables, a per-script deadline that covers both the process
// and its stdout/stderr, and the same log lines, log tail and error messages.
package hook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/appspec"
	"github.com/cutoverhq/cutover/internal/bundle"
)

// Lifecycle error codes sent in the Complete diagnostics (§1.6).
const (
	Success             = 0
	ScriptMissing       = 1
	ScriptNotExecutable = 2
	ScriptTimedOut      = 3
	ScriptFailed        = 4
	UnknownError        = 5
	OutputsLeftOpen     = 6
)

// DefaultKillGrace is how long a script may take to exit after SIGTERM before the
// process group gets SIGKILL.
const DefaultKillGrace = 30 * time.Second

// drainAfterKill bounds the wait for stdout/stderr EOF once the script is dead: a
// process outside the group (su starts the script in a new session) may hold them.
const drainAfterKill = time.Second

// Request describes one lifecycle event.
type Request struct {
	Event   string
	Scripts []appspec.Script
	// ArchiveDir is the deployment archive the script locations are relative to.
	ArchiveDir string
	// Env holds KEY=VALUE entries added to (and overriding) the agent's own
	// environment. An entry without "=" removes that variable, which is how the
	// official agent treats a variable whose value is nil.
	Env []string
	// LogPath is <root>/<DGID>/<DID>/logs/scripts.log (appended; "" = none).
	LogPath string
	// DeploymentLog is <root>/deployment-logs/codedeploy-agent-deployments.log
	// (appended; "" = none).
	DeploymentLog string
	DeploymentID  string
	// KillGrace is the wait between SIGTERM and SIGKILL (0 = DefaultKillGrace).
	KillGrace time.Duration
	// Logger receives agent-side notes (nil = slog.Default()).
	Logger *slog.Logger
	// Output, when set, receives everything written to the script log, as
	// it happens, without timestamps (the agent streams it to the server).
	// Its errors are ignored, like the log files'.
	Output io.Writer
}

// Result is the outcome of an event. For a failure, ScriptName is the failing
// script's location as written in the appspec and LogTail the §8.6 tail.
type Result struct {
	Code       int
	ScriptName string
	Message    string
	LogTail    string
}

// ErrorCodeName returns the LifecycleErrorCode enum name of a code.
func ErrorCodeName(code int) string {
	switch code {
	case Success:
		return "Success"
	case ScriptMissing:
		return "ScriptMissing"
	case ScriptNotExecutable:
		return "ScriptNotExecutable"
	case ScriptTimedOut:
		return "ScriptTimedOut"
	case ScriptFailed:
		return "ScriptFailed"
	}
	return "UnknownError"
}

// Run runs the event's scripts. An event without scripts is a noop that logs nothing.
func Run(ctx context.Context, r Request) Result {
	if len(r.Scripts) == 0 {
		return Result{Code: Success}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.KillGrace <= 0 {
		r.KillGrace = DefaultKillGrace
	}
	lg, err := openLogs(r.LogPath, r.DeploymentLog, r.DeploymentID)
	if err != nil {
		return Result{Code: UnknownError, Message: err.Error()}
	}
	lg.out = r.Output
	defer lg.close()
	lg.add("LifecycleEvent - " + r.Event + "\n")
	for _, sc := range r.Scripts {
		res := runScript(ctx, r, sc, lg)
		if res.Code != Success {
			res.ScriptName = sc.Location
			res.LogTail = lg.tailString()
			return res
		}
	}
	return Result{Code: Success}
}

func runScript(ctx context.Context, r Request, sc appspec.Script, lg *logs) Result {
	abs, err := bundle.Resolve(r.ArchiveDir, sc.Location)
	if out, ok := errors.AsType[*bundle.OutsideError](err); ok {
		// Cutover runs only scripts from the revision (README: agent
		// safety); from the bundle's point of view the script is missing.
		return Result{Code: ScriptMissing, Message: "Script at specified location: " + sc.Location +
			" was not run: " + out.Reason() + "; Cutover runs only scripts from the revision bundle"}
	}
	if err != nil {
		return Result{Code: UnknownError, Message: err.Error()}
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return Result{Code: ScriptMissing, Message: "Script does not exist at specified location: " + abs}
	}
	// access(2) answers "executable for us" the way Ruby's File.executable? does
	// (for root: any execute bit).
	if syscall.Access(abs, 1) != nil {
		r.Logger.WarnContext(ctx, "Script at specified location: "+sc.Location+" is not executable.  Trying to make it executable.")
		if err := os.Chmod(abs, fi.Mode().Perm()|0o111); err != nil || syscall.Access(abs, 1) != nil {
			return Result{Code: ScriptNotExecutable, Message: "Unable to set script at specified location: " + sc.Location + " as executable"}
		}
	}
	lg.add("Script - " + sc.Location + "\n")
	return execute(ctx, r, sc, abs, lg)
}

// command builds the official agent's command line (§8.3). Deviations, each because
// the official form cannot work or is unsafe here:
//   - su gets "-s /bin/sh" so that runas works for service accounts whose login
//     shell is nologin (the official agent fails there); the path is shell-quoted,
//     so a location with spaces works (it fails with ENOENT in the official agent).
//   - sudo is dropped when the agent already runs as root and sudo is not installed:
//     it would only switch root to root.
func command(sc appspec.Script, abs string) []string {
	var argv []string
	if sc.Sudo {
		if _, err := exec.LookPath("sudo"); err == nil || os.Geteuid() != 0 {
			argv = append(argv, "sudo")
		}
	}
	if sc.RunAs != "" {
		return append(argv, "su", "-s", "/bin/sh", sc.RunAs, "-c", shellQuote(abs))
	}
	return append(argv, abs)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func prefix(sc appspec.Script) string {
	p := "Script at specified location: " + sc.Location
	if sc.RunAs != "" {
		p += " run as user " + sc.RunAs
	}
	return p
}

func execute(ctx context.Context, r Request, sc appspec.Script, abs string, lg *logs) Result {
	argv := command(sc, abs)
	env := mergeEnv(os.Environ(), r.Env)
	cmd, outR, errR, err := start(argv, env)
	if errors.Is(err, syscall.ENOEXEC) && len(argv) == 1 {
		// No shebang: Ruby's spawn retries under /bin/sh, so such scripts work there.
		cmd, outR, errR, err = start([]string{"/bin/sh", abs}, env)
	}
	if err != nil {
		return Result{Code: ScriptFailed, Message: prefix(sc) + " failed with error " + rubyError(err)}
	}
	var wg sync.WaitGroup
	outDone := pump(&wg, outR, "[stdout]", lg)
	errDone := pump(&wg, errR, "[stderr]", lg)
	closePipes := func() { outR.Close(); errR.Close(); wg.Wait() }

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	deadline := time.NewTimer(sc.Timeout)
	defer deadline.Stop()

	// kill ends the process group (SIGTERM, then SIGKILL after the grace; the official
	// agent never sends SIGKILL and blocks forever on a script that ignores SIGTERM).
	kill := func() {
		pg := -cmd.Process.Pid
		_ = syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-waitErr:
		case <-time.After(r.KillGrace):
			_ = syscall.Kill(pg, syscall.SIGKILL)
			<-waitErr
		}
		drain := time.NewTimer(drainAfterKill)
		defer drain.Stop()
		for _, ch := range []<-chan struct{}{outDone, errDone} {
			select {
			case <-ch:
			case <-drain.C:
			}
		}
		closePipes()
	}
	cancelled := func() Result {
		kill()
		return Result{Code: UnknownError, Message: prefix(sc) + " was terminated because the agent is shutting down: " + context.Cause(ctx).Error()}
	}

	var exitErr error
	select {
	case exitErr = <-waitErr:
	case <-deadline.C:
		kill()
		return Result{Code: ScriptTimedOut, Message: "Script at specified location: " + sc.Location + " failed to complete in " + seconds(sc.Timeout) + " seconds"}
	case <-ctx.Done():
		return cancelled()
	}
	// The process has exited; the same deadline covers EOF on its output, which a
	// background child may keep open (ISSUE#119). That child is left running, as the
	// official agent does; only our ends of the pipes are closed.
	for _, s := range []struct {
		done <-chan struct{}
		name string
	}{{outDone, "STDOUT"}, {errDone, "STDERR"}} {
		select {
		case <-s.done:
		case <-deadline.C:
			closePipes()
			return Result{Code: OutputsLeftOpen, Message: "Script at specified location: " + sc.Location + " failed to close " + s.name}
		case <-ctx.Done():
			closePipes()
			return Result{Code: UnknownError, Message: prefix(sc) + " was stopped because the agent is shutting down: " + context.Cause(ctx).Error()}
		}
	}
	closePipes()
	if exitErr == nil {
		return Result{Code: Success}
	}
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) {
		code := ""
		if ee.ExitCode() >= 0 {
			code = strconv.Itoa(ee.ExitCode()) // killed by a signal: Ruby's exitstatus is nil
		}
		return Result{Code: ScriptFailed, Message: prefix(sc) + " failed with exit code " + code}
	}
	return Result{Code: ScriptFailed, Message: prefix(sc) + " failed with error " + rubyError(exitErr)}
}

// start spawns argv in a new process group with stdin on /dev/null and stdout and
// stderr on separate pipes whose read ends we own, so that cmd.Wait returns when the
// process exits, independently of who else still holds the write ends.
func start(argv, env []string) (*exec.Cmd, *os.File, *os.File, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, nil, err
	}
	var cmd *exec.Cmd
	// ETXTBSY: the script was written by this process (bundle unpacking)
	// and another goroutine's fork may briefly hold an inherited write
	// descriptor to it. That clears as soon as that child execs, so retry
	// a few times rather than fail the event.
	for try := 0; ; try++ {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = outW, errW
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		err = cmd.Start()
		if !errors.Is(err, syscall.ETXTBSY) || try == 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, nil, nil, err
	}
	return cmd, outR, errR, nil
}

func pump(wg *sync.WaitGroup, r io.Reader, tag string, lg *logs) <-chan struct{} {
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				lg.add(tag + line)
			}
			if err != nil {
				return
			}
		}
	}()
	return done
}

// mergeEnv overlays extra on base; the last entry for a key wins, and an extra entry
// without "=" deletes the key.
func mergeEnv(base, extra []string) []string {
	del := map[string]bool{}
	for _, e := range extra {
		if !strings.Contains(e, "=") {
			del[e] = true
		} else {
			k, _, _ := strings.Cut(e, "=")
			del[k] = false
		}
	}
	var out []string
	for _, e := range append(append([]string{}, base...), extra...) {
		k, _, ok := strings.Cut(e, "=")
		if ok && !del[k] {
			out = append(out, e)
		}
	}
	// exec.Cmd keeps the last value of a duplicated key.
	return out
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// rubyError renders a spawn error the way the official message shows a Ruby
// exception: "<Class> with message <msg>" (for example Errno::ENOENT).
func rubyError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			msg += " - " + pe.Path
		}
		return "Errno::" + errnoName(errno) + " with message " + msg
	}
	return "StandardError with message " + err.Error()
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EACCES:
		return "EACCES"
	case syscall.ENOEXEC:
		return "ENOEXEC"
	case syscall.EPERM:
		return "EPERM"
	case syscall.E2BIG:
		return "E2BIG"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.ETXTBSY:
		return "ETXTBSY"
	}
	return "E" + strconv.Itoa(int(e))
}

// logs writes the event's messages to scripts.log and the deployments log and keeps
// the in-memory tail sent with a failure.
type logs struct {
	mu     sync.Mutex
	script *os.File
	deploy *os.File
	did    string
	tail   []string
	out    io.Writer
}

func openLogs(scriptPath, deployPath, did string) (*logs, error) {
	l := &logs{did: did}
	open := func(p string) (*os.File, error) {
		if p == "" {
			return nil, nil
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		return os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	var err error
	if l.script, err = open(scriptPath); err != nil {
		return nil, fmt.Errorf("hook: open script log: %w", err)
	}
	if l.deploy, err = open(deployPath); err != nil {
		l.close()
		return nil, fmt.Errorf("hook: open deployments log: %w", err)
	}
	return l, nil
}

func (l *logs) close() {
	if l.script != nil {
		l.script.Close()
	}
	if l.deploy != nil {
		l.deploy.Close()
	}
}

// add records one message (which normally ends in "\n"). Write errors are ignored:
// a full disk must not turn a passing script into a failure.
func (l *logs) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendTail(msg)
	line := msg
	if !strings.HasSuffix(line, "\n") {
		// The last line of output without a newline; the tail keeps it as it is,
		// the files get a well-formed line.
		line += "\n"
	}
	if l.out != nil {
		_, _ = io.WriteString(l.out, line)
	}
	now := time.Now()
	if l.script != nil {
		_, _ = l.script.WriteString(now.Format("2006-01-02 15:04:05") + " " + line)
	}
	if l.deploy != nil {
		_, _ = l.deploy.WriteString("[" + now.Format("2006-01-02 15:04:05.000") + "] [" + l.did + "]" + line)
	}
}

// appendTail is the official ScriptLog#append_to_log, off-by-one included: it keeps
// whole entries whose total stays under 2048 characters, trimming a little early,
// and one entry of 2048 characters or more empties the list.
func (l *logs) appendTail(msg string) {
	l.tail = append(l.tail, msg)
	n := func(i int) int {
		if i < 0 { // Ruby's @log[-1] is the last element
			i += len(l.tail)
		}
		return utf8.RuneCountInString(l.tail[i])
	}
	index, remaining := len(l.tail), 2048
	for index > 0 && remaining-n(index-1) > 0 {
		index--
		remaining -= n(index - 1)
	}
	if index > 0 {
		l.tail = append([]string(nil), l.tail[index:]...)
	}
}

func (l *logs) tailString() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "")
}
