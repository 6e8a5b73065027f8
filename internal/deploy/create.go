package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/engine"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// Creators (DeploymentCreator).
const (
	creatorUser     = "user"
	creatorRollback = "codeDeployRollback"
)

var deploymentIDRE = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)

func newDeploymentID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "d-" + string(b)
}

func caller(ctx context.Context) (account, region string) {
	c, _ := awsjson.CallerFrom(ctx)
	account, region = c.Account, c.Region
	if account == "" {
		account = "000000000000"
	}
	if region == "" {
		region = "us-east-1"
	}
	return account, region
}

// CreateDeployment validates the request, picks the target instances and
// commits the deployment; its loop starts it right after.
func (r *Runner) CreateDeployment(ctx context.Context, in *cd.CreateDeploymentInput) (*cd.CreateDeploymentOutput, error) {
	appName, groupName, err := api.AppAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	if in.Revision == nil {
		return nil, awsjson.Errorf("RevisionRequiredException", "The revision must be specified.")
	}
	if err := checkRevision(in.Revision); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(deref(in.Description)) > 256 {
		return nil, awsjson.Errorf("DescriptionTooLongException", "The description is too long: at most 256 characters.")
	}
	if in.DeploymentConfigName != nil {
		if _, err := api.CheckName(in.DeploymentConfigName, "InvalidDeploymentConfigNameException", "InvalidDeploymentConfigNameException", "deployment configuration name"); err != nil {
			return nil, err
		}
	}
	if err := checkAutoRollback(in.AutoRollbackConfiguration); err != nil {
		return nil, err
	}
	if err := checkAlarms(in.OverrideAlarmConfiguration); err != nil {
		return nil, err
	}
	if d := r.cfg.Destinations; d != nil {
		if err := d.CheckAlarms(in.OverrideAlarmConfiguration); err != nil {
			return nil, err
		}
	}
	account, region := caller(ctx)
	now := r.now()
	id := newDeploymentID()
	var rec *Record
	unrun := false
	err = r.cfg.Store.Update(ctx, func(tx store.Tx) error {
		app, err := api.LoadApp(ctx, tx, account, region, appName)
		if err != nil {
			return err
		}
		if p := deref(app.ComputePlatform); p != cd.ComputePlatformServer {
			if p == cd.ComputePlatformLambda && in.UpdateOutdatedInstancesOnly != nil && *in.UpdateOutdatedInstancesOnly {
				return awsjson.Errorf("InvalidUpdateOutdatedInstancesOnlyValueException", "updateOutdatedInstancesOnly must be false for Lambda deployments.")
			}
			if p == cd.ComputePlatformLambda && in.IgnoreApplicationStopFailures != nil && *in.IgnoreApplicationStopFailures {
				return awsjson.Errorf("InvalidIgnoreApplicationStopFailuresValueException", "ignoreApplicationStopFailures must be false for Lambda deployments.")
			}
		} else if s3 := in.Revision.S3Location; s3 != nil && (deref(s3.BundleType) == cd.BundleTypeJSON || deref(s3.BundleType) == cd.BundleTypeYAML) {
			return awsjson.Errorf("InvalidRevisionException", "Bundle type %s is for Lambda and ECS revisions, not servers.", deref(s3.BundleType))
		}
		g, err := api.LoadGroup(ctx, tx, account, region, appName, groupName)
		if err != nil {
			return err
		}
		rec = &Record{
			ID: id, Account: account, Region: region,
			ApplicationName: appName, GroupName: groupName, GroupID: deref(g.DeploymentGroupId),
			ComputePlatform: deref(app.ComputePlatform), Creator: creatorUser,
			Revision: *in.Revision, PreviousRevision: g.TargetRevision,
			Description: deref(in.Description), FileExistsBehavior: deref(in.FileExistsBehavior),
			IgnoreApplicationStopFailures: in.IgnoreApplicationStopFailures != nil && *in.IgnoreApplicationStopFailures,
			UpdateOutdatedInstancesOnly:   in.UpdateOutdatedInstancesOnly != nil && *in.UpdateOutdatedInstancesOnly,
			AutoRollback:                  g.AutoRollbackConfiguration,
			OverrideAlarm:                 in.OverrideAlarmConfiguration,
			TargetInstances:               in.TargetInstances,
			BlueGreen:                     g.BlueGreenDeploymentConfiguration,
			LoadBalancerInfo:              g.LoadBalancerInfo,
			GitHubAccountName:             deref(app.GitHubAccountName),
		}
		if rec.FileExistsBehavior == "" {
			rec.FileExistsBehavior = cd.FileExistsBehaviorDISALLOW
		}
		if in.AutoRollbackConfiguration != nil {
			rec.AutoRollback = in.AutoRollbackConfiguration
		}
		if g.DeploymentStyle != nil {
			rec.DeploymentStyle = *g.DeploymentStyle
		}
		if rec.DeploymentStyle.DeploymentType == nil {
			rec.DeploymentStyle.DeploymentType = new(cd.DeploymentTypeINPLACE)
		}
		if rec.DeploymentStyle.DeploymentOption == nil {
			rec.DeploymentStyle.DeploymentOption = new(cd.DeploymentOptionWITHOUTTRAFFICCONTROL)
		}
		blueGreen := *rec.DeploymentStyle.DeploymentType == cd.DeploymentTypeBLUEGREEN
		if in.TargetInstances != nil && !blueGreen {
			return awsjson.Errorf("InvalidTargetInstancesException", "targetInstances can be given only for blue/green deployments.")
		}
		cfgName := deref(in.DeploymentConfigName)
		if cfgName == "" {
			cfgName = deref(g.DeploymentConfigName)
		}
		if cfgName == "" {
			cfgName = "CodeDeployDefault.OneAtATime"
		}
		conf, err := api.LoadConfig(ctx, tx, account, region, cfgName)
		if err != nil {
			return err
		}
		if deref(conf.ComputePlatform) != rec.ComputePlatform {
			return awsjson.Errorf("InvalidDeploymentConfigNameException", "Deployment configuration %s is for the %s compute platform, not %s.", cfgName, deref(conf.ComputePlatform), rec.ComputePlatform)
		}
		rec.ConfigName = cfgName
		if rec.ComputePlatform != cd.ComputePlatformServer {
			// Recorded, and failed before anything runs: see notRun.
			rec.Engine = notRun(id, rec.ComputePlatform, now)
			unrun = true
			if err := api.TouchRevision(ctx, tx, account, region, appName, in.Revision, now, groupName); err != nil {
				return err
			}
			if err := insert(ctx, tx, rec); err != nil {
				return err
			}
			_, err := r.exec.finish(ctx, tx, rec)
			return err
		}
		if b, err := tx.Get(ctx, kindGroupLock, rec.GroupID); err == nil {
			return awsjson.Errorf("DeploymentLimitExceededException", "The Deployment Group '%s' already has an active Deployment '%s'", groupName, string(b))
		} else if !isNotFound(err) {
			return err
		}
		if rec.GitHubAccountName == "" && in.Revision.GitHubLocation != nil && deref(in.Revision.RevisionType) == cd.RevisionLocationTypeGitHub {
			// Anonymous download; a private repository fails on the host.
		}
		e := engine.Deployment{ID: id, MinHealthy: minHealthy(conf), IgnoreApplicationStopFailures: rec.IgnoreApplicationStopFailures,
			TrafficControl: deref(rec.DeploymentStyle.DeploymentOption) == cd.DeploymentOptionWITHTRAFFICCONTROL && rec.LoadBalancerInfo != nil}
		setRollbackFlags(&e, rec.AutoRollback)
		var blue, green []engine.Instance
		if blueGreen {
			e.Kind = engine.KindBlueGreen
			e.TrafficControl = true
			bg := rec.BlueGreen
			if bg == nil {
				bg = &cd.BlueGreenDeploymentConfiguration{}
			}
			if o := bg.DeploymentReadyOption; o != nil {
				e.ReadyAction = deref(o.ActionOnTimeout)
				if o.WaitTimeInMinutes != nil {
					e.ReadyWaitMinutes = int(*o.WaitTimeInMinutes)
				}
			}
			if e.ReadyAction == "" {
				e.ReadyAction = cd.DeploymentReadyActionCONTINUEDEPLOYMENT
			}
			e.TerminateAction = cd.InstanceActionKEEPALIVE
			if t := bg.TerminateBlueInstancesOnDeploymentSuccess; t != nil {
				if deref(t.Action) != "" {
					e.TerminateAction = deref(t.Action)
				}
				if t.TerminationWaitTimeInMinutes != nil {
					e.TerminationWaitMinutes = int(*t.TerminationWaitTimeInMinutes)
				}
			}
			e.Shift = shiftOf(conf.TrafficRoutingConfig)
			if in.TargetInstances == nil || (len(in.TargetInstances.TagFilters) == 0 && in.TargetInstances.Ec2TagSet == nil) {
				return awsjson.Errorf("InvalidTargetInstancesException", "A blue/green deployment needs targetInstances naming the replacement instances by tag filters or tag set (green fleet provisioning DISCOVER_EXISTING).")
			}
			if len(in.TargetInstances.AutoScalingGroups) > 0 {
				return awsjson.Errorf("InvalidTargetInstancesException", "Auto Scaling groups do not exist on self-hosted servers: name the replacement instances by tags.")
			}
			greenInfo, err := matchTargetInstances(ctx, tx, account, region, in.TargetInstances)
			if err != nil {
				return err
			}
			if len(greenInfo) == 0 {
				return awsjson.Errorf("InvalidTargetInstancesException", "No registered on-premises instance matches the targetInstances tags.")
			}
			blueInfo, err := groupFleet(ctx, tx, account, region, g, fleetKeyOf(account, region, deref(g.DeploymentGroupId)))
			if err != nil {
				return err
			}
			for _, i := range greenInfo {
				green = append(green, instanceOf(i))
			}
			for _, i := range blueInfo {
				if !slices.ContainsFunc(green, func(x engine.Instance) bool { return x.Name == deref(i.InstanceName) }) {
					blue = append(blue, instanceOf(i))
				}
			}
		} else {
			infos, err := groupFleet(ctx, tx, account, region, g, fleetKeyOf(account, region, deref(g.DeploymentGroupId)))
			if err != nil {
				return err
			}
			// Instances whose revision is unknown go first, then those on an
			// older revision, then those already on this one (§3.3).
			current := api.RevisionKey(in.Revision)
			rank := map[string]int{}
			for _, i := range infos {
				b, err := tx.Get(ctx, kindInstRev, api.ScopeKey(account, region)+rec.GroupID+"/"+deref(i.InstanceName))
				switch {
				case isNotFound(err):
					rank[deref(i.InstanceName)] = 0
				case err != nil:
					return err
				case string(b) != current:
					rank[deref(i.InstanceName)] = 1
				case rec.UpdateOutdatedInstancesOnly:
					continue // already on this revision
				default:
					rank[deref(i.InstanceName)] = 2
				}
				green = append(green, instanceOf(i))
			}
			slices.SortStableFunc(green, func(a, b engine.Instance) int { return rank[a.Name] - rank[b.Name] })
		}
		rec.Engine = engine.NewDeployment(e, blue, green, now)
		if err := api.TouchRevision(ctx, tx, account, region, appName, in.Revision, now, groupName); err != nil {
			return err
		}
		return insert(ctx, tx, rec)
	})
	if err != nil {
		return nil, err
	}
	if !unrun {
		r.exec.startLive(rec)
	}
	return &cd.CreateDeploymentOutput{DeploymentId: &id}, nil
}

