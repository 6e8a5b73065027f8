package deploy

import (
	"context"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/store"
)

// Fleet sources (GroupFleet.Source).
const (
	// FleetFromTags: the group's on-premises tag filters or tag set select
	// its instances, minus originals a blue/green deployment retired.
	FleetFromTags = "TAG_FILTERS"
	// FleetFromBlueGreen: the replacement instances of the group's last
	// successful blue/green deployment are its fleet, whatever its tag
	// filters say.
	FleetFromBlueGreen = "BLUE_GREEN_REPLACEMENT"
)

// GroupFleet is the set of instances a deployment group deploys to now.
//
// GetDeploymentGroup cannot show it: after a blue/green deployment with
// manually provisioned (DISCOVER_EXISTING) replacement instances AWS leaves
// the group's configuration as the user wrote it (only
// COPY_AUTO_SCALING_GROUP rewrites a group, swapping in the Auto Scaling
// group it created), so the tag filters it returns no longer describe the
// fleet. This is Cutover's own view of it.
type GroupFleet struct {
	ApplicationName     string   `json:"applicationName"`
	DeploymentGroupName string   `json:"deploymentGroupName"`
	Source              string   `json:"source"`
	Instances           []string `json:"instances"`
	// Retired are originals that left the fleet after a blue/green
	// deployment; tag filters no longer select them.
	Retired []string `json:"retired,omitempty"`
}

// GroupFleet returns a deployment group of the caller's account and region
// with its current fleet, answering the CodeDeploy exceptions for a missing
// application or group.
func (r *Runner) GroupFleet(ctx context.Context, app, group string) (*GroupFleet, error) {
	account, region := caller(ctx)
	out := &GroupFleet{ApplicationName: app, DeploymentGroupName: group, Source: FleetFromTags, Instances: []string{}}
	err := r.cfg.Store.View(ctx, func(tx store.Tx) error {
		if _, err := api.LoadApp(ctx, tx, account, region, app); err != nil {
			return err
		}
		g, err := api.LoadGroup(ctx, tx, account, region, app, group)
		if err != nil {
			return err
		}
		key := fleetKeyOf(account, region, deref(g.DeploymentGroupId))
		f, err := LoadFleet(ctx, tx, key)
		if err != nil {
			return err
		}
		if len(f.Members) > 0 {
			out.Source = FleetFromBlueGreen
		}
		out.Retired = f.Retired
		infos, err := groupFleet(ctx, tx, account, region, g, key)
		if err != nil {
			return err
		}
		for _, i := range infos {
			out.Instances = append(out.Instances, deref(i.InstanceName))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
