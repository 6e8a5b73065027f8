package server

import (
	"context"
	"errors"

	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/sigv4"
)

// keyLookup resolves access keys for the SigV4 verifier. In open mode
// (Config.Open, set only by `cutover dev`) an access key id the server does
// not know is accepted, with any well-formed signature, as the root
// account's administrator: pipelines and test suites written for AWS
// emulators sign with throwaway credentials such as test/test, as LocalStack
// and moto accept. Keys the server knows are still verified, so an agent's
// key keeps identifying its instance, and a revoked key stays refused.
// `cutover server` has no way to set it.
func (s *Server) keyLookup() func(context.Context, string) (sigv4.Credentials, error) {
	if !s.cfg.Open {
		return s.lookupKey
	}
	return func(ctx context.Context, id string) (sigv4.Credentials, error) {
		c, err := s.lookupKey(ctx, id)
		// A revoked key, or one whose secret cannot be opened, exists:
		// it stays refused rather than becoming the root administrator.
		if !errors.Is(err, sigv4.ErrUnknownKey) || errors.Is(err, keys.ErrRevoked) || errors.Is(err, keys.ErrUnopenable) {
			return c, err
		}
		return sigv4.Credentials{
			AccessKeyID:  id,
			Account:      s.cfg.RootAccount,
			PrincipalARN: "arn:aws:iam::" + s.cfg.RootAccount + ":root",
			AnySignature: true,
		}, nil
	}
}
