//lint:file-ignore SA1019 the deprecated instance operations are part of the API Cutover serves.

package deploy

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/engine"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

func ptr[T any](v T) *T        { return &v }
func strs(p []string) []string { return append([]string{}, p...) }

// checkDeploymentID validates a deployment id argument.
func checkDeploymentID(id *string) (string, error) {
	if id == nil || *id == "" {
		return "", awsjson.Errorf("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
	}
	if !deploymentIDRE.MatchString(*id) {
		return "", awsjson.Errorf("InvalidDeploymentIdException", "The deployment ID %q is not in the d-XXXXXXXXX format.", *id)
	}
	return *id, nil
}

// load returns the freshest state of a deployment of the caller's scope.
func (r *Runner) load(ctx context.Context, id string) (*Record, error) {
	account, region := caller(ctx)
	rec, ok := r.exec.snapshot(id)
	if !ok {
		err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			rec, err = loadRecord(ctx, tx, id)
			return err
		})
		if isNotFound(err) {
			return nil, awsjson.Errorf("DeploymentDoesNotExistException", "The deployment %s could not be found.", id)
		}
		if err != nil {
			return nil, err
		}
	}
	if rec.Account != account || rec.Region != region {
		return nil, awsjson.Errorf("DeploymentDoesNotExistException", "The deployment %s could not be found.", id)
	}
	return rec, nil
}

// info renders a record as DeploymentInfo, as GetDeployment returns it.
func info(rec *Record) *cd.DeploymentInfo {
	e := rec.Engine
	ov := e.Overview()
	rev := rec.Revision
	if rev.AppSpecContent != nil {
		// GetDeployment returns appSpecContent.content as null (model doc).
		rev.AppSpecContent = &cd.AppSpecContent{Sha256: rev.AppSpecContent.Sha256}
	}
	d := &cd.DeploymentInfo{
		ApplicationName:      &rec.ApplicationName,
		DeploymentGroupName:  &rec.GroupName,
		DeploymentConfigName: &rec.ConfigName,
		DeploymentId:         &rec.ID,
		PreviousRevision:     rec.PreviousRevision,
		Revision:             &rev,
		Status:               ptr(string(e.Status)),
		CreateTime:           timeOf(e.Created),
		StartTime:            timeOf(e.Started),
		CompleteTime:         timeOf(e.Completed),
		DeploymentOverview: &cd.DeploymentOverview{
			Pending: ptr(ov[engine.Pending]), InProgress: ptr(ov[engine.InProgress]), Succeeded: ptr(ov[engine.Succeeded]),
			Failed: ptr(ov[engine.Failed]), Skipped: ptr(ov[engine.Skipped]), Ready: ptr(ov[engine.Ready]),
		},
		Creator:                            &rec.Creator,
		IgnoreApplicationStopFailures:      &rec.IgnoreApplicationStopFailures,
		AutoRollbackConfiguration:          rec.AutoRollback,
		UpdateOutdatedInstancesOnly:        &rec.UpdateOutdatedInstancesOnly,
		RollbackInfo:                       rec.RollbackInfo,
		DeploymentStyle:                    &rec.DeploymentStyle,
		TargetInstances:                    rec.TargetInstances,
		InstanceTerminationWaitTimeStarted: &e.TerminationWaitOn,
		BlueGreenDeploymentConfiguration:   rec.BlueGreen,
		LoadBalancerInfo:                   rec.LoadBalancerInfo,
		FileExistsBehavior:                 &rec.FileExistsBehavior,
		DeploymentStatusMessages:           strs(e.StatusMessages),
		ComputePlatform:                    &rec.ComputePlatform,
		OverrideAlarmConfiguration:         rec.OverrideAlarm,
	}
	if rec.Description != "" {
		d.Description = &rec.Description
	}
	if e.ErrorCode != "" {
		d.ErrorInformation = &cd.ErrorInformation{Code: ptr(e.ErrorCode), Message: ptr(e.ErrorMessage)}
	}
	return d
}

// GetDeployment implements the operation.
func (r *Runner) GetDeployment(ctx context.Context, in *cd.GetDeploymentInput) (*cd.GetDeploymentOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &cd.GetDeploymentOutput{DeploymentInfo: info(rec)}, nil
}

