package server

import (
	"context"
	"errors"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

// decodeAdmin reads an admin operation's body as the CodeDeploy operations
// read theirs: members match exactly, errors name the member.
func decodeAdmin(body []byte, in any) error {
	if err := modelcheck.Decode(body, in); err != nil {
		var de *modelcheck.DecodeError
		if errors.As(err, &de) {
			err = de.Err
		}
		return awsjson.Errorf("SerializationException", "%v", err)
	}
	return nil
}

// getDeploymentGroupFleet serves the admin operation GetDeploymentGroupFleet
// (`cutover fleet`): the instances a group deploys to now, which
// GetDeploymentGroup cannot show (see deploy.GroupFleet).
func (s *Server) getDeploymentGroupFleet(ctx context.Context, body []byte) (*deploy.GroupFleet, error) {
	var in struct {
		ApplicationName     *string `json:"applicationName"`
		DeploymentGroupName *string `json:"deploymentGroupName"`
	}
	if err := decodeAdmin(body, &in); err != nil {
		return nil, err
	}
	app, group, err := api.AppAndGroup(in.ApplicationName, in.DeploymentGroupName)
	if err != nil {
		return nil, err
	}
	return s.Runner.GroupFleet(ctx, app, group)
}