// notRun is the engine state of a Lambda or ECS deployment: this server
// deploys only to instances running its agent, so such a deployment fails
// as it is created, with the error code of the model's ErrorCode enum
// nearest to "this platform's target cannot be deployed to". Creating it,
// rather than refusing the request, lets pipelines written for AWS or its
// emulators create their groups and deployments and read an honest
// outcome (README: Lambda and ECS).
func notRun(id, platform string, now time.Time) *engine.Deployment {
	e := engine.NewDeployment(engine.Deployment{ID: id, Kind: engine.KindBlueGreen, TrafficControl: true}, nil, nil, now)
	code := "INVALID_LAMBDA_CONFIGURATION"
	if platform == cd.ComputePlatformECS {
		code = "INVALID_ECS_SERVICE"
	}
	e.Status, e.Started, e.Completed = engine.StatusFailed, now, now
	e.ErrorCode = code
	e.ErrorMessage = fmt.Sprintf("This server deploys only to the %s compute platform (on-premises instances running its agent); it does not run %s deployments. The deployment was recorded and nothing was changed.", cd.ComputePlatformServer, platform)
	return e
}

// insert writes a new deployment with its indexes and group lock.
func insert(ctx context.Context, tx store.Tx, rec *Record) error {
	if _, err := tx.Get(ctx, kindDeployment, rec.ID); err == nil {
		return fmt.Errorf("deployment %s: %w", rec.ID, store.ErrExists)
	} else if !isNotFound(err) {
		return err
	}
	if err := saveRecord(ctx, tx, rec, func(*engine.Instance) bool { return true }); err != nil {
		return err
	}
	if err := tx.Put(ctx, kindGroupLock, rec.GroupID, []byte(rec.ID)); err != nil {
		return err
	}
	if err := api.MarkActive(ctx, tx, rec.Account, rec.Region, rec.ID, rec.ConfigName); err != nil {
		return err
	}
	return tx.Put(ctx, kindDepIndex, api.ScopeKey(rec.Account, rec.Region)+rec.ID, []byte(rec.ApplicationName+"/"+rec.GroupName))
}

