package server

import (
	"context"
	"crypto/rand"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/keys"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// serveAdmin serves Cutover's own operations, which CodeDeploy has no
// equivalent for (on AWS they belong to IAM): creating an access key, e.g.
// a host's during `cutover agent register`. Only admin keys get here.
func (s *Server) serveAdmin(ctx context.Context, op string, body []byte) (any, error) {
	switch op {
	case "CreateAccessKey":
		var in struct {
			UserName     string   `json:"UserName"`
			Role         string   `json:"Role"`
			Applications []string `json:"Applications"`
			Regions      []string `json:"Regions"`
			InstanceName string   `json:"InstanceName"`
		}
		if err := decodeAdmin(body, &in); err != nil {
			return nil, err
		}
		if in.UserName == "" {
			return nil, awsjson.Errorf("ValidationException", "UserName is required")
		}
		if in.Role == "" {
			return nil, awsjson.Errorf("ValidationException", "Role is required: admin, deployer, read-only or host")
		}
		c, _ := awsjson.CallerFrom(ctx)
		g := access.Grant{Role: access.Role(in.Role), Applications: in.Applications, Regions: in.Regions, Instance: in.InstanceName}
		if g.Role == access.Host {
			// A host key serves the region its registration was made in.
			g.Region = c.Region
		}
		created, err := s.Keys.CreateKey(ctx, keys.Spec{User: in.UserName, Account: c.Account, Grant: g})
		if err != nil {
			return nil, awsjson.Errorf("ValidationException", "%v", err)
		}
		return created, nil
	case "DeleteAccessKey":
		return s.deleteAccessKey(ctx, body)
	case "GetDeploymentGroupFleet":
		return s.getDeploymentGroupFleet(ctx, body)
	}
	return nil, awsjson.Errorf("UnknownOperationException", "unknown operation %s", op)
}