// BatchGetDeployments returns the deployments that exist, in request order.
func (r *Runner) BatchGetDeployments(ctx context.Context, in *cd.BatchGetDeploymentsInput) (*cd.BatchGetDeploymentsOutput, error) {
	if len(in.DeploymentIds) == 0 {
		return nil, awsjson.Errorf("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
	}
	if len(in.DeploymentIds) > 100 {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of deployment IDs allowed for this request (100) was exceeded.")
	}
	out := &cd.BatchGetDeploymentsOutput{DeploymentsInfo: []cd.DeploymentInfo{}}
	for i := range in.DeploymentIds {
		id, err := checkDeploymentID(&in.DeploymentIds[i])
		if err != nil {
			return nil, err
		}
		rec, err := r.load(ctx, id)
		if err != nil {
			var ae *awsjson.Error
			if asAWS(err, &ae) && ae.Type == "DeploymentDoesNotExistException" {
				continue
			}
			return nil, err
		}
		out.DeploymentsInfo = append(out.DeploymentsInfo, *info(rec))
	}
	return out, nil
}

// ListDeployments lists the caller's deployments, newest first.
func (r *Runner) ListDeployments(ctx context.Context, in *cd.ListDeploymentsInput) (*cd.ListDeploymentsOutput, error) {
	account, region := caller(ctx)
	app, group := deref(in.ApplicationName), deref(in.DeploymentGroupName)
	if app == "" && group != "" {
		return nil, awsjson.Errorf("ApplicationNameRequiredException", "applicationName must be given with deploymentGroupName.")
	}
	if app != "" && group == "" {
		return nil, awsjson.Errorf("DeploymentGroupNameRequiredException", "deploymentGroupName must be given with applicationName.")
	}
	if deref(in.ExternalId) != "" {
		// External IDs belong to CloudFormation-driven deployments, which
		// this server never runs: no deployment matches.
		return &cd.ListDeploymentsOutput{Deployments: []string{}}, nil
	}
	if tr := in.CreateTimeRange; tr != nil && tr.Start != nil && tr.End != nil && tr.End.Before(tr.Start.Time) {
		return nil, awsjson.Errorf("InvalidTimeRangeException", "The start time of the range is after its end time.")
	}
	type item struct {
		id      string
		created int64
	}
	var items []item
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		if app != "" {
			if _, err := api.LoadApp(ctx, tx, account, region, app); err != nil {
				return err
			}
			if _, err := api.LoadGroup(ctx, tx, account, region, app, group); err != nil {
				return err
			}
		}
		idx, err := tx.Scan(ctx, kindDepIndex, api.ScopeKey(account, region), "", 0)
		if err != nil {
			return err
		}
		for _, it := range idx {
			if app != "" && string(it.Value) != app+"/"+group {
				continue
			}
			id := strings.TrimPrefix(it.Key, api.ScopeKey(account, region))
			// Status and creation time are in the stored header (the
			// committed state, live or not): listing never reads targets.
			rec, err := loadHeader(ctx, tx, id)
			if err != nil {
				return err
			}
			e := rec.Engine
			if len(in.IncludeOnlyStatuses) > 0 && !slices.Contains(in.IncludeOnlyStatuses, string(e.Status)) {
				continue
			}
			if tr := in.CreateTimeRange; tr != nil {
				if tr.Start != nil && e.Created.Before(tr.Start.Time) {
					continue
				}
				if tr.End != nil && e.Created.After(tr.End.Time) {
					continue
				}
			}
			items = append(items, item{id: id, created: e.Created.UnixNano()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].created != items[j].created {
			return items[i].created > items[j].created
		}
		return items[i].id < items[j].id
	})
	// Page by position in the newest-first order: keys are "<inverted
	// time>/<id>" so the shared pager's "after" comparison works.
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = orderKey(it.created, it.id)
	}
	page, next, err := r.page(ctx, "ListDeployments", keys, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &cd.ListDeploymentsOutput{Deployments: []string{}, NextToken: next}
	for _, k := range page {
		out.Deployments = append(out.Deployments, k[strings.LastIndex(k, "/")+1:])
	}
	return out, nil
}

func orderKey(created int64, id string) string {
	const max = int64(1<<62 - 1)
	return padInt(max-created) + "/" + id
}

func padInt(v int64) string {
	s := []byte("0000000000000000000")
	b := []byte(itoa(v))
	copy(s[len(s)-len(b):], b)
	return string(s)
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// targetID is how an on-premises instance is named as a deployment target.
func (r *Runner) target(rec *Record, in *engine.Instance) *cd.InstanceTarget {
	events := lifecycleEvents(in)
	t := &cd.InstanceTarget{
		DeploymentId:    &rec.ID,
		TargetId:        ptr(in.Name),
		TargetArn:       ptr(instanceArn(rec, in.Name)),
		Status:          ptr(in.Status),
		LastUpdatedAt:   timeOf(in.LastUpdated),
		LifecycleEvents: events,
	}
	if in.Label != "" {
		t.InstanceLabel = ptr(in.Label)
	}
	return t
}

// instanceArn names an on-premises instance in deployment targets.
func instanceArn(rec *Record, name string) string {
	return "arn:aws:codedeploy:" + rec.Region + ":" + rec.Account + ":instance/" + name
}

func lifecycleEvents(in *engine.Instance) []cd.LifecycleEvent {
	out := make([]cd.LifecycleEvent, 0, len(in.Events))
	for _, ev := range in.Events {
		le := cd.LifecycleEvent{LifecycleEventName: ptr(ev.Name), Status: ptr(ev.Status), StartTime: timeOf(ev.Start), EndTime: timeOf(ev.End)}
		if d := ev.Diagnostics; d != nil {
			le.Diagnostics = &cd.Diagnostics{ErrorCode: ptr(d.ErrorCode), ScriptName: ptr(d.ScriptName), Message: ptr(d.Message), LogTail: ptr(d.LogTail)}
		}
		out = append(out, le)
	}
	return out
}

func findInstance(rec *Record, name string) *engine.Instance {
	for _, in := range rec.Engine.Instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// started reports whether a deployment's targets are computed.
func started(rec *Record) bool {
	return rec.Engine.Status != engine.StatusCreated || len(rec.Engine.Instances) > 0
}

// ListDeploymentTargets implements the operation.
func (r *Runner) ListDeploymentTargets(ctx context.Context, in *cd.ListDeploymentTargetsInput) (*cd.ListDeploymentTargetsOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if !started(rec) {
		return nil, awsjson.Errorf("DeploymentNotStartedException", "The deployment %s has not started.", id)
	}
	var statuses, labels []string
	for k, v := range in.TargetFilters {
		switch k {
		case cd.TargetFilterNameTargetStatus:
			for _, s := range v {
				if !cd.ValidTargetStatus(s) {
					return nil, awsjson.Errorf("InvalidInstanceStatusException", "The target status %q is not valid.", s)
				}
			}
			statuses = v
		case cd.TargetFilterNameServerInstanceLabel:
			if !rec.Engine.Kind.IsBlueGreen() {
				return nil, awsjson.Errorf("InvalidDeploymentInstanceTypeException", "Instance labels apply only to blue/green deployments.")
			}
			for _, s := range v {
				if !cd.ValidTargetLabel(s) {
					return nil, awsjson.Errorf("InvalidInstanceTypeException", "The instance label %q is not valid.", s)
				}
			}
			labels = v
		default:
			return nil, awsjson.Errorf("InvalidTargetFilterNameException", "The target filter name %q is not valid.", k)
		}
	}
	var names []string
	for _, t := range rec.Engine.Instances {
		if len(statuses) > 0 && !slices.Contains(statuses, t.Status) {
			continue
		}
		if len(labels) > 0 && !slices.Contains(labels, t.Label) {
			continue
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	page, next, err := r.page(ctx, "ListDeploymentTargets:"+id, names, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cd.ListDeploymentTargetsOutput{TargetIds: page, NextToken: next}, nil
}

func (r *Runner) targetsOf(ctx context.Context, depID *string, ids []string, limit int) (*Record, []cd.DeploymentTarget, error) {
	id, err := checkDeploymentID(depID)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, awsjson.Errorf("DeploymentTargetIdRequiredException", "A deployment target ID must be specified.")
	}
	if len(ids) > limit {
		return nil, nil, awsjson.Errorf("DeploymentTargetListSizeExceededException", "At most %d target IDs may be given.", limit)
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if !started(rec) {
		return nil, nil, awsjson.Errorf("DeploymentNotStartedException", "The deployment %s has not started.", id)
	}
	var out []cd.DeploymentTarget
	for _, tid := range ids {
		if tid == "" {
			return nil, nil, awsjson.Errorf("DeploymentTargetIdRequiredException", "A deployment target ID must be specified.")
		}
		in := findInstance(rec, tid)
		if in == nil {
			return nil, nil, awsjson.Errorf("DeploymentTargetDoesNotExistException", "The target %s is not part of deployment %s.", tid, id)
		}
		out = append(out, cd.DeploymentTarget{DeploymentTargetType: ptr(cd.DeploymentTargetTypeInstanceTarget), InstanceTarget: r.target(rec, in)})
	}
	return rec, out, nil
}

// BatchGetDeploymentTargets implements the operation.
func (r *Runner) BatchGetDeploymentTargets(ctx context.Context, in *cd.BatchGetDeploymentTargetsInput) (*cd.BatchGetDeploymentTargetsOutput, error) {
	_, ts, err := r.targetsOf(ctx, in.DeploymentId, in.TargetIds, 25)
	if err != nil {
		return nil, err
	}
	return &cd.BatchGetDeploymentTargetsOutput{DeploymentTargets: ts}, nil
}

// GetDeploymentTarget implements the operation.
func (r *Runner) GetDeploymentTarget(ctx context.Context, in *cd.GetDeploymentTargetInput) (*cd.GetDeploymentTargetOutput, error) {
	var ids []string
	if in.TargetId != nil {
		ids = []string{*in.TargetId}
	}
	_, ts, err := r.targetsOf(ctx, in.DeploymentId, ids, 1)
	if err != nil {
		return nil, err
	}
	return &cd.GetDeploymentTargetOutput{DeploymentTarget: &ts[0]}, nil
}

func summary(rec *Record, in *engine.Instance) cd.InstanceSummary {
	s := cd.InstanceSummary{
		DeploymentId:    &rec.ID,
		InstanceId:      ptr(instanceArn(rec, in.Name)),
		Status:          ptr(in.Status),
		LastUpdatedAt:   timeOf(in.LastUpdated),
		LifecycleEvents: lifecycleEvents(in),
	}
	if in.Label != "" {
		s.InstanceType = ptr(in.Label)
	}
	return s
}

// ListDeploymentInstances implements the deprecated operation.
func (r *Runner) ListDeploymentInstances(ctx context.Context, in *cd.ListDeploymentInstancesInput) (*cd.ListDeploymentInstancesOutput, error) {
	filters := map[string][]string{}
	if len(in.InstanceStatusFilter) > 0 {
		filters[cd.TargetFilterNameTargetStatus] = in.InstanceStatusFilter
	}
	if len(in.InstanceTypeFilter) > 0 {
		filters[cd.TargetFilterNameServerInstanceLabel] = in.InstanceTypeFilter
	}
	out, err := r.ListDeploymentTargets(ctx, &cd.ListDeploymentTargetsInput{DeploymentId: in.DeploymentId, TargetFilters: filters, NextToken: in.NextToken})
	if err != nil {
		return nil, err
	}
	return &cd.ListDeploymentInstancesOutput{InstancesList: out.TargetIds, NextToken: out.NextToken}, nil
}

// BatchGetDeploymentInstances implements the deprecated operation.
func (r *Runner) BatchGetDeploymentInstances(ctx context.Context, in *cd.BatchGetDeploymentInstancesInput) (*cd.BatchGetDeploymentInstancesOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	if len(in.InstanceIds) == 0 {
		return nil, awsjson.Errorf("InstanceIdRequiredException", "At least one instance ID must be specified.")
	}
	if len(in.InstanceIds) > 25 {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of instance IDs allowed for this request (25) was exceeded.")
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &cd.BatchGetDeploymentInstancesOutput{InstancesSummary: []cd.InstanceSummary{}, ErrorMessage: ptr("")}
	var missing []string
	for _, name := range in.InstanceIds {
		if inst := findInstance(rec, name); inst != nil {
			out.InstancesSummary = append(out.InstancesSummary, summary(rec, inst))
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		out.ErrorMessage = ptr("Instances not found in deployment " + id + ": " + strings.Join(missing, ", "))
	}
	return out, nil
}

// GetDeploymentInstance implements the deprecated operation.
func (r *Runner) GetDeploymentInstance(ctx context.Context, in *cd.GetDeploymentInstanceInput) (*cd.GetDeploymentInstanceOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	if deref(in.InstanceId) == "" {
		return nil, awsjson.Errorf("InstanceIdRequiredException", "The instance ID must be specified.")
	}
	rec, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	inst := findInstance(rec, *in.InstanceId)
	if inst == nil {
		return nil, awsjson.Errorf("InstanceDoesNotExistException", "The instance %s is not part of deployment %s.", *in.InstanceId, id)
	}
	s := summary(rec, inst)
	return &cd.GetDeploymentInstanceOutput{InstanceSummary: &s}, nil
}

// PutLifecycleEventHookExecutionStatus belongs to Lambda and ECS
// deployments, which this server does not run.
func (r *Runner) PutLifecycleEventHookExecutionStatus(ctx context.Context, in *cd.PutLifecycleEventHookExecutionStatusInput) (*cd.PutLifecycleEventHookExecutionStatusOutput, error) {
	id, err := checkDeploymentID(in.DeploymentId)
	if err != nil {
		return nil, err
	}
	if _, err := r.load(ctx, id); err != nil {
		return nil, err
	}
	return nil, awsjson.Errorf("UnsupportedActionForDeploymentTypeException", "Lifecycle hook execution statuses apply to Lambda and ECS deployments; %s is a Server deployment.", id)
}

// RenameDeployments points the deployment index of an application's
// deployments (group "": of all its groups) or of one group's at their new
// names. The deployments' own records keep the names they were created
// under (GetDeployment shows them), as their driving loops own them.
func (r *Runner) RenameDeployments(ctx context.Context, tx store.Tx, account, region, app, group, newApp, newGroup string) error {
	scope := api.ScopeKey(account, region)
	idx, err := tx.Scan(ctx, kindDepIndex, scope, "", 0)
	if err != nil {
		return err
	}
	for _, it := range idx {
		a, g, _ := strings.Cut(string(it.Value), "/")
		if a != app || (group != "" && g != group) {
			continue
		}
		if group != "" {
			g = newGroup
		}
		if err := tx.Put(ctx, kindDepIndex, it.Key, []byte(newApp+"/"+g)); err != nil {
			return err
		}
	}
	return nil
}

// DeleteApplicationDeployments removes the records of an application's
// completed deployments (DeleteApplication removes its deployment history,
// as on AWS). Active deployments keep running to their end: their group
// is gone, so they record nothing on it.
func (r *Runner) DeleteApplicationDeployments(ctx context.Context, tx store.Tx, account, region, app string) error {
	scope := api.ScopeKey(account, region)
	idx, err := tx.Scan(ctx, kindDepIndex, scope, "", 0)
	if err != nil {
		return err
	}
	for _, it := range idx {
		if !strings.HasPrefix(string(it.Value), app+"/") {
			continue
		}
		id := strings.TrimPrefix(it.Key, scope)
		// Active on whichever replica drives it.
		if active, err := api.IsActive(ctx, tx, account, region, id); err != nil {
			return err
		} else if active {
			continue
		}
		for _, del := range []struct{ kind, key string }{{kindDepIndex, it.Key}, {kindDeployment, id}} {
			if _, err := tx.Delete(ctx, del.kind, del.key); err != nil {
				return err
			}
		}
		targets, err := tx.Scan(ctx, kindTarget, id+"/", "", 0)
		if err != nil {
			return err
		}
		for _, t := range targets {
			if _, err := tx.Delete(ctx, kindTarget, t.Key); err != nil {
				return err
			}
		}
	}
	return nil
}