func fleetKeyOf(account, region, groupID string) string {
	return api.ScopeKey(account, region) + groupID
}

func instanceOf(i cd.InstanceInfo) engine.Instance {
	host := deref(i.IamUserArn)
	if host == "" {
		host = deref(i.IamSessionArn)
	}
	return engine.Instance{Name: deref(i.InstanceName), HostID: host}
}

// groupFleet returns a group's instances: its explicit fleet after a
// blue/green deployment, else the registered instances its on-premises tag
// filters or tag set select, minus retired ones.
func groupFleet(ctx context.Context, tx store.Tx, account, region string, g *cd.DeploymentGroupInfo, fleetKey string) ([]cd.InstanceInfo, error) {
	f, err := LoadFleet(ctx, tx, fleetKey)
	if err != nil {
		return nil, err
	}
	var out []cd.InstanceInfo
	if len(f.Members) > 0 {
		for _, n := range f.Members {
			inst, err := api.LoadInstance(ctx, tx, account, region, n)
			if err != nil {
				continue
			}
			if inst.DeregisterTime == nil {
				out = append(out, *inst)
			}
		}
		return out, nil
	}
	if len(g.OnPremisesInstanceTagFilters) == 0 && g.OnPremisesTagSet == nil {
		return nil, nil
	}
	all, err := api.MatchInstances(ctx, tx, account, region, g.OnPremisesInstanceTagFilters, g.OnPremisesTagSet)
	if err != nil {
		return nil, err
	}
	for _, i := range all {
		if !slices.Contains(f.Retired, deref(i.InstanceName)) {
			out = append(out, i)
		}
	}
	return out, nil
}

