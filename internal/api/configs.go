package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/model/awstime"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

const builtinPrefix = "CodeDeployDefault."

// builtinCreateTime is the createTime AWS returns for OneAtATime; the
// other built-ins share it here (their real times are not published).
var builtinCreateTime = time.Unix(1446744188, 711_000_000).UTC()

// builtinConfig returns the built-in configuration of that name, with
// AWS's values (SERVICE-SEMANTICS §3.1). OneAtATime is MOST_CONCURRENCY/1
// on the wire, a type users cannot set.
func builtinConfig(name string) (cd.DeploymentConfigInfo, bool) {
	if !strings.HasPrefix(name, builtinPrefix) {
		return cd.DeploymentConfigInfo{}, false
	}
	for i, b := range builtins() {
		if deref(b.DeploymentConfigName) == name {
			b.DeploymentConfigId = str(builtinID(i + 1))
			return b, true
		}
	}
	return cd.DeploymentConfigInfo{}, false
}

func builtinID(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }

func builtins() []cd.DeploymentConfigInfo {
	server := func(name, typ string, v int32) cd.DeploymentConfigInfo {
		return cd.DeploymentConfigInfo{DeploymentConfigName: str(name), ComputePlatform: str(cd.ComputePlatformServer),
			MinimumHealthyHosts: &cd.MinimumHealthyHosts{Type: str(typ), Value: new(v)},
			CreateTime:          &awstime.Time{Time: builtinCreateTime}}
	}
	routed := func(name, platform string, trc cd.TrafficRoutingConfig) cd.DeploymentConfigInfo {
		return cd.DeploymentConfigInfo{DeploymentConfigName: str(name), ComputePlatform: str(platform),
			TrafficRoutingConfig: &trc, CreateTime: &awstime.Time{Time: builtinCreateTime}}
	}
	all := cd.TrafficRoutingConfig{Type: str(cd.TrafficRoutingTypeAllAtOnce)}
	canary := func(p, m int32) cd.TrafficRoutingConfig {
		return cd.TrafficRoutingConfig{Type: str(cd.TrafficRoutingTypeTimeBasedCanary), TimeBasedCanary: &cd.TimeBasedCanary{CanaryPercentage: new(p), CanaryInterval: new(m)}}
	}
	linear := func(p, m int32) cd.TrafficRoutingConfig {
		return cd.TrafficRoutingConfig{Type: str(cd.TrafficRoutingTypeTimeBasedLinear), TimeBasedLinear: &cd.TimeBasedLinear{LinearPercentage: new(p), LinearInterval: new(m)}}
	}
	return []cd.DeploymentConfigInfo{
		server("CodeDeployDefault.OneAtATime", "MOST_CONCURRENCY", 1),
		server("CodeDeployDefault.HalfAtATime", cd.MinimumHealthyHostsTypeFLEETPERCENT, 50),
		server("CodeDeployDefault.AllAtOnce", cd.MinimumHealthyHostsTypeFLEETPERCENT, 0),
		routed("CodeDeployDefault.LambdaAllAtOnce", cd.ComputePlatformLambda, all),
		routed("CodeDeployDefault.LambdaCanary10Percent5Minutes", cd.ComputePlatformLambda, canary(10, 5)),
		routed("CodeDeployDefault.LambdaCanary10Percent10Minutes", cd.ComputePlatformLambda, canary(10, 10)),
		routed("CodeDeployDefault.LambdaCanary10Percent15Minutes", cd.ComputePlatformLambda, canary(10, 15)),
		routed("CodeDeployDefault.LambdaCanary10Percent30Minutes", cd.ComputePlatformLambda, canary(10, 30)),
		routed("CodeDeployDefault.LambdaLinear10PercentEvery1Minute", cd.ComputePlatformLambda, linear(10, 1)),
		routed("CodeDeployDefault.LambdaLinear10PercentEvery2Minutes", cd.ComputePlatformLambda, linear(10, 2)),
		routed("CodeDeployDefault.LambdaLinear10PercentEvery3Minutes", cd.ComputePlatformLambda, linear(10, 3)),
		routed("CodeDeployDefault.LambdaLinear10PercentEvery10Minutes", cd.ComputePlatformLambda, linear(10, 10)),
		routed("CodeDeployDefault.ECSAllAtOnce", cd.ComputePlatformECS, all),
		routed("CodeDeployDefault.ECSCanary10Percent5Minutes", cd.ComputePlatformECS, canary(10, 5)),
		routed("CodeDeployDefault.ECSCanary10Percent15Minutes", cd.ComputePlatformECS, canary(10, 15)),
		routed("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", cd.ComputePlatformECS, linear(10, 1)),
		routed("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", cd.ComputePlatformECS, linear(10, 3)),
	}
}

