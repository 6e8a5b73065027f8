package api

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

func (sc scope) groupArn(app, group string) string {
	return sc.arn("deploymentgroup:" + app + "/" + group)
}

func (sc scope) configArn(name string) string { return sc.arn("deploymentconfig:" + name) }

// checkTags validates resource tags (key 1-128, value 0-256 characters).
func checkTags(tags []cd.Tag, exception string) error {
	if len(tags) > maxTags {
		return awsjson.Errorf(exception, "A resource can have at most %d tags.", maxTags)
	}
	for _, t := range tags {
		k := deref(t.Key)
		if k == "" || utf8.RuneCountInString(k) > 128 {
			return awsjson.Errorf(exception, "Tag keys must be 1 to 128 characters long.")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return awsjson.Errorf(exception, "Tag keys may not begin with the reserved prefix aws:.")
		}
		if utf8.RuneCountInString(deref(t.Value)) > 256 {
			return awsjson.Errorf(exception, "Tag values must be at most 256 characters long.")
		}
	}
	return nil
}

func moveTags(ctx context.Context, tx store.Tx, from, to string) error {
	b, err := tx.Get(ctx, kindTags, from)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.Delete(ctx, kindTags, from); err != nil {
		return err
	}
	return tx.Put(ctx, kindTags, to, b)
}

// resolveArn checks that an ARN names an existing application, deployment
// group or deployment config of the caller and returns its canonical form.
// An ARN without an account (arn:aws:codedeploy:REGION::application:NAME,
// as the Terraform provider builds with skip_requesting_account_id) names
// the caller's own account. For list (ListTagsForResource, whose model has
// no DoesNotExist error) a missing resource of the caller's is an
// InvalidArnException, never a silent empty list; an ARN of another
// account or region is nothing the caller may see and lists as no tags.
func resolveArn(ctx context.Context, tx store.Tx, sc scope, arn *string, list bool) (string, error) {
	if arn == nil || *arn == "" {
		return "", awsjson.Errorf("ResourceArnRequiredException", "The ARN of a resource is required.")
	}
	unsupported := awsjson.Errorf("ArnNotSupportedException", "The specified ARN %q is not supported: only CodeDeploy applications, deployment groups and deployment configurations can be tagged.", *arn)
	// arn:partition:service:region:account:resource — the resource part may
	// itself hold colons or slashes, and other services' ARNs have other
	// shapes, so check the common prefix before the CodeDeploy form.
	head := strings.SplitN(*arn, ":", 6)
	if len(head) != 6 || head[0] != "arn" || head[1] == "" || head[2] == "" || head[5] == "" {
		return "", awsjson.Errorf("InvalidArnException", "The specified ARN %q is not in a valid format.", *arn)
	}
	if head[2] != "codedeploy" {
		return "", unsupported
	}
	typ, name, ok := strings.Cut(head[5], ":")
	if !ok {
		return "", unsupported // e.g. instance/<name>
	}
	if head[4] == "" {
		head[4] = sc.Account
	}
	if head[3] != sc.Region || head[4] != sc.Account {
		// Another account or region: nothing the caller can see.
		if list {
			return "", nil // lists as no tags
		}
		return "", notFoundFor(typ, name)
	}
	missing := func(err error) error {
		var ae *awsjson.Error
		if list && errors.As(err, &ae) && strings.HasSuffix(ae.Type, "DoesNotExistException") {
			return awsjson.Errorf("InvalidArnException", "The specified ARN %q names no existing resource: %s", *arn, ae.Message)
		}
		return err
	}
	switch typ {
	case "application":
		if !nameRE.MatchString(name) {
			return "", awsjson.Errorf("InvalidArnException", "The specified ARN %q is not in a valid format.", *arn)
		}
		if _, err := loadApp(ctx, tx, sc, name); err != nil {
			return "", missing(err)
		}
	case "deploymentgroup":
		app, group, ok := strings.Cut(name, "/")
		if !ok || !nameRE.MatchString(app) || !nameRE.MatchString(group) {
			return "", awsjson.Errorf("InvalidArnException", "The specified ARN %q is not in a valid format.", *arn)
		}
		if _, err := tx.Get(ctx, kindGroup, groupKey(sc, app, group)); notFound(err) {
			return "", missing(notFoundFor(typ, name))
		} else if err != nil {
			return "", err
		}
	case "deploymentconfig":
		if !nameRE.MatchString(name) {
			return "", awsjson.Errorf("InvalidArnException", "The specified ARN %q is not in a valid format.", *arn)
		}
		if _, ok := builtinConfig(name); !ok {
			if _, err := tx.Get(ctx, kindConfig, sc.prefix()+name); notFound(err) {
				return "", missing(notFoundFor(typ, name))
			} else if err != nil {
				return "", err
			}
		}
	default:
		return "", awsjson.Errorf("ArnNotSupportedException", "The specified ARN %q is not supported: only CodeDeploy applications, deployment groups and deployment configurations can be tagged.", *arn)
	}
	return strings.Join(head, ":"), nil
}