// matchTargetInstances selects the replacement fleet of a blue/green
// deployment: on-premises instances matching the EC2-shaped tag filters.
func matchTargetInstances(ctx context.Context, tx store.Tx, account, region string, t *cd.TargetInstances) ([]cd.InstanceInfo, error) {
	if len(t.TagFilters) > 10 {
		return nil, awsjson.Errorf("InvalidTargetInstancesException", "At most 10 tag filters are allowed in targetInstances.")
	}
	var filters []cd.TagFilter
	for _, f := range t.TagFilters {
		filters = append(filters, cd.TagFilter(f))
	}
	var set *cd.OnPremisesTagSet
	if t.Ec2TagSet != nil {
		if len(filters) > 0 {
			return nil, awsjson.Errorf("InvalidTargetInstancesException", "Give either tagFilters or ec2TagSet in targetInstances, not both.")
		}
		set = &cd.OnPremisesTagSet{}
		for _, grp := range t.Ec2TagSet.Ec2TagSetList {
			var g []cd.TagFilter
			for _, f := range grp {
				g = append(g, cd.TagFilter(f))
			}
			set.OnPremisesTagSetList = append(set.OnPremisesTagSetList, g)
		}
	}
	for _, f := range filters {
		if utf8.RuneCountInString(deref(f.Key)) > 128 || utf8.RuneCountInString(deref(f.Value)) > 256 {
			return nil, awsjson.Errorf("InvalidTargetInstancesException", "A targetInstances tag is too long.")
		}
	}
	return api.MatchInstances(ctx, tx, account, region, filters, set)
}

func minHealthy(c *cd.DeploymentConfigInfo) engine.MinHealthy {
	if c.MinimumHealthyHosts == nil {
		return engine.MinHealthy{Type: engine.FleetPercent, Value: 0}
	}
	v := 0
	if c.MinimumHealthyHosts.Value != nil {
		v = int(*c.MinimumHealthyHosts.Value)
	}
	return engine.MinHealthy{Type: deref(c.MinimumHealthyHosts.Type), Value: v}
}