// LoadConfig returns a built-in or custom deployment configuration.
func LoadConfig(ctx context.Context, tx store.Tx, account, region, name string) (*cd.DeploymentConfigInfo, error) {
	if b, ok := builtinConfig(name); ok {
		return &b, nil
	}
	var c cd.DeploymentConfigInfo
	err := getJSON(ctx, tx, kindConfig, ScopeKey(account, region)+name, &c)
	if notFound(err) {
		return nil, awsjson.Errorf("DeploymentConfigDoesNotExistException", "No deployment configuration found for name: %s", name)
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func configName(v *string) (string, error) {
	return checkName(v, "DeploymentConfigNameRequiredException", "InvalidDeploymentConfigNameException", "deployment configuration name")
}

// CreateDeploymentConfig implements the operation.
func (s *Server) CreateDeploymentConfig(ctx context.Context, in *cd.CreateDeploymentConfigInput) (*cd.CreateDeploymentConfigOutput, error) {
	name, err := configName(in.DeploymentConfigName)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, builtinPrefix) {
		return nil, awsjson.Errorf("InvalidDeploymentConfigNameException", "Deployment configuration names may not begin with the reserved prefix %s", builtinPrefix)
	}
	platform := deref(in.ComputePlatform)
	if platform == "" {
		platform = cd.ComputePlatformServer
	}
	info := cd.DeploymentConfigInfo{
		DeploymentConfigId:   str(newID()),
		DeploymentConfigName: &name,
		ComputePlatform:      &platform,
		CreateTime:           &awstime.Time{Time: s.now()},
	}
	switch platform {
	case cd.ComputePlatformServer:
		if trc := in.TrafficRoutingConfig; trc != nil {
			// An extension beyond AWS: canary and linear shifting for
			// blue/green Server deployments (README, Progressive delivery).
			if err := checkTrafficRouting(trc); err != nil {
				return nil, err
			}
			info.TrafficRoutingConfig = trc
		}
		mh := in.MinimumHealthyHosts
		if mh == nil || mh.Type == nil {
			return nil, awsjson.Errorf("InvalidMinimumHealthyHostValueException", "A Server deployment configuration needs minimumHealthyHosts with a type and a value.")
		}
		if mh.Value == nil {
			// aws-sdk-go-v2 leaves a zero value out of the request.
			mh.Value = new(int32(0))
		}
		if err := checkMinHealthy(deref(mh.Type), *mh.Value, "InvalidMinimumHealthyHostValueException"); err != nil {
			return nil, err
		}
		info.MinimumHealthyHosts = mh
		if in.ZonalConfig != nil {
			if err := checkZonal(in.ZonalConfig); err != nil {
				return nil, err
			}
			info.ZonalConfig = in.ZonalConfig
		}
	default:
		if in.MinimumHealthyHosts != nil {
			return nil, awsjson.Errorf("InvalidMinimumHealthyHostValueException", "minimumHealthyHosts applies only to Server deployment configurations.")
		}
		if in.ZonalConfig != nil {
			return nil, awsjson.Errorf("InvalidZonalDeploymentConfigurationException", "zonalConfig applies only to Server deployment configurations.")
		}
		trc := in.TrafficRoutingConfig
		if trc == nil {
			trc = &cd.TrafficRoutingConfig{Type: str(cd.TrafficRoutingTypeAllAtOnce)}
		}
		if err := checkTrafficRouting(trc); err != nil {
			return nil, err
		}
		info.TrafficRoutingConfig = trc
	}
	sc := scopeOf(ctx)
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		existing, err := tx.Scan(ctx, kindConfig, sc.prefix(), "", maxConfigs)
		if err != nil {
			return err
		}
		if len(existing) >= maxConfigs {
			return awsjson.Errorf("DeploymentConfigLimitExceededException", "The limit of %d custom deployment configurations was reached.", maxConfigs)
		}
		err = insertJSON(ctx, tx, kindConfig, sc.prefix()+name, info)
		if err == store.ErrExists {
			return awsjson.Errorf("DeploymentConfigAlreadyExistsException", "Deployment configuration %s already exists.", name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.CreateDeploymentConfigOutput{DeploymentConfigId: info.DeploymentConfigId}, nil
}

func checkMinHealthy(typ string, v int32, exception string) error {
	switch typ {
	case cd.MinimumHealthyHostsTypeHOSTCOUNT:
		if v < 0 {
			return awsjson.Errorf(exception, "HOST_COUNT must be 0 or more.")
		}
	case cd.MinimumHealthyHostsTypeFLEETPERCENT:
		if v < 0 || v > 99 {
			return awsjson.Errorf(exception, "FLEET_PERCENT must be between 0 and 99.")
		}
	default:
		return awsjson.Errorf(exception, "The minimum healthy hosts type %q is not valid.", typ)
	}
	return nil
}

func checkZonal(z *cd.ZonalConfig) error {
	bad := func(msg string) error {
		return awsjson.Errorf("InvalidZonalDeploymentConfigurationException", "%s", msg)
	}
	if v := z.FirstZoneMonitorDurationInSeconds; v != nil && *v < 0 {
		return bad("firstZoneMonitorDurationInSeconds must be 0 or more.")
	}
	if v := z.MonitorDurationInSeconds; v != nil && *v < 0 {
		return bad("monitorDurationInSeconds must be 0 or more.")
	}
	if p := z.MinimumHealthyHostsPerZone; p != nil {
		if p.Type == nil {
			return bad("minimumHealthyHostsPerZone needs a type and a value.")
		}
		if p.Value == nil {
			p.Value = new(int32(0)) // a zero the Go SDK left out
		}
		switch *p.Type {
		case cd.MinimumHealthyHostsPerZoneTypeHOSTCOUNT:
			if *p.Value < 0 {
				return bad("minimumHealthyHostsPerZone HOST_COUNT must be 0 or more.")
			}
		case cd.MinimumHealthyHostsPerZoneTypeFLEETPERCENT:
			if *p.Value < 0 || *p.Value > 99 {
				return bad("minimumHealthyHostsPerZone FLEET_PERCENT must be between 0 and 99.")
			}
		}
	}
	return nil
}

func checkTrafficRouting(t *cd.TrafficRoutingConfig) error {
	bad := func(msg string) error {
		return awsjson.Errorf("InvalidTrafficRoutingConfigurationException", "%s", msg)
	}
	switch deref(t.Type) {
	case cd.TrafficRoutingTypeAllAtOnce:
		if t.TimeBasedCanary != nil || t.TimeBasedLinear != nil {
			return bad("AllAtOnce takes no canary or linear settings.")
		}
	case cd.TrafficRoutingTypeTimeBasedCanary:
		c := t.TimeBasedCanary
		if c == nil || c.CanaryPercentage == nil || c.CanaryInterval == nil || t.TimeBasedLinear != nil {
			return bad("TimeBasedCanary needs timeBasedCanary with canaryPercentage and canaryInterval.")
		}
		if *c.CanaryPercentage < 1 || *c.CanaryPercentage > 99 || *c.CanaryInterval < 1 {
			return bad("canaryPercentage must be 1-99 and canaryInterval at least 1 minute.")
		}
	case cd.TrafficRoutingTypeTimeBasedLinear:
		l := t.TimeBasedLinear
		if l == nil || l.LinearPercentage == nil || l.LinearInterval == nil || t.TimeBasedCanary != nil {
			return bad("TimeBasedLinear needs timeBasedLinear with linearPercentage and linearInterval.")
		}
		if *l.LinearPercentage < 1 || *l.LinearPercentage > 99 || *l.LinearInterval < 1 {
			return bad("linearPercentage must be 1-99 and linearInterval at least 1 minute.")
		}
	default:
		return bad("trafficRoutingConfig needs a type: AllAtOnce, TimeBasedCanary or TimeBasedLinear.")
	}
	return nil
}

// GetDeploymentConfig implements the operation.
func (s *Server) GetDeploymentConfig(ctx context.Context, in *cd.GetDeploymentConfigInput) (*cd.GetDeploymentConfigOutput, error) {
	name, err := configName(in.DeploymentConfigName)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	var info *cd.DeploymentConfigInfo
	err = s.Store.View(ctx, func(tx store.Tx) error {
		info, err = LoadConfig(ctx, tx, sc.Account, sc.Region, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.GetDeploymentConfigOutput{DeploymentConfigInfo: info}, nil
}

// ListDeploymentConfigs lists custom and built-in configurations by name.
func (s *Server) ListDeploymentConfigs(ctx context.Context, in *cd.ListDeploymentConfigsInput) (*cd.ListDeploymentConfigsOutput, error) {
	var names []string
	for _, b := range builtins() {
		names = append(names, deref(b.DeploymentConfigName))
	}
	page, next, err := s.pageNames(ctx, "ListDeploymentConfigs", kindConfig, in.NextToken, names...)
	if err != nil {
		return nil, err
	}
	return &cd.ListDeploymentConfigsOutput{DeploymentConfigsList: page, NextToken: next}, nil
}

// DeleteDeploymentConfig deletes a custom configuration that no deployment
// group uses. Built-ins are refused with InvalidOperationException.
func (s *Server) DeleteDeploymentConfig(ctx context.Context, in *cd.DeleteDeploymentConfigInput) error {
	name, err := configName(in.DeploymentConfigName)
	if err != nil {
		return err
	}
	if strings.HasPrefix(name, builtinPrefix) {
		return awsjson.Errorf("InvalidOperationException", "The built-in deployment configuration %s cannot be deleted.", name)
	}
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		groups, err := tx.Scan(ctx, kindGroup, sc.prefix(), "", 0)
		if err != nil {
			return err
		}
		for _, g := range groups {
			var info cd.DeploymentGroupInfo
			if err := decodeInto(g.Value, &info); err != nil {
				return err
			}
			if deref(info.DeploymentConfigName) == name {
				return awsjson.Errorf("DeploymentConfigInUseException", "The deployment configuration %s is in use by deployment group %s/%s.", name, deref(info.ApplicationName), deref(info.DeploymentGroupName))
			}
		}
		if inUse, err := configInUseByDeployment(ctx, tx, sc, name); err != nil {
			return err
		} else if inUse != "" {
			return awsjson.Errorf("DeploymentConfigInUseException", "The deployment configuration %s is in use by active deployment %s.", name, inUse)
		}
		if _, err := tx.Delete(ctx, kindTags, sc.configArn(name)); err != nil {
			return err
		}
		_, err = tx.Delete(ctx, kindConfig, sc.prefix()+name)
		return err
	})
}

// activeKind is the store kind of the active-deployment markers:
// scope/deploymentId -> deployment config name (a configuration in use
// cannot be deleted). The deployment runner sets and clears them through
// MarkActive and ClearActive; this package owns the layout.
const activeKind = "activedeploy"

// MarkActive records, in the caller's transaction, that a deployment uses
// a deployment configuration until ClearActive.
func MarkActive(ctx context.Context, tx store.Tx, account, region, id, config string) error {
	return tx.Put(ctx, activeKind, ScopeKey(account, region)+id, []byte(config))
}

// ClearActive removes a deployment's marker.
func ClearActive(ctx context.Context, tx store.Tx, account, region, id string) error {
	_, err := tx.Delete(ctx, activeKind, ScopeKey(account, region)+id)
	return err
}

// IsActive reports whether a deployment's marker is set.
func IsActive(ctx context.Context, tx store.Tx, account, region, id string) (bool, error) {
	_, err := tx.Get(ctx, activeKind, ScopeKey(account, region)+id)
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

func configInUseByDeployment(ctx context.Context, tx store.Tx, sc scope, name string) (string, error) {
	items, err := tx.Scan(ctx, activeKind, sc.prefix(), "", 0)
	if err != nil {
		return "", err
	}
	for _, it := range items {
		if string(it.Value) == name {
			return it.Key[len(sc.prefix()):], nil
		}
	}
	return "", nil
}
