package server

import (
	"context"
	"crypto/rand"

	"github.com/cutoverhq/cutover/internal/awsjson"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// serveAdmin serves Cutover's own operations, which CodeDeploy has no
// equivalent for (on AWS they belong to IAM): creating an access key for a
// host during `cutover agent register`.
func (s *Server) serveAdmin(ctx context.Context, op string, body []byte) (any, error) {
	if name, err := s.API.InstanceOfCaller(ctx); err != nil {
		return nil, err
	} else if name != "" {
		return nil, awsjson.Errorf("AccessDeniedException", "instance keys cannot create access keys")
	}
	switch op {
	case "CreateAccessKey":
		var in struct {
			UserName string `json:"UserName"`
		}
		if err := decodeAdmin(body, &in); err != nil {
			return nil, err
		}
		if in.UserName == "" {
			return nil, awsjson.Errorf("ValidationException", "UserName is required")
		}
		c, _ := awsjson.CallerFrom(ctx)
		created, err := s.Keys.Create(ctx, in.UserName, c.Account)
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