func setRollbackFlags(e *engine.Deployment, arc *cd.AutoRollbackConfiguration) {
	if arc == nil || arc.Enabled == nil || !*arc.Enabled {
		return
	}
	for _, ev := range arc.Events {
		switch ev {
		case cd.AutoRollbackEventDEPLOYMENTFAILURE:
			e.RollbackOnFailure = true
		case cd.AutoRollbackEventDEPLOYMENTSTOPONREQUEST:
			e.RollbackOnStop = true
		}
	}
}

func checkAutoRollback(a *cd.AutoRollbackConfiguration) error {
	if a == nil || a.Enabled == nil || !*a.Enabled {
		return nil
	}
	if len(a.Events) == 0 {
		return awsjson.Errorf("InvalidAutoRollbackConfigException", "An enabled automatic rollback configuration needs at least one event.")
	}
	return nil
}

func checkAlarms(a *cd.AlarmConfiguration) error {
	if a == nil {
		return nil
	}
	if len(a.Alarms) > 10 {
		return awsjson.Errorf("AlarmsLimitExceededException", "At most 10 alarms can be given.")
	}
	seen := map[string]bool{}
	for _, al := range a.Alarms {
		n := deref(al.Name)
		if n == "" || utf8.RuneCountInString(n) > 255 || seen[n] {
			return awsjson.Errorf("InvalidAlarmConfigException", "Alarm names must be 1-255 characters and unique.")
		}
		seen[n] = true
	}
	if a.Enabled != nil && *a.Enabled && len(a.Alarms) == 0 {
		return awsjson.Errorf("InvalidAlarmConfigException", "An enabled alarm configuration needs at least one alarm.")
	}
	return nil
}

