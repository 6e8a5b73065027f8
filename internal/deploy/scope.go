package deploy

import (
	"context"
	"errors"
	"strings"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/store"
)

// DeploymentGroupOf returns the application and deployment group a
// deployment of the account and region was created for (ok false if the
// scope has no such deployment). Access checks of keys limited to some
// applications use it.
func (r *Runner) DeploymentGroupOf(ctx context.Context, account, region, id string) (app, group string, ok bool, err error) {
	b, err := store.Get(ctx, r.cfg.Store, kindDepIndex, api.ScopeKey(account, region)+id)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	app, group, _ = strings.Cut(string(b), "/")
	return app, group, true, nil
}
