package server

import (
	"context"
	"errors"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

// getDeploymentGroupFleet serves the admin operation GetDeploymentGroupFleet
// (`cutover fleet`): the instances a group deploys to now, which
// GetDeploymentGroup cannot show (see deploy.GroupFleet).
func (s *Server) getDeploymentGroupFleet(ctx context.Context, body []byte) (*deploy.GroupFleet, error) {
	var in struct {
		ApplicationName     *string `json:"applicationName"`
		DeploymentGroupName *string `json:"deploymentGroupName"`
	}
	if err := modelcheck.Decode(body, &in); err != nil {
		var de *modelcheck.DecodeError
		if errors.As(err, &de) {
			err = de.Err
		}
		return nil, awsjson.Errorf("SerializationException", "%v", err)
	}
	app, group, err := api.AppAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	return s.Runner.GroupFleet(ctx, app, group)
}
