package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cutoverhq/cutover/internal/agent/deployspec"
	"github.com/cutoverhq/cutover/internal/agent/fetch"
	"github.com/cutoverhq/cutover/internal/agent/layout"
	"github.com/cutoverhq/cutover/internal/appspec"
	"github.com/cutoverhq/cutover/internal/bundle"
	"github.com/cutoverhq/cutover/internal/hook"
	"github.com/cutoverhq/cutover/internal/install"
)

// Command names the agent executes itself.
const (
	cmdDownloadBundle = "DownloadBundle"
	cmdInstall        = "Install"
)

// hookEvents are the commands that map 1:1 to appspec hooks (§2).
var hookEvents = []string{
	"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall", "AfterInstall",
	"ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic",
}

func isHookEvent(name string) bool { return slices.Contains(hookEvents, name) }

// plan is what must be known before the ack: whether the command is a noop
// and, for hooks, which revision's appspec and scripts run.
type plan struct {
	hcid       string // the host command; hook output is streamed under it
	noop       bool
	archiveDir string // hooks: the archive whose scripts run
	scripts    []appspec.Script
}

func (a *agent) plan(spec *deployspec.Spec, name string) (plan, error) {
	switch {
	case name == cmdDownloadBundle || name == cmdInstall:
		return plan{}, nil
	case !isHookEvent(name):
		// BlockTraffic, AllowTraffic and anything unknown: acked as a noop,
		// then failed as unsupported, like the official agent.
		return plan{noop: true}, nil
	}
	dir, ok, err := a.hookArchive(spec, name)
	if err != nil {
		return plan{}, err
	}
	if !ok {
		// No revision to take scripts from (first deployment): a noop.
		return plan{noop: true}, nil
	}
	// v2 behaviour: the hook lookup falls back to appspec.yaml/appspec.yml
	// like Install does, so a bundle Install accepted cannot then fail at
	// BeforeInstall for want of the exact AppSpecFilename.
	as, _, err := appspec.Load(dir, spec.AppSpecFilename, true)
	if err != nil {
		return plan{}, fmt.Errorf("%s: %w", name, err)
	}
	scripts := as.Hooks[name]
	return plan{noop: len(scripts) == 0, archiveDir: dir, scripts: scripts}, nil
}

// hookArchive picks the revision whose scripts a hook event runs (§8.2).
// ok is false when the event names a previous revision that does not exist.
func (a *agent) hookArchive(spec *deployspec.Spec, event string) (dir string, ok bool, err error) {
	current := a.layout.ArchiveDir(spec.DeploymentGroupID, spec.DeploymentID)
	// Once this deployment has its own archive, every event uses it.
	if _, err := os.Stat(current); err == nil {
		return current, true, nil
	}
	rollback := spec.IsBlueGreenRollback()
	var ptr layout.Pointer
	switch event {
	case "BeforeBlockTraffic", "AfterBlockTraffic":
		ptr = layout.LastSuccessful
		if rollback {
			ptr = layout.MostRecent
		}
	case "ApplicationStop":
		ptr = layout.LastSuccessful
	case "BeforeAllowTraffic", "AfterAllowTraffic":
		if !rollback {
			return current, true, nil
		}
		ptr = layout.LastSuccessful
	default:
		return current, true, nil
	}
	depDir, err := a.layout.ReadPointer(spec.DeploymentGroupID, ptr)
	if err != nil || depDir == "" {
		return "", false, err
	}
	return filepath.Join(depDir, layout.ArchiveDirName), true, nil
}

// execute runs an acknowledged command and returns its outcome.
func (a *agent) execute(ctx context.Context, log *slog.Logger, spec *deployspec.Spec, name string, p plan) result {
	// The official agent creates the deployment directory for every
	// command, hooks included.
	if err := os.MkdirAll(a.layout.DeploymentDir(spec.DeploymentGroupID, spec.DeploymentID), 0o755); err != nil {
		return failure(fmt.Errorf("create deployment directory: %w", err))
	}
	switch {
	case name == cmdDownloadBundle:
		if err := a.downloadBundle(ctx, log, spec); err != nil {
			return failure(err)
		}
		return result{}
	case name == cmdInstall:
		if err := a.install(ctx, log, spec); err != nil {
			return failure(err)
		}
		return result{}
	case isHookEvent(name):
		return a.runHook(ctx, log, spec, name, p)
	default:
		return result{Code: codeUnknownError, Message: fmt.Sprintf("Unsupported command type: %s.", name)}
	}
}

