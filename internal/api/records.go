package api

import (
	"context"
	"encoding/json"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/store"

	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

func groupKey(sc scope, app, group string) string { return appKey(sc, app) + "/" + group }

// renameGroupApp rewrites the application name stored in a group record.
func renameGroupApp(v []byte, app string) ([]byte, error) {
	var g cd.DeploymentGroupInfo
	if err := decodeInto(v, &g); err != nil {
		return nil, err
	}
	g.ApplicationName = &app
	return json.Marshal(g)
}

// InstanceOfCaller returns the on-premises instance registered with the
// caller's principal ARN, or "" for other callers.
func (s *Server) InstanceOfCaller(ctx context.Context) (string, error) {
	c, ok := awsjson.CallerFrom(ctx)
	if !ok || c.Principal == "" {
		return "", nil
	}
	sc := scopeOf(ctx)
	var name string
	err := s.Store.View(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, kindIamArn, sc.prefix()+c.Principal)
		if notFound(err) {
			return nil
		}
		name = string(b)
		return err
	})
	return name, err
}