func notFoundFor(typ, name string) error {
	switch typ {
	case "deploymentgroup":
		return awsjson.Errorf("DeploymentGroupDoesNotExistException", "No deployment group found for name: %s", name)
	case "deploymentconfig":
		return awsjson.Errorf("DeploymentConfigDoesNotExistException", "No deployment configuration found for name: %s", name)
	case "application":
		return awsjson.Errorf("ApplicationDoesNotExistException", "No application found for name: %s", name)
	}
	return awsjson.Errorf("ArnNotSupportedException", "The specified ARN is not supported.")
}

func readTags(ctx context.Context, tx store.Tx, arn string) ([]cd.Tag, error) {
	var tags []cd.Tag
	err := getJSON(ctx, tx, kindTags, arn, &tags)
	if notFound(err) {
		return nil, nil
	}
	return tags, err
}

// TagResource implements the operation: new keys are added, existing keys
// get the new value.
func (s *Server) TagResource(ctx context.Context, in *cd.TagResourceInput) (*cd.TagResourceOutput, error) {
	if len(in.Tags) == 0 {
		if in.ResourceArn == nil {
			return nil, awsjson.Errorf("ResourceArnRequiredException", "The ARN of a resource is required.")
		}
		return nil, awsjson.Errorf("TagRequiredException", "A tag was not specified.")
	}
	if err := checkTags(in.Tags, "InvalidTagsToAddException"); err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		arn, err := resolveArn(ctx, tx, sc, in.ResourceArn, false)
		if err != nil {
			return err
		}
		tags, err := readTags(ctx, tx, arn)
		if err != nil {
			return err
		}
		for _, t := range in.Tags {
			i := slices.IndexFunc(tags, func(x cd.Tag) bool { return deref(x.Key) == deref(t.Key) })
			if i >= 0 {
				tags[i] = t
			} else {
				tags = append(tags, t)
			}
		}
		if len(tags) > maxTags {
			return awsjson.Errorf("InvalidTagsToAddException", "A resource can have at most %d tags.", maxTags)
		}
		return putJSON(ctx, tx, kindTags, arn, tags)
	})
	if err != nil {
		return nil, err
	}
	return &cd.TagResourceOutput{}, nil
}

// UntagResource implements the operation.
func (s *Server) UntagResource(ctx context.Context, in *cd.UntagResourceInput) (*cd.UntagResourceOutput, error) {
	if len(in.TagKeys) == 0 {
		if in.ResourceArn == nil {
			return nil, awsjson.Errorf("ResourceArnRequiredException", "The ARN of a resource is required.")
		}
		return nil, awsjson.Errorf("TagRequiredException", "A tag key was not specified.")
	}
	sc := scopeOf(ctx)
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		arn, err := resolveArn(ctx, tx, sc, in.ResourceArn, false)
		if err != nil {
			return err
		}
		tags, err := readTags(ctx, tx, arn)
		if err != nil {
			return err
		}
		tags = slices.DeleteFunc(tags, func(t cd.Tag) bool { return slices.Contains(in.TagKeys, deref(t.Key)) })
		if len(tags) == 0 {
			_, err := tx.Delete(ctx, kindTags, arn)
			return err
		}
		return putJSON(ctx, tx, kindTags, arn, tags)
	})
	if err != nil {
		return nil, err
	}
	return &cd.UntagResourceOutput{}, nil
}

// ListTagsForResource implements the operation (tags sorted by key).
func (s *Server) ListTagsForResource(ctx context.Context, in *cd.ListTagsForResourceInput) (*cd.ListTagsForResourceOutput, error) {
	sc := scopeOf(ctx)
	var tags []cd.Tag
	err := s.Store.View(ctx, func(tx store.Tx) error {
		arn, err := resolveArn(ctx, tx, sc, in.ResourceArn, true)
		if err != nil {
			return err
		}
		if arn == "" {
			return nil
		}
		tags, err = readTags(ctx, tx, arn)
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(tags, func(i, j int) bool { return deref(tags[i].Key) < deref(tags[j].Key) })
	keys := make([]string, len(tags))
	byKey := map[string]cd.Tag{}
	for i, t := range tags {
		keys[i] = deref(t.Key)
		byKey[keys[i]] = t
	}
	page, next, err := s.page("ListTagsForResource", keys, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &cd.ListTagsForResourceOutput{Tags: []cd.Tag{}, NextToken: next}
	for _, k := range page {
		out.Tags = append(out.Tags, byKey[k])
	}
	return out, nil
}
