package api

import (
	"context"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/model/awstime"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// Store kinds of the resource records. Keys start with the scope prefix
// (account/region/), so two accounts or regions never see each other's.
const (
	kindApp      = "app"      // scope/app -> cd.ApplicationInfo
	kindGroup    = "dg"       // scope/app/group -> cd.DeploymentGroupInfo
	kindRevision = "revision" // scope/app/revisionKey -> revisionRecord
	kindConfig   = "config"   // scope/name -> cd.DeploymentConfigInfo (custom only)
	kindInstance = "instance" // scope/name -> cd.InstanceInfo
	kindIamArn   = "iamarn"   // scope/arn -> instance name (one ARN per instance)
	kindTags     = "tags"     // resource ARN -> []cd.Tag
	kindGitHub   = "github"   // scope/token name -> sealed token
)

// Limits from the CodeDeploy quotas.
const (
	maxApplications = 1000
	maxGroups       = 1000
	maxConfigs      = 50
	maxTags         = 50
)

func appKey(sc scope, app string) string { return sc.prefix() + app }

func (sc scope) appArn(app string) string { return sc.arn("application:" + app) }

// LoadApp reads an application or answers ApplicationDoesNotExistException.
func LoadApp(ctx context.Context, tx store.Tx, account, region, name string) (*cd.ApplicationInfo, error) {
	return loadApp(ctx, tx, scope{account, region}, name)
}

// loadApp reads an application or answers ApplicationDoesNotExistException.
func loadApp(ctx context.Context, tx store.Tx, sc scope, name string) (*cd.ApplicationInfo, error) {
	var app cd.ApplicationInfo
	err := getJSON(ctx, tx, kindApp, appKey(sc, name), &app)
	if notFound(err) {
		return nil, awsjson.Errorf("ApplicationDoesNotExistException", "No application found for name: %s", name)
	}
	if err != nil {
		return nil, err
	}
	return &app, nil
}

// CreateApplication implements the operation.
func (s *Server) CreateApplication(ctx context.Context, in *cd.CreateApplicationInput) (*cd.CreateApplicationOutput, error) {
	name, err := checkName(in.ApplicationName, "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name")
	if err != nil {
		return nil, err
	}
	platform := deref(in.ComputePlatform)
	if platform == "" {
		platform = cd.ComputePlatformServer
	}
	if err := checkTags(in.Tags, "InvalidTagsToAddException"); err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	app := cd.ApplicationInfo{
		ApplicationId:   str(newID()),
		ApplicationName: &name,
		CreateTime:      &awstime.Time{Time: s.now()},
		LinkedToGitHub:  new(false),
		ComputePlatform: &platform,
	}
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		existing, err := tx.Scan(ctx, kindApp, sc.prefix(), "", maxApplications)
		if err != nil {
			return err
		}
		if len(existing) >= maxApplications {
			return awsjson.Errorf("ApplicationLimitExceededException", "The limit of %d applications was reached.", maxApplications)
		}
		if err := insertJSON(ctx, tx, kindApp, appKey(sc, name), app); err != nil {
			if err == store.ErrExists {
				return awsjson.Errorf("ApplicationAlreadyExistsException", "Application %s already exists.", name)
			}
			return err
		}
		if len(in.Tags) > 0 {
			return putJSON(ctx, tx, kindTags, sc.appArn(name), in.Tags)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &cd.CreateApplicationOutput{ApplicationId: app.ApplicationId}, nil
}

// GetApplication implements the operation.
func (s *Server) GetApplication(ctx context.Context, in *cd.GetApplicationInput) (*cd.GetApplicationOutput, error) {
	name, err := checkName(in.ApplicationName, "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name")
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	return cachedView(ctx, s, []string{"GetApplication", sc.Account, sc.Region, name}, func() (*cd.GetApplicationOutput, error) {
		b, err := store.Get(ctx, s.Store, kindApp, appKey(sc, name))
		if notFound(err) {
			return nil, awsjson.Errorf("ApplicationDoesNotExistException", "No application found for name: %s", name)
		}
		if err != nil {
			return nil, err
		}
		var app cd.ApplicationInfo
		if err := decodeInto(b, &app); err != nil {
			return nil, err
		}
		return &cd.GetApplicationOutput{Application: &app}, nil
	})
}

// BatchGetApplications implements the operation.
func (s *Server) BatchGetApplications(ctx context.Context, in *cd.BatchGetApplicationsInput) (*cd.BatchGetApplicationsOutput, error) {
	if len(in.ApplicationNames) == 0 {
		return nil, awsjson.Errorf("ApplicationNameRequiredException", "The application names must be specified.")
	}
	if len(in.ApplicationNames) > 100 {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (100) was exceeded.")
	}
	for i := range in.ApplicationNames {
		if _, err := checkName(&in.ApplicationNames[i], "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name"); err != nil {
			return nil, err
		}
	}
	sc := scopeOf(ctx)
	out := &cd.BatchGetApplicationsOutput{ApplicationsInfo: []cd.ApplicationInfo{}}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		for _, n := range in.ApplicationNames {
			app, err := loadApp(ctx, tx, sc, n)
			if err != nil {
				return err
			}
			out.ApplicationsInfo = append(out.ApplicationsInfo, *app)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListApplications implements the operation.
func (s *Server) ListApplications(ctx context.Context, in *cd.ListApplicationsInput) (*cd.ListApplicationsOutput, error) {
	page, next, err := s.pageNames(ctx, "ListApplications", kindApp, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cd.ListApplicationsOutput{Applications: page, NextToken: next}, nil
}

// UpdateApplication renames an application, carrying its deployment
// groups, revisions and tags to the new name.
func (s *Server) UpdateApplication(ctx context.Context, in *cd.UpdateApplicationInput) error {
	old, err := checkName(in.ApplicationName, "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name")
	if err != nil {
		return err
	}
	if in.NewApplicationName == nil {
		return nil // nothing to change
	}
	name, err := checkName(in.NewApplicationName, "ApplicationNameRequiredException", "InvalidApplicationNameException", "new application name")
	if err != nil {
		return err
	}
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		app, err := loadApp(ctx, tx, sc, old)
		if err != nil {
			return err
		}
		if old == name {
			return nil
		}
		if _, err := tx.Get(ctx, kindApp, appKey(sc, name)); err == nil {
			return awsjson.Errorf("ApplicationAlreadyExistsException", "Application %s already exists.", name)
		} else if !notFound(err) {
			return err
		}
		app.ApplicationName = &name
		if _, err := tx.Delete(ctx, kindApp, appKey(sc, old)); err != nil {
			return err
		}
		if err := putJSON(ctx, tx, kindApp, appKey(sc, name), app); err != nil {
			return err
		}
		if err := moveTags(ctx, tx, sc.appArn(old), sc.appArn(name)); err != nil {
			return err
		}
		for _, kind := range []string{kindGroup, kindRevision} {
			if err := movePrefix(ctx, tx, kind, appKey(sc, old)+"/", appKey(sc, name)+"/", func(rest string, v []byte) ([]byte, error) {
				if kind != kindGroup {
					return v, nil
				}
				if err := moveTags(ctx, tx, sc.groupArn(old, rest), sc.groupArn(name, rest)); err != nil {
					return nil, err
				}
				return renameGroupApp(v, name)
			}); err != nil {
				return err
			}
		}
		if s.OnRename != nil {
			return s.OnRename(ctx, tx, sc.Account, sc.Region, old, "", name, "")
		}
		return nil
	})
}

// DeleteApplication removes an application with its deployment groups,
// revisions and tags. Deleting a missing application succeeds, as the
// model lists no DoesNotExist error for it.
func (s *Server) DeleteApplication(ctx context.Context, in *cd.DeleteApplicationInput) error {
	name, err := checkName(in.ApplicationName, "ApplicationNameRequiredException", "InvalidApplicationNameException", "application name")
	if err != nil {
		return err
	}
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Delete(ctx, kindApp, appKey(sc, name)); err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, kindTags, sc.appArn(name)); err != nil {
			return err
		}
		groups, err := tx.Scan(ctx, kindGroup, appKey(sc, name)+"/", "", 0)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if _, err := tx.Delete(ctx, kindTags, sc.groupArn(name, g.Key[len(appKey(sc, name))+1:])); err != nil {
				return err
			}
		}
		for _, kind := range []string{kindGroup, kindRevision} {
			if err := deletePrefix(ctx, tx, kind, appKey(sc, name)+"/"); err != nil {
				return err
			}
		}
		if s.OnDeleteApplication != nil {
			return s.OnDeleteApplication(ctx, tx, sc.Account, sc.Region, name)
		}
		return nil
	})
}

// deletePrefix removes every record of kind under prefix.
func deletePrefix(ctx context.Context, tx store.Tx, kind, prefix string) error {
	items, err := tx.Scan(ctx, kind, prefix, "", 0)
	if err != nil {
		return err
	}
	for _, it := range items {
		if _, err := tx.Delete(ctx, kind, it.Key); err != nil {
			return err
		}
	}
	return nil
}

// movePrefix re-keys every record of kind under from to the same suffix
// under to, passing each value through fix.
func movePrefix(ctx context.Context, tx store.Tx, kind, from, to string, fix func(rest string, v []byte) ([]byte, error)) error {
	items, err := tx.Scan(ctx, kind, from, "", 0)
	if err != nil {
		return err
	}
	for _, it := range items {
		rest := it.Key[len(from):]
		v, err := fix(rest, it.Value)
		if err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, kind, it.Key); err != nil {
			return err
		}
		if err := tx.Put(ctx, kind, to+rest, v); err != nil {
			return err
		}
	}
	return nil
}