// downloadBundle implements DownloadBundle (§6.2).
func (a *agent) downloadBundle(ctx context.Context, log *slog.Logger, spec *deployspec.Spec) error {
	dgid, did := spec.DeploymentGroupID, spec.DeploymentID
	removed, err := a.layout.CleanupOldRevisions(dgid, did, a.cfg.MaxRevisions)
	if err != nil {
		return err
	}
	if len(removed) > 0 {
		log.InfoContext(ctx, "removed old revisions", "paths", removed)
	}
	archive := a.layout.ArchiveDir(dgid, did)
	bundlePath := a.layout.BundlePath(dgid, did)
	if err := os.RemoveAll(archive); err != nil {
		return fmt.Errorf("remove old deployment archive: %w", err)
	}
	rev := spec.Revision
	var bundleType string
	switch rev.Type {
	case deployspec.RevisionS3:
		res, err := fetch.S3(ctx, a.s3, fetch.S3Object{Bucket: rev.S3.Bucket, Key: rev.S3.Key, Version: rev.S3.Version, ETag: rev.S3.ETag}, bundlePath)
		if err != nil {
			return err
		}
		log.InfoContext(ctx, "downloaded bundle from S3", "bucket", rev.S3.Bucket, "key", rev.S3.Key, "etag", res.ETag, "version", res.Version)
		bundleType = rev.S3.BundleType
	case deployspec.RevisionGitHub:
		gh := a.github
		gh.Token = spec.GitHubAccessToken
		g := rev.GitHub
		if err := fetch.GitHub(ctx, gh, fetch.GitHubArchive{Account: g.Account, Repository: g.Repository, CommitID: g.CommitID, BundleType: g.BundleType}, bundlePath); err != nil {
			return err
		}
		log.InfoContext(ctx, "downloaded bundle from GitHub", "repository", g.Account+"/"+g.Repository, "commit", g.CommitID)
		bundleType = g.BundleType
	case deployspec.RevisionString, deployspec.RevisionAppSpecContent:
		// The whole revision is the appspec; there is nothing to unpack.
		if err := os.MkdirAll(archive, 0o755); err != nil {
			return fmt.Errorf("create deployment archive: %w", err)
		}
		if err := fetch.Inline(rev.Content.Content, rev.Content.Sha256, archive, spec.AppSpecFilename); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unsupported RevisionType %q", rev.Type)
	}
	if bundleType != "" {
		if err := bundle.Unpack(ctx, bundlePath, bundleType, archive, a.cfg.BundleLimits); err != nil {
			return fmt.Errorf("unpack bundle: %w", err)
		}
	}
	return a.layout.WritePointer(dgid, layout.MostRecent, did)
}

// install implements Install (§7).
func (a *agent) install(ctx context.Context, log *slog.Logger, spec *deployspec.Spec) error {
	archive := a.layout.ArchiveDir(spec.DeploymentGroupID, spec.DeploymentID)
	as, _, err := appspec.Load(archive, spec.AppSpecFilename, true)
	if err != nil {
		return err
	}
	// install applies the precedence: appspec key, then this override,
	// then DISALLOW.
	if err := install.Install(ctx, install.Request{
		ArchiveDir:         archive,
		Spec:               as,
		InstructionsDir:    a.layout.InstructionsDir(),
		DeploymentGroupID:  spec.DeploymentGroupID,
		FileExistsBehavior: spec.FileExistsBehavior,
		Logger:             log,
	}); err != nil {
		return err
	}
	// "Last successful" means the last revision whose Install succeeded.
	return a.layout.WritePointer(spec.DeploymentGroupID, layout.LastSuccessful, spec.DeploymentID)
}

// runHook runs one lifecycle event's scripts (§8).
func (a *agent) runHook(ctx context.Context, log *slog.Logger, spec *deployspec.Spec, event string, p plan) result {
	if len(p.scripts) == 0 {
		return result{}
	}
	logPath := a.layout.ScriptLog(spec.DeploymentGroupID, spec.DeploymentID)
	for _, dir := range []string{filepath.Dir(logPath), filepath.Dir(a.layout.DeploymentLog())} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return failure(fmt.Errorf("create log directory: %w", err))
		}
	}
	var out io.Writer
	if !a.cfg.NoHookLogStream {
		s := a.streamHookLog(p.hcid, event)
		defer s.Close()
		out = s
	}
	r := hook.Run(ctx, hook.Request{
		Event:         event,
		Scripts:       p.scripts,
		ArchiveDir:    p.archiveDir,
		Env:           a.hookEnv(spec, event),
		LogPath:       logPath,
		DeploymentLog: a.layout.DeploymentLog(),
		DeploymentID:  spec.DeploymentID,
		Logger:        log,
		Output:        out,
	})
	return result{Code: r.Code, ScriptName: r.ScriptName, Message: r.Message, Log: r.LogTail}
}

// hookEnv lists the changes hook.Run applies to the agent's environment:
// the variables of §8.4, and removals (entries without "=") for those that
// do not apply to this revision, so that a stale BUNDLE_ETAG in the agent's
// own environment never leaks into a hook. With Config.Environ set, the
// agent's environment is replaced by it.
func (a *agent) hookEnv(spec *deployspec.Spec, event string) []string {
	vars := map[string]string{
		"LIFECYCLE_EVENT":       event,
		"DEPLOYMENT_ID":         spec.DeploymentID,
		"APPLICATION_NAME":      spec.ApplicationName,
		"DEPLOYMENT_GROUP_NAME": spec.DeploymentGroupName,
		"DEPLOYMENT_GROUP_ID":   spec.DeploymentGroupID,
		"BUNDLE_BUCKET":         "",
		"BUNDLE_KEY":            "",
		"BUNDLE_VERSION":        "",
		"BUNDLE_ETAG":           "",
		"BUNDLE_COMMIT":         "",
	}
	switch r := spec.Revision; r.Type {
	case deployspec.RevisionS3:
		vars["BUNDLE_BUCKET"], vars["BUNDLE_KEY"] = r.S3.Bucket, r.S3.Key
		vars["BUNDLE_VERSION"], vars["BUNDLE_ETAG"] = r.S3.Version, r.S3.ETag
	case deployspec.RevisionGitHub:
		vars["BUNDLE_COMMIT"] = r.GitHub.CommitID
	}
	var env []string
	if a.cfg.Environ != nil {
		keep := map[string]bool{}
		for _, kv := range a.cfg.Environ {
			k, _, _ := strings.Cut(kv, "=")
			keep[k] = true
		}
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); !keep[k] {
				env = append(env, k)
			}
		}
		env = append(env, a.cfg.Environ...)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if v := vars[k]; v != "" {
			env = append(env, k+"="+v)
		} else {
			env = append(env, k)
		}
	}
	return env
}