var commitRE = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// checkRevision validates a revision location for a deployment.
func checkRevision(rev *cd.RevisionLocation) error {
	bad := func(format string, args ...any) error {
		return awsjson.Errorf("InvalidRevisionException", format, args...)
	}
	switch deref(rev.RevisionType) {
	case cd.RevisionLocationTypeS3:
		s := rev.S3Location
		if s == nil || deref(s.Bucket) == "" || deref(s.Key) == "" {
			return bad("An S3 revision needs s3Location with bucket and key.")
		}
		switch deref(s.BundleType) {
		case cd.BundleTypeTar, cd.BundleTypeTgz, cd.BundleTypeZip:
		case cd.BundleTypeJSON, cd.BundleTypeYAML:
			// An AppSpec file for Lambda or ECS; refused for servers once
			// the application's platform is known.
		case "":
			return bad("An S3 revision for servers needs bundleType tar, tgz or zip.")
		default:
			return bad("The bundle type %q is not valid.", deref(s.BundleType))
		}
	case cd.RevisionLocationTypeGitHub:
		g := rev.GitHubLocation
		if g == nil || !regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`).MatchString(deref(g.Repository)) || !commitRE.MatchString(deref(g.CommitId)) {
			return bad("A GitHub revision needs gitHubLocation with repository (owner/name) and a 40-hex commitId.")
		}
	case cd.RevisionLocationTypeString:
		//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
		s := rev.String
		if s == nil || deref(s.Content) == "" {
			return bad("A String revision needs string.content.")
		}
	case cd.RevisionLocationTypeAppSpecContent:
		s := rev.AppSpecContent
		if s == nil || deref(s.Content) == "" {
			return bad("An AppSpecContent revision needs appSpecContent.content.")
		}
	default:
		return bad("The revision type %q is not valid.", deref(rev.RevisionType))
	}
	return nil
}

// createRollback builds the rollback deployment of rec. For in-place it
// redeploys the group's last successful revision to the group's fleet; for
// blue/green it routes traffic back to the original instances. With no
// previous revision there is nothing to roll back to.
func (r *executor) createRollback(ctx context.Context, tx store.Tx, rec *Record, g *cd.DeploymentGroupInfo) (*Record, error) {
	e := rec.Engine
	now := r.now()
	if rec.Creator == creatorRollback {
		rec.RollbackInfo = &cd.RollbackInfo{RollbackMessage: new("Rollback deployments are not rolled back again.")}
		return nil, nil
	}
	id := newDeploymentID()
	rb := &Record{
		ID: id, Account: rec.Account, Region: rec.Region, ApplicationName: rec.ApplicationName, GroupName: rec.GroupName, GroupID: rec.GroupID,
		ComputePlatform: rec.ComputePlatform, Creator: creatorRollback, ConfigName: rec.ConfigName,
		FileExistsBehavior: rec.FileExistsBehavior, DeploymentStyle: rec.DeploymentStyle, BlueGreen: rec.BlueGreen,
		LoadBalancerInfo: rec.LoadBalancerInfo, GitHubAccountName: rec.GitHubAccountName,
		IgnoreApplicationStopFailures: rec.IgnoreApplicationStopFailures,
		RollbackInfo:                  &cd.RollbackInfo{RollbackTriggeringDeploymentId: &rec.ID},
	}
	base := engine.Deployment{ID: id, MinHealthy: e.MinHealthy, IgnoreApplicationStopFailures: e.IgnoreApplicationStopFailures, TrafficControl: e.TrafficControl}
	if e.Kind.IsBlueGreen() {
		var blue, green []engine.Instance
		for _, in := range e.Instances {
			inst := engine.Instance{Name: in.Name, HostID: in.HostID}
			if in.Label == engine.Blue {
				if in.Retired {
					continue // already gone from the fleet: nothing to route back to
				}
				blue = append(blue, inst)
			} else if in.Status != engine.Skipped {
				green = append(green, inst)
			}
		}
		if len(blue) == 0 {
			rec.RollbackInfo = &cd.RollbackInfo{RollbackMessage: new("The deployment could not be rolled back: the original instances are no longer available.")}
			return nil, nil
		}
		base.Kind = engine.KindReroute
		base.MinHealthy = engine.MinHealthy{Type: engine.FleetPercent}
		rb.Revision = rec.Revision
		if rec.PreviousRevision != nil {
			rb.Revision = *rec.PreviousRevision
		}
		rb.Engine = engine.NewDeployment(base, blue, green, now)
	} else {
		if g.TargetRevision == nil {
			rec.RollbackInfo = &cd.RollbackInfo{RollbackMessage: new("The deployment could not be rolled back: the deployment group has no earlier successful revision.")}
			return nil, nil
		}
		rb.Revision = *g.TargetRevision
		// The rollback reuses the last successful deployment's content
		// options, not the failed one's (SERVICE-SEMANTICS §6.2).
		if last := g.LastSuccessfulDeployment; last != nil && last.DeploymentId != nil {
			if prev, err := loadHeader(ctx, tx, *last.DeploymentId); err == nil {
				rb.FileExistsBehavior = prev.FileExistsBehavior
			}
		}
		infos, err := groupFleet(ctx, tx, rec.Account, rec.Region, g, fleetKey(rec))
		if err != nil {
			return nil, err
		}
		var targets []engine.Instance
		for _, i := range infos {
			targets = append(targets, instanceOf(i))
		}
		rb.Engine = engine.NewDeployment(base, nil, targets, now)
	}
	rb.PreviousRevision = g.TargetRevision
	rec.RollbackInfo = &cd.RollbackInfo{RollbackDeploymentId: &id, RollbackMessage: new(fmt.Sprintf("Rolling back with deployment %s.", id))}
	if err := insert(ctx, tx, rb); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("rollback id collision: %w", err)
		}
		return nil, err
	}
	return rb, nil
}

// shiftOf is the engine's weighted shifting for a Server configuration's
// trafficRoutingConfig (nil for none or AllAtOnce: the all-at-once
// reroute). It applies to blue/green deployments only; an in-place
// deployment with such a configuration deploys as the configuration's
// minimumHealthyHosts says.
func shiftOf(t *cd.TrafficRoutingConfig) *engine.Shift {
	switch {
	case t == nil:
		return nil
	case t.TimeBasedCanary != nil && deref(t.Type) == cd.TrafficRoutingTypeTimeBasedCanary:
		c := t.TimeBasedCanary
		return &engine.Shift{Type: engine.ShiftCanary, Percentage: int32Of(c.CanaryPercentage), IntervalMinutes: int32Of(c.CanaryInterval)}
	case t.TimeBasedLinear != nil && deref(t.Type) == cd.TrafficRoutingTypeTimeBasedLinear:
		l := t.TimeBasedLinear
		return &engine.Shift{Type: engine.ShiftLinear, Percentage: int32Of(l.LinearPercentage), IntervalMinutes: int32Of(l.LinearInterval)}
	}
	return nil
}

func int32Of(p *int32) int {
	if p == nil {
		return 0
	}
	return int(*p)
}
