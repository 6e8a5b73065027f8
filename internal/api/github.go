package api

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

func decodeInto(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

const maxGitHubTokens = 25

// AddGitHubToken stores a GitHub token under a name for an account and
// region; the cutover CLI calls it (CodeDeploy has no API to add one).
func AddGitHubToken(ctx context.Context, st store.Store, sealer Sealer, account, region, name, token string) error {
	if !tokenNameRE.MatchString(name) {
		return fmt.Errorf("invalid token name %q: 1-100 of A-Z a-z 0-9 . _ -", name)
	}
	if token == "" {
		return fmt.Errorf("empty token")
	}
	key := ScopeKey(account, region) + name
	sealed, err := sealer.Seal([]byte(token), kindGitHub+":"+key)
	if err != nil {
		return err
	}
	return st.Update(ctx, func(tx store.Tx) error {
		items, err := tx.Scan(ctx, kindGitHub, ScopeKey(account, region), "", 0)
		if err != nil {
			return err
		}
		if len(items) >= maxGitHubTokens {
			return fmt.Errorf("an account holds at most %d GitHub tokens", maxGitHubTokens)
		}
		return tx.Put(ctx, kindGitHub, key, []byte(sealed))
	})
}

// GitHubToken returns a stored token in clear, for deployment specs.
func GitHubToken(ctx context.Context, tx store.Tx, sealer Sealer, account, region, name string) (string, error) {
	key := ScopeKey(account, region) + name
	b, err := tx.Get(ctx, kindGitHub, key)
	if err != nil {
		return "", err
	}
	tok, err := sealer.Open(string(b), kindGitHub+":"+key)
	return string(tok), err
}

// ListGitHubAccountTokenNames implements the operation.
func (s *Server) ListGitHubAccountTokenNames(ctx context.Context, in *cd.ListGitHubAccountTokenNamesInput) (*cd.ListGitHubAccountTokenNamesOutput, error) {
	page, next, err := s.pageNames(ctx, "ListGitHubAccountTokenNames", kindGitHub, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cd.ListGitHubAccountTokenNamesOutput{TokenNameList: page, NextToken: next}, nil
}

// DeleteGitHubAccountToken implements the operation.
func (s *Server) DeleteGitHubAccountToken(ctx context.Context, in *cd.DeleteGitHubAccountTokenInput) (*cd.DeleteGitHubAccountTokenOutput, error) {
	name := deref(in.TokenName)
	if name == "" {
		return nil, awsjson.Errorf("GitHubAccountTokenNameRequiredException", "The GitHub account token name must be specified.")
	}
	if !tokenNameRE.MatchString(name) {
		return nil, awsjson.Errorf("InvalidGitHubAccountTokenNameException", "The GitHub account token name %q is not valid.", name)
	}
	sc := scopeOf(ctx)
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		ok, err := tx.Delete(ctx, kindGitHub, sc.prefix()+name)
		if err == nil && !ok {
			return awsjson.Errorf("GitHubAccountTokenDoesNotExistException", "No GitHub account token found for name: %s", name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.DeleteGitHubAccountTokenOutput{TokenName: &name}, nil
}

// DeleteResourcesByExternalId implements the operation. External IDs tie
// resources to CloudFormation stacks, which do not exist here, so no
// resource carries one and there is nothing to delete; the call succeeds
// as it does on AWS for an ID without resources.
func (s *Server) DeleteResourcesByExternalId(ctx context.Context, in *cd.DeleteResourcesByExternalIdInput) (*cd.DeleteResourcesByExternalIdOutput, error) {
	return &cd.DeleteResourcesByExternalIdOutput{}, nil
}
