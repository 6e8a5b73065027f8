package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/keys"
)

// deleteAccessKey revokes a key of the caller's account: `cutover agent
// register` takes back the key it made when registering the host fails.
func (s *Server) deleteAccessKey(ctx context.Context, body []byte) (any, error) {
	var in struct {
		AccessKeyID string `json:"AccessKeyId"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, awsjson.Errorf("SerializationException", "%v", err)
	}
	if in.AccessKeyID == "" {
		return nil, awsjson.Errorf("ValidationException", "AccessKeyId is required")
	}
	c, _ := awsjson.CallerFrom(ctx)
	// Get, not Lookup: revoking needs no secret, so a key sealed under
	// another server key can still be taken back.
	k, err := s.Keys.Get(ctx, in.AccessKeyID)
	// Another account's key is reported as missing: its existence is not
	// this caller's to learn.
	if errors.Is(err, keys.ErrNotFound) || (err == nil && k.Account != c.Account) {
		return nil, awsjson.Errorf("NoSuchEntity", "The Access Key with id %s cannot be found.", in.AccessKeyID)
	}
	if err != nil {
		return nil, err
	}
	if in.AccessKeyID == c.AccessKeyID {
		return nil, awsjson.Errorf("ValidationException", "a key cannot delete itself")
	}
	if err := s.Keys.Revoke(ctx, in.AccessKeyID); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
