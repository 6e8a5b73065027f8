package api

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
	"github.com/cutoverhq/cutover/internal/store"
)

// Per-group limits from the CodeDeploy quotas (SERVICE-SEMANTICS §10).
const (
	maxAlarms          = 10
	maxTriggers        = 10
	maxLoadBalancers   = 10 // per elbInfoList and per targetGroupInfoList
	maxTagSetGroups    = 3
	maxTagSetGroupSize = 10
	maxAutoScaling     = 10
	maxBatchGroups     = 100
	maxBlueGreenWait   = 2880 // minutes: 48 h between install and reroute or termination
)

const defaultServerConfig = "CodeDeployDefault.OneAtATime"

// roleRE is the shape of an IAM role ARN (the role may have a path).
var roleRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)

// snsTopicRE is the shape of an SNS topic ARN, the only trigger target.
var snsTopicRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$`)

// memberExceptions names the modeled exception for a model violation
// under a top-level input member whose name does not lead to it by the
// generated heuristic (cd.ExceptionFor), e.g. a bad trigger event type is
// an InvalidTriggerConfigException on AWS, not a ValidationException.
var memberExceptions = map[string][]string{
	"triggerConfigurations":        {"InvalidTriggerConfigException"},
	"autoRollbackConfiguration":    {"InvalidAutoRollbackConfigException"},
	"ec2TagFilters":                {"InvalidEC2TagException"},
	"ec2TagSet":                    {"InvalidEC2TagException"},
	"onPremisesInstanceTagFilters": {"InvalidTagException"},
	"onPremisesTagSet":             {"InvalidTagException"},
	"tagFilters":                   {"InvalidTagFilterException"},
	"outdatedInstancesStrategy":    {"InvalidInputException"},
	"revision":                     {"InvalidRevisionException"},
	"revisions":                    {"InvalidRevisionException"},
	"deployed":                     {"InvalidDeployedStateFilterException"},
	"currentDeploymentGroupName":   {"InvalidDeploymentGroupNameException"},
	"newDeploymentGroupName":       {"InvalidDeploymentGroupNameException"},
}

// requiredExceptions is memberExceptions for missing (or empty) members.
var requiredExceptions = map[string]string{
	"currentDeploymentGroupName": "DeploymentGroupNameRequiredException",
	"newDeploymentGroupName":     "DeploymentGroupNameRequiredException",
	"Tags":                       "TagRequiredException",
	"TagKeys":                    "TagRequiredException",
}

// exceptionFor picks the exception for a model violation: the generated
// heuristic first, then memberExceptions, restricted to the operation's
// modeled errors so SDKs can always decode the answer.
func exceptionFor(op string, v modelcheck.Violation) string {
	if e := cd.ExceptionFor(op, v); e != "ValidationException" {
		return e
	}
	top, _, _ := strings.Cut(v.Path, ".")
	top, _, _ = strings.Cut(top, "[")
	candidates := memberExceptions[top]
	if v.Kind == modelcheck.Required {
		candidates = []string{requiredExceptions[top]}
	}
	for _, e := range candidates {
		if slices.Contains(cd.Operations[op].Errors, e) {
			return e
		}
	}
	return "ValidationException"
}

func groupName(v *string) (string, error) {
	return checkName(v, "DeploymentGroupNameRequiredException", "InvalidDeploymentGroupNameException", "deployment group name")
}

// appAndGroup validates an application and a deployment group name.
func appAndGroup(app, group *string) (string, string, error) {
	a, err := appName(app)
	if err != nil {
		return "", "", err
	}
	g, err := groupName(group)
	return a, g, err
}

// AppAndGroup validates an application and a deployment group name with
// the CodeDeploy exceptions for them.
func AppAndGroup(app, group *string) (string, string, error) { return appAndGroup(app, group) }

func appName(v *string) (string, error) {
	return checkName(v, "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name")
}

// LoadGroup reads a deployment group or answers
// DeploymentGroupDoesNotExistException.
func LoadGroup(ctx context.Context, tx store.Tx, account, region, app, group string) (*cd.DeploymentGroupInfo, error) {
	var g cd.DeploymentGroupInfo
	err := getJSON(ctx, tx, kindGroup, groupKey(scope{account, region}, app, group), &g)
	if notFound(err) {
		return nil, awsjson.Errorf("DeploymentGroupDoesNotExistException", "No Deployment Group found for name: %s", group)
	}
	if err != nil {
		return nil, err
	}
	return &g, nil
}

// SaveGroup writes a deployment group record as is; the deployment runner
// uses it to record targetRevision and the last deployments.
func SaveGroup(ctx context.Context, tx store.Tx, account, region string, g *cd.DeploymentGroupInfo) error {
	app, group := deref(g.ApplicationName), deref(g.DeploymentGroupName)
	if app == "" || group == "" {
		return fmt.Errorf("save deployment group: application and group names are required")
	}
	return putJSON(ctx, tx, kindGroup, groupKey(scope{account, region}, app, group), g)
}

// CreateDeploymentGroup implements the operation.
func (s *Server) CreateDeploymentGroup(ctx context.Context, in *cd.CreateDeploymentGroupInput) (*cd.CreateDeploymentGroupOutput, error) {
	app, name, err := appAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	if deref(in.ServiceRoleArn) == "" {
		return nil, awsjson.Errorf("RoleRequiredException", "The service role ARN must be specified.")
	}
	if err := checkTags(in.Tags, "InvalidTagsToAddException"); err != nil {
		return nil, err
	}
	g := &cd.DeploymentGroupInfo{
		ApplicationName:                  &app,
		DeploymentGroupId:                str(newID()),
		DeploymentGroupName:              &name,
		DeploymentConfigName:             in.DeploymentConfigName,
		Ec2TagFilters:                    in.Ec2TagFilters,
		OnPremisesInstanceTagFilters:     in.OnPremisesInstanceTagFilters,
		AutoScalingGroups:                asgs(in.AutoScalingGroups),
		ServiceRoleArn:                   in.ServiceRoleArn,
		TriggerConfigurations:            in.TriggerConfigurations,
		AlarmConfiguration:               in.AlarmConfiguration,
		AutoRollbackConfiguration:        in.AutoRollbackConfiguration,
		DeploymentStyle:                  in.DeploymentStyle,
		OutdatedInstancesStrategy:        in.OutdatedInstancesStrategy,
		BlueGreenDeploymentConfiguration: in.BlueGreenDeploymentConfiguration,
		LoadBalancerInfo:                 in.LoadBalancerInfo,
		Ec2TagSet:                        in.Ec2TagSet,
		OnPremisesTagSet:                 in.OnPremisesTagSet,
		EcsServices:                      in.EcsServices,
		TerminationHookEnabled:           in.TerminationHookEnabled,
	}
	sc := scopeOf(ctx)
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		a, err := loadApp(ctx, tx, sc, app)
		if err != nil {
			return err
		}
		if err := completeGroup(ctx, tx, sc, g, deref(a.ComputePlatform)); err != nil {
			return err
		}
		if err := s.checkDestinations(sc, g.TriggerConfigurations, g.AlarmConfiguration); err != nil {
			return err
		}
		if err := s.checkTargetGroups(ctx, g.LoadBalancerInfo); err != nil {
			return err
		}
		existing, err := tx.Scan(ctx, kindGroup, appKey(sc, app)+"/", "", maxGroups)
		if err != nil {
			return err
		}
		if len(existing) >= maxGroups {
			return awsjson.Errorf("DeploymentGroupLimitExceededException", "The limit of %d deployment groups for application %s was reached.", maxGroups, app)
		}
		if err := insertJSON(ctx, tx, kindGroup, groupKey(sc, app, name), g); err != nil {
			if err == store.ErrExists {
				return awsjson.Errorf("DeploymentGroupAlreadyExistsException", "Deployment Group %s already exists for application %s.", name, app)
			}
			return err
		}
		if len(in.Tags) > 0 {
			return putJSON(ctx, tx, kindTags, sc.groupArn(app, name), in.Tags)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cd.CreateDeploymentGroupOutput{DeploymentGroupId: g.DeploymentGroupId}, nil
}

// UpdateDeploymentGroup is a partial update: members left out keep their
// value, members given (lists included, even empty ones) replace it.
func (s *Server) UpdateDeploymentGroup(ctx context.Context, in *cd.UpdateDeploymentGroupInput) (*cd.UpdateDeploymentGroupOutput, error) {
	app, cur, err := appAndGroup(in.ApplicationName, in.CurrentDeploymentGroupName)
	if err != nil {
		return nil, err
	}
	name := cur
	if in.NewDeploymentGroupName != nil {
		if name, err = groupName(in.NewDeploymentGroupName); err != nil {
			return nil, err
		}
	}
	if in.ServiceRoleArn != nil && *in.ServiceRoleArn == "" {
		// RoleRequiredException is not modeled for this operation.
		return nil, awsjson.Errorf("InvalidRoleException", "The service role ARN cannot be empty.")
	}
	sc := scopeOf(ctx)
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		a, err := loadApp(ctx, tx, sc, app)
		if err != nil {
			return err
		}
		g, err := LoadGroup(ctx, tx, sc.Account, sc.Region, app, cur)
		if err != nil {
			return err
		}
		mergeGroup(g, in)
		g.DeploymentGroupName = &name
		if err := completeGroup(ctx, tx, sc, g, deref(a.ComputePlatform)); err != nil {
			return err
		}
		// Only what this update sets: a group stored before the server's
		// configuration changed can still be updated otherwise.
		if err := s.checkDestinations(sc, in.TriggerConfigurations, in.AlarmConfiguration); err != nil {
			return err
		}
		if err := s.checkTargetGroups(ctx, in.LoadBalancerInfo); err != nil {
			return err
		}
		if name != cur {
			err := insertJSON(ctx, tx, kindGroup, groupKey(sc, app, name), g)
			if err == store.ErrExists {
				return awsjson.Errorf("DeploymentGroupAlreadyExistsException", "Deployment Group %s already exists for application %s.", name, app)
			}
			if err != nil {
				return err
			}
			if _, err := tx.Delete(ctx, kindGroup, groupKey(sc, app, cur)); err != nil {
				return err
			}
			if err := moveTags(ctx, tx, sc.groupArn(app, cur), sc.groupArn(app, name)); err != nil {
				return err
			}
			if s.OnRename != nil {
				return s.OnRename(ctx, tx, sc.Account, sc.Region, app, cur, app, name)
			}
			return nil
		}
		return putJSON(ctx, tx, kindGroup, groupKey(sc, app, name), g)
	})
	if err != nil {
		return nil, err
	}
	// No Auto Scaling here, so no lifecycle hook is ever left behind.
	return &cd.UpdateDeploymentGroupOutput{HooksNotCleanedUp: []cd.AutoScalingGroup{}}, nil
}

// mergeGroup applies the members given in an update to g.
func mergeGroup(g *cd.DeploymentGroupInfo, in *cd.UpdateDeploymentGroupInput) {
	if in.DeploymentConfigName != nil {
		g.DeploymentConfigName = in.DeploymentConfigName
	}
	if in.Ec2TagFilters != nil {
		g.Ec2TagFilters = in.Ec2TagFilters
	}
	if in.OnPremisesInstanceTagFilters != nil {
		g.OnPremisesInstanceTagFilters = in.OnPremisesInstanceTagFilters
	}
	if in.AutoScalingGroups != nil {
		g.AutoScalingGroups = asgs(in.AutoScalingGroups)
	}
	if in.ServiceRoleArn != nil {
		g.ServiceRoleArn = in.ServiceRoleArn
	}
	if in.TriggerConfigurations != nil {
		g.TriggerConfigurations = in.TriggerConfigurations
	}
	if in.AlarmConfiguration != nil {
		g.AlarmConfiguration = in.AlarmConfiguration
	}
	if in.AutoRollbackConfiguration != nil {
		g.AutoRollbackConfiguration = in.AutoRollbackConfiguration
	}
	if in.OutdatedInstancesStrategy != nil {
		g.OutdatedInstancesStrategy = in.OutdatedInstancesStrategy
	}
	if in.DeploymentStyle != nil {
		g.DeploymentStyle = in.DeploymentStyle
	}
	if in.BlueGreenDeploymentConfiguration != nil {
		g.BlueGreenDeploymentConfiguration = in.BlueGreenDeploymentConfiguration
	}
	if in.LoadBalancerInfo != nil {
		g.LoadBalancerInfo = in.LoadBalancerInfo
	}
	if in.Ec2TagSet != nil {
		g.Ec2TagSet = in.Ec2TagSet
	}
	if in.OnPremisesTagSet != nil {
		g.OnPremisesTagSet = in.OnPremisesTagSet
	}
	if in.EcsServices != nil {
		g.EcsServices = in.EcsServices
	}
	if in.TerminationHookEnabled != nil {
		g.TerminationHookEnabled = in.TerminationHookEnabled
	}
}

// asgs turns Auto Scaling group names into the output shape. There is no
// Auto Scaling here, so the names are kept as given, without hooks.
func asgs(names []string) []cd.AutoScalingGroup {
	if names == nil {
		return nil
	}
	out := make([]cd.AutoScalingGroup, len(names))
	for i, n := range names {
		out[i] = cd.AutoScalingGroup{Name: str(n)}
	}
	return out
}

// completeGroup fills the defaults AWS returns, validates the whole record
// and checks its deployment configuration against the application.
func completeGroup(ctx context.Context, tx store.Tx, sc scope, g *cd.DeploymentGroupInfo, platform string) error {
	g.ComputePlatform = &platform
	if g.Ec2TagSet != nil && len(g.Ec2TagSet.Ec2TagSetList) == 0 {
		g.Ec2TagSet = nil // an empty set selects nothing: the same as none
	}
	if g.OnPremisesTagSet != nil && len(g.OnPremisesTagSet.OnPremisesTagSetList) == 0 {
		g.OnPremisesTagSet = nil
	}
	if g.LoadBalancerInfo != nil && len(g.LoadBalancerInfo.ElbInfoList) == 0 &&
		len(g.LoadBalancerInfo.TargetGroupInfoList) == 0 && len(g.LoadBalancerInfo.TargetGroupPairInfoList) == 0 {
		g.LoadBalancerInfo = nil
	}
	if deref(g.OutdatedInstancesStrategy) == "" {
		g.OutdatedInstancesStrategy = str(cd.OutdatedInstancesStrategyUPDATE)
	}
	if g.TerminationHookEnabled == nil {
		g.TerminationHookEnabled = new(false)
	}
	// SDKs leave false booleans out; AWS answers them explicitly.
	if a := g.AlarmConfiguration; a != nil {
		if a.Enabled == nil {
			a.Enabled = new(false)
		}
		if a.IgnorePollAlarmFailure == nil {
			a.IgnorePollAlarmFailure = new(false)
		}
	}
	if r := g.AutoRollbackConfiguration; r != nil && r.Enabled == nil {
		r.Enabled = new(false)
	}
	style := cd.DeploymentStyle{DeploymentType: str(cd.DeploymentTypeINPLACE), DeploymentOption: str(cd.DeploymentOptionWITHOUTTRAFFICCONTROL)}
	if platform != cd.ComputePlatformServer {
		// Lambda and ECS deployments always shift traffic to a new version.
		style = cd.DeploymentStyle{DeploymentType: str(cd.DeploymentTypeBLUEGREEN), DeploymentOption: str(cd.DeploymentOptionWITHTRAFFICCONTROL)}
	}
	if g.DeploymentStyle != nil {
		if g.DeploymentStyle.DeploymentType != nil {
			style.DeploymentType = g.DeploymentStyle.DeploymentType
		}
		if g.DeploymentStyle.DeploymentOption != nil {
			style.DeploymentOption = g.DeploymentStyle.DeploymentOption
		}
	}
	g.DeploymentStyle = &style
	if deref(g.DeploymentConfigName) == "" {
		g.DeploymentConfigName = str(defaultConfig(platform))
	}
	if err := validateGroup(g, platform); err != nil {
		return err
	}
	cfg, err := LoadConfig(ctx, tx, sc.Account, sc.Region, *g.DeploymentConfigName)
	if err != nil {
		return err
	}
	if p := deref(cfg.ComputePlatform); p != platform {
		return awsjson.Errorf("InvalidDeploymentConfigNameException", "The deployment configuration %s is for the %s compute platform, but the application is %s.", *g.DeploymentConfigName, p, platform)
	}
	// Lambda and ECS groups are kept as metadata: their deployments are
	// recorded and fail at once (deploy.CreateDeployment), as pipelines
	// written for AWS or its emulators create them up front.
	return nil
}

// defaultConfig is the configuration a group gets when it names none.
func defaultConfig(platform string) string {
	switch platform {
	case cd.ComputePlatformLambda:
		return "CodeDeployDefault.LambdaAllAtOnce"
	case cd.ComputePlatformECS:
		return "CodeDeployDefault.ECSAllAtOnce"
	}
	return defaultServerConfig
}

// validateGroup applies the cross-field rules the model cannot express.
func validateGroup(g *cd.DeploymentGroupInfo, platform string) error {
	if !roleRE.MatchString(deref(g.ServiceRoleArn)) {
		return awsjson.Errorf("InvalidRoleException", "The service role ARN %q is not a valid IAM role ARN (arn:aws:iam::<account>:role/<name>).", deref(g.ServiceRoleArn))
	}
	if err := validateTargets(g); err != nil {
		return err
	}
	if err := validateStyle(g, platform); err != nil {
		return err
	}
	if err := validateBlueGreen(g.BlueGreenDeploymentConfiguration); err != nil {
		return err
	}
	if err := validateAlarms(g.AlarmConfiguration); err != nil {
		return err
	}
	if r := g.AutoRollbackConfiguration; r != nil && deref2(r.Enabled) && len(r.Events) == 0 {
		return awsjson.Errorf("InvalidAutoRollbackConfigException", "An enabled automatic rollback configuration needs at least one event.")
	}
	return validateTriggers(g.TriggerConfigurations)
}

func deref2(b *bool) bool { return b != nil && *b }

// isAWSError reports whether err is an answer of the exception type.
func isAWSError(err error, typ string) bool {
	var ae *awsjson.Error
	return errors.As(err, &ae) && ae.Type == typ
}

// validateTargets checks how the group selects instances.
func validateTargets(g *cd.DeploymentGroupInfo) error {
	if len(g.Ec2TagFilters) > 0 && g.Ec2TagSet != nil {
		return awsjson.Errorf("InvalidEC2TagCombinationException", "ec2TagFilters and ec2TagSet cannot both be specified.")
	}
	if len(g.OnPremisesInstanceTagFilters) > 0 && g.OnPremisesTagSet != nil {
		return awsjson.Errorf("InvalidOnPremisesTagCombinationException", "onPremisesInstanceTagFilters and onPremisesTagSet cannot both be specified.")
	}
	for _, f := range g.Ec2TagFilters {
		if err := checkFilter(f.Key, f.Value, f.Type, "InvalidEC2TagException"); err != nil {
			return err
		}
	}
	for _, f := range g.OnPremisesInstanceTagFilters {
		if err := checkFilter(f.Key, f.Value, f.Type, "InvalidTagException"); err != nil {
			return err
		}
	}
	if set := g.Ec2TagSet; set != nil {
		groups := make([][]cd.TagFilter, len(set.Ec2TagSetList))
		for i, grp := range set.Ec2TagSetList {
			for _, f := range grp {
				groups[i] = append(groups[i], cd.TagFilter(f))
			}
		}
		if err := checkTagSet(groups, "InvalidEC2TagException"); err != nil {
			return err
		}
	}
	if set := g.OnPremisesTagSet; set != nil {
		if err := checkTagSet(set.OnPremisesTagSetList, "InvalidTagException"); err != nil {
			return err
		}
	}
	if len(g.AutoScalingGroups) > maxAutoScaling {
		return awsjson.Errorf("InvalidAutoScalingGroupException", "A deployment group can name at most %d Auto Scaling groups.", maxAutoScaling)
	}
	for _, a := range g.AutoScalingGroups {
		if n := deref(a.Name); n == "" || utf8.RuneCountInString(n) > 255 {
			return awsjson.Errorf("InvalidAutoScalingGroupException", "Auto Scaling group names must be 1 to 255 characters long.")
		}
	}
	return nil
}

// checkFilter validates one tag filter. A filter without a type is read
// from what it carries (see filterType).
func checkFilter(key, value, typ *string, exception string) error {
	k, v := deref(key), deref(value)
	if utf8.RuneCountInString(k) > 128 || utf8.RuneCountInString(v) > 256 {
		return awsjson.Errorf(exception, "Tag keys are at most 128 and values at most 256 characters long.")
	}
	switch deref(typ) {
	case cd.TagFilterTypeKEYONLY:
		if k == "" || v != "" {
			return awsjson.Errorf(exception, "A KEY_ONLY tag filter needs a key and no value.")
		}
	case cd.TagFilterTypeVALUEONLY:
		if v == "" || k != "" {
			return awsjson.Errorf(exception, "A VALUE_ONLY tag filter needs a value and no key.")
		}
	case cd.TagFilterTypeKEYANDVALUE:
		if k == "" {
			return awsjson.Errorf(exception, "A KEY_AND_VALUE tag filter needs a key.")
		}
	case "":
		if k == "" && v == "" {
			return awsjson.Errorf(exception, "A tag filter needs a key or a value.")
		}
	default:
		return awsjson.Errorf(exception, "The tag filter type %q is not valid.", *typ)
	}
	return nil
}

func validateStyle(g *cd.DeploymentGroupInfo, platform string) error {
	typ, opt := deref(g.DeploymentStyle.DeploymentType), deref(g.DeploymentStyle.DeploymentOption)
	lb := g.LoadBalancerInfo
	if lb != nil {
		if len(lb.ElbInfoList) > maxLoadBalancers || len(lb.TargetGroupInfoList) > maxLoadBalancers {
			return awsjson.Errorf("InvalidLoadBalancerInfoException", "At most %d load balancers and %d target groups can be specified.", maxLoadBalancers, maxLoadBalancers)
		}
		for _, e := range lb.ElbInfoList {
			if deref(e.Name) == "" {
				return awsjson.Errorf("InvalidLoadBalancerInfoException", "Every load balancer needs a name.")
			}
		}
		for _, t := range lb.TargetGroupInfoList {
			if deref(t.Name) == "" {
				return awsjson.Errorf("InvalidLoadBalancerInfoException", "Every target group needs a name.")
			}
		}
	}
	switch platform {
	case cd.ComputePlatformServer:
		if len(g.EcsServices) > 0 {
			return awsjson.Errorf("InvalidECSServiceException", "ECS services apply only to ECS applications.")
		}
		if lb != nil && len(lb.TargetGroupPairInfoList) > 0 {
			return awsjson.Errorf("InvalidTargetGroupPairException", "Target group pairs apply only to ECS applications.")
		}
		if typ == cd.DeploymentTypeBLUEGREEN && opt != cd.DeploymentOptionWITHTRAFFICCONTROL {
			return awsjson.Errorf("InvalidDeploymentStyleException", "Blue/green deployments on the Server compute platform need WITH_TRAFFIC_CONTROL.")
		}
		if opt == cd.DeploymentOptionWITHTRAFFICCONTROL && (lb == nil || len(lb.ElbInfoList)+len(lb.TargetGroupInfoList) == 0) {
			return awsjson.Errorf("InvalidLoadBalancerInfoException", "A deployment group with WITH_TRAFFIC_CONTROL needs loadBalancerInfo with a load balancer or target group.")
		}
	case cd.ComputePlatformECS:
		if typ != cd.DeploymentTypeBLUEGREEN || opt != cd.DeploymentOptionWITHTRAFFICCONTROL {
			return awsjson.Errorf("InvalidDeploymentStyleException", "ECS deployment groups must be BLUE_GREEN with WITH_TRAFFIC_CONTROL.")
		}
		if len(g.EcsServices) > 1 {
			return awsjson.Errorf("ECSServiceMappingLimitExceededException", "An ECS deployment group takes exactly one ECS service.")
		}
		if len(g.EcsServices) == 0 || deref(g.EcsServices[0].ServiceName) == "" || deref(g.EcsServices[0].ClusterName) == "" {
			return awsjson.Errorf("InvalidECSServiceException", "An ECS deployment group needs one ECS service with a service and a cluster name.")
		}
		if lb == nil || len(lb.TargetGroupPairInfoList) != 1 || len(lb.TargetGroupPairInfoList[0].TargetGroups) != 2 {
			return awsjson.Errorf("InvalidTargetGroupPairException", "An ECS deployment group needs exactly one target group pair of two target groups.")
		}
	case cd.ComputePlatformLambda:
		if typ != cd.DeploymentTypeBLUEGREEN || opt != cd.DeploymentOptionWITHTRAFFICCONTROL {
			return awsjson.Errorf("InvalidDeploymentStyleException", "Lambda deployment groups must be BLUE_GREEN with WITH_TRAFFIC_CONTROL.")
		}
	}
	return nil
}

func validateBlueGreen(bg *cd.BlueGreenDeploymentConfiguration) error {
	if bg == nil {
		return nil
	}
	bad := func(format string, args ...any) error {
		return awsjson.Errorf("InvalidBlueGreenDeploymentConfigurationException", format, args...)
	}
	if r := bg.DeploymentReadyOption; r != nil {
		w := int32(0)
		if r.WaitTimeInMinutes != nil {
			w = *r.WaitTimeInMinutes
		}
		if w < 0 || w > maxBlueGreenWait {
			return bad("waitTimeInMinutes must be between 0 and %d.", maxBlueGreenWait)
		}
		if deref(r.ActionOnTimeout) == cd.DeploymentReadyActionCONTINUEDEPLOYMENT && w > 0 {
			return bad("Deployment ready action cannot be set to 'CONTINUE_DEPLOYMENT' when timeout is specified")
		}
	}
	if t := bg.TerminateBlueInstancesOnDeploymentSuccess; t != nil && t.TerminationWaitTimeInMinutes != nil {
		if w := *t.TerminationWaitTimeInMinutes; w < 0 || w > maxBlueGreenWait {
			return bad("terminationWaitTimeInMinutes must be between 0 and %d.", maxBlueGreenWait)
		}
	}
	if p := bg.GreenFleetProvisioningOption; p != nil && deref(p.Action) == cd.GreenFleetProvisioningActionCOPYAUTOSCALINGGROUP {
		return bad("The COPY_AUTO_SCALING_GROUP green fleet provisioning option is not available: this server has no Amazon EC2 Auto Scaling. Use DISCOVER_EXISTING.")
	}
	return nil
}

func validateAlarms(a *cd.AlarmConfiguration) error {
	if a == nil {
		return nil
	}
	if len(a.Alarms) > maxAlarms {
		return awsjson.Errorf("AlarmsLimitExceededException", "The maximum number of alarms for a deployment group (%d) was exceeded.", maxAlarms)
	}
	if deref2(a.Enabled) && len(a.Alarms) == 0 {
		return awsjson.Errorf("InvalidAlarmConfigException", "An enabled alarm configuration needs at least one alarm.")
	}
	seen := map[string]bool{}
	for _, al := range a.Alarms {
		n := deref(al.Name)
		if n == "" || utf8.RuneCountInString(n) > 255 {
			return awsjson.Errorf("InvalidAlarmConfigException", "Alarm names must be 1 to 255 characters long.")
		}
		if seen[n] {
			return awsjson.Errorf("InvalidAlarmConfigException", "The alarm %s is listed more than once.", n)
		}
		seen[n] = true
	}
	return nil
}

func validateTriggers(ts []cd.TriggerConfig) error {
	if len(ts) > maxTriggers {
		return awsjson.Errorf("TriggerTargetsLimitExceededException", "The maximum number of triggers for a deployment group (%d) was exceeded.", maxTriggers)
	}
	seen := map[string]bool{}
	for _, t := range ts {
		n := deref(t.TriggerName)
		if n == "" || utf8.RuneCountInString(n) > 255 {
			return awsjson.Errorf("InvalidTriggerConfigException", "Trigger names must be 1 to 255 characters long.")
		}
		if seen[n] {
			return awsjson.Errorf("InvalidTriggerConfigException", "The trigger name %s is used more than once.", n)
		}
		seen[n] = true
		if !snsTopicRE.MatchString(deref(t.TriggerTargetArn)) {
			return awsjson.Errorf("InvalidTriggerConfigException", "The trigger target %q of trigger %s is not an Amazon SNS topic ARN.", deref(t.TriggerTargetArn), n)
		}
		if len(t.TriggerEvents) == 0 {
			return awsjson.Errorf("InvalidTriggerConfigException", "The trigger %s needs at least one event type.", n)
		}
		for _, e := range t.TriggerEvents {
			if !cd.ValidTriggerEventType(e) {
				return awsjson.Errorf("InvalidTriggerConfigException", "The trigger event type %q is not valid.", e)
			}
		}
	}
	return nil
}

// GetDeploymentGroup implements the operation.
func (s *Server) GetDeploymentGroup(ctx context.Context, in *cd.GetDeploymentGroupInput) (*cd.GetDeploymentGroupOutput, error) {
	app, name, err := appAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	var g *cd.DeploymentGroupInfo
	err = s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		g, err = LoadGroup(ctx, tx, sc.Account, sc.Region, app, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.GetDeploymentGroupOutput{DeploymentGroupInfo: g}, nil
}

// DeleteDeploymentGroup removes a group and its tags. The model lists no
// DoesNotExist error for the operation (SERVICE-SEMANTICS §8.3), so, like
// DeleteApplication, deleting a group or application that does not exist
// succeeds with nothing to clean up.
func (s *Server) DeleteDeploymentGroup(ctx context.Context, in *cd.DeleteDeploymentGroupInput) (*cd.DeleteDeploymentGroupOutput, error) {
	app, name, err := appAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Delete(ctx, kindGroup, groupKey(sc, app, name)); err != nil {
			return err
		}
		_, err := tx.Delete(ctx, kindTags, sc.groupArn(app, name))
		return err
	})
	if err != nil {
		return nil, err
	}
	// No Auto Scaling here, so every (nonexistent) lifecycle hook is gone.
	return &cd.DeleteDeploymentGroupOutput{HooksNotCleanedUp: []cd.AutoScalingGroup{}}, nil
}

// groupNames lists the group names of an application, sorted.
func groupNames(ctx context.Context, tx store.Tx, sc scope, app string) ([]string, error) {
	prefix := appKey(sc, app) + "/"
	items, err := tx.Scan(ctx, kindGroup, prefix, "", 0)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.Key[len(prefix):]
	}
	sort.Strings(names)
	return names, nil
}

// ListDeploymentGroups implements the operation (names sorted).
func (s *Server) ListDeploymentGroups(ctx context.Context, in *cd.ListDeploymentGroupsInput) (*cd.ListDeploymentGroupsOutput, error) {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	var names []string
	err = s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		names, err = groupNames(ctx, tx, sc, app)
		return err
	})
	if err != nil {
		return nil, err
	}
	page, next, err := s.page("ListDeploymentGroups", names, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cd.ListDeploymentGroupsOutput{ApplicationName: &app, DeploymentGroups: page, NextToken: next}, nil
}

// BatchGetDeploymentGroups returns the groups found, in request order, and
// names the missing ones in errorMessage as AWS does.
func (s *Server) BatchGetDeploymentGroups(ctx context.Context, in *cd.BatchGetDeploymentGroupsInput) (*cd.BatchGetDeploymentGroupsOutput, error) {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	if len(in.DeploymentGroupNames) == 0 {
		return nil, awsjson.Errorf("DeploymentGroupNameRequiredException", "The deployment group names must be specified.")
	}
	if len(in.DeploymentGroupNames) > maxBatchGroups {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (%d) was exceeded.", maxBatchGroups)
	}
	for i := range in.DeploymentGroupNames {
		if _, err := groupName(&in.DeploymentGroupNames[i]); err != nil {
			return nil, err
		}
	}
	sc := scopeOf(ctx)
	key := append([]string{"BatchGetDeploymentGroups", sc.Account, sc.Region, app}, in.DeploymentGroupNames...)
	return cachedView(ctx, s, key, func() (*cd.BatchGetDeploymentGroupsOutput, error) {
		return s.batchGetGroups(ctx, sc, app, in.DeploymentGroupNames)
	})
}

func (s *Server) batchGetGroups(ctx context.Context, sc scope, app string, names []string) (*cd.BatchGetDeploymentGroupsOutput, error) {
	out := &cd.BatchGetDeploymentGroupsOutput{DeploymentGroupsInfo: []cd.DeploymentGroupInfo{}}
	var missing []string
	err := s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		scanned, err := scanGroups(ctx, tx, &s.groups, sc, app, names)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			g, ok := scanned.groups[n]
			if !ok && scanned.complete {
				missing = append(missing, n)
				continue
			}
			if ok {
				out.DeploymentGroupsInfo = append(out.DeploymentGroupsInfo, *g)
				continue
			}
			g, err := LoadGroup(ctx, tx, sc.Account, sc.Region, app, n)
			if isAWSError(err, "DeploymentGroupDoesNotExistException") {
				missing = append(missing, n)
				continue
			}
			if err != nil {
				return err
			}
			out.DeploymentGroupsInfo = append(out.DeploymentGroupsInfo, *g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		out.ErrorMessage = str(fmt.Sprintf("Deployment groups do not exist for application %s: %s", app, strings.Join(missing, ", ")))
	}
	return out, nil
}

// batchScanMin is the number of names from which BatchGetDeploymentGroups
// reads the application's groups with one range scan instead of one read
// per name: on SQLite a statement costs more than its rows.
const batchScanMin = 4

// scannedGroups are the requested groups found by scanGroups; complete
// means the scan saw every group of the application, so a name not found
// does not exist.
type scannedGroups struct {
	groups   map[string]*cd.DeploymentGroupInfo
	complete bool
}

// scanGroups reads the groups of app named in names with one bounded
// range scan (at most 4 records per name, so an application with many
// more groups costs no more than that); names it did not reach are left
// for the caller to read one by one.
func scanGroups(ctx context.Context, tx store.Tx, cache *groupCache, sc scope, app string, names []string) (scannedGroups, error) {
	out := scannedGroups{groups: map[string]*cd.DeploymentGroupInfo{}}
	if len(names) < batchScanMin {
		return out, nil
	}
	want := make(map[string]string, len(names)) // record key -> group name
	for _, n := range names {
		want[groupKey(sc, app, n)] = n
	}
	limit := 4 * len(names)
	items, err := tx.Scan(ctx, kindGroup, groupKey(sc, app, ""), "", limit)
	if err != nil {
		return out, err
	}
	for _, it := range items {
		n, ok := want[it.Key]
		if !ok {
			continue
		}
		g, err := cache.decode(it.Key, it.Value)
		if err != nil {
			return out, fmt.Errorf("decode %s %s: %w", kindGroup, it.Key, err)
		}
		out.groups[n] = g
	}
	out.complete = len(items) < limit
	return out, nil
}

// checkTagSet validates the groups of an EC2 or on-premises tag set.
func checkTagSet(groups [][]cd.TagFilter, invalid string) error {
	if len(groups) > maxTagSetGroups {
		return awsjson.Errorf("TagSetListLimitExceededException", "A tag set can hold at most %d tag groups.", maxTagSetGroups)
	}
	for _, grp := range groups {
		if len(grp) == 0 || len(grp) > maxTagSetGroupSize {
			return awsjson.Errorf(invalid, "Each tag group of a tag set must hold 1 to %d tags.", maxTagSetGroupSize)
		}
		for _, f := range grp {
			if err := checkFilter(f.Key, f.Value, f.Type, invalid); err != nil {
				return err
			}
		}
	}
	return nil
}
