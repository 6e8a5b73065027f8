package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/model/awstime"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// Revision records are cd.RevisionInfo: the normalized location and its
// GenericRevisionInfo. deploymentGroups is not stored but derived from the
// groups' targetRevision on every read, so it cannot go stale.

const (
	maxRevisionDescription = 256 // the deployment description quota; AWS states none for revisions
	maxBatchRevisions      = 25
)

var (
	gitHubRepoRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	gitHubCommitRE = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
)

func invalidRevision(format string, args ...any) error {
	return awsjson.Errorf("InvalidRevisionException", format, args...)
}

// revisionType is the declared type, or the type of the only location
// given when the type is left out.
func revisionType(r *cd.RevisionLocation) string {
	if t := deref(r.RevisionType); t != "" {
		return t
	}
	var found []string
	if r.S3Location != nil {
		found = append(found, cd.RevisionLocationTypeS3)
	}
	if r.GitHubLocation != nil {
		found = append(found, cd.RevisionLocationTypeGitHub)
	}
	//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
	if r.String != nil {
		found = append(found, cd.RevisionLocationTypeString)
	}
	if r.AppSpecContent != nil {
		found = append(found, cd.RevisionLocationTypeAppSpecContent)
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

// normalizeRevision validates a revision location and returns it with its
// type set and only the location of that type.
func normalizeRevision(r *cd.RevisionLocation) (*cd.RevisionLocation, error) {
	//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
	if r == nil || (r.RevisionType == nil && r.S3Location == nil && r.GitHubLocation == nil && r.String == nil && r.AppSpecContent == nil) {
		return nil, awsjson.Errorf("RevisionRequiredException", "The revision must be specified.")
	}
	typ := revisionType(r)
	out := &cd.RevisionLocation{RevisionType: &typ}
	switch typ {
	case cd.RevisionLocationTypeS3:
		l := r.S3Location
		if l == nil || deref(l.Bucket) == "" || deref(l.Key) == "" || deref(l.BundleType) == "" {
			return nil, invalidRevision("An S3 revision needs s3Location with bucket, key and bundleType.")
		}
		if !cd.ValidBundleType(*l.BundleType) {
			return nil, invalidRevision("The bundle type %q is not valid: use tar, tgz, zip, YAML or JSON.", *l.BundleType)
		}
		c := *l
		out.S3Location = &c
	case cd.RevisionLocationTypeGitHub:
		l := r.GitHubLocation
		if l == nil || !gitHubRepoRE.MatchString(deref(l.Repository)) {
			return nil, invalidRevision("A GitHub revision needs gitHubLocation with a repository of the form owner/repository.")
		}
		if !gitHubCommitRE.MatchString(deref(l.CommitId)) {
			return nil, invalidRevision("The GitHub commit ID %q is not a full 40-character SHA.", deref(l.CommitId))
		}
		out.GitHubLocation = &cd.GitHubLocation{Repository: l.Repository, CommitId: str(strings.ToLower(*l.CommitId))}
	case cd.RevisionLocationTypeString:
		//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
		l := r.String
		if l == nil || deref(l.Content) == "" {
			return nil, invalidRevision("A String revision needs string.content.")
		}
		if err := checkSha256(*l.Content, l.Sha256); err != nil {
			return nil, err
		}
		c := *l
		//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
		out.String = &c
	case cd.RevisionLocationTypeAppSpecContent:
		l := r.AppSpecContent
		if l == nil || deref(l.Content) == "" {
			return nil, invalidRevision("An AppSpecContent revision needs appSpecContent.content.")
		}
		if err := checkSha256(*l.Content, l.Sha256); err != nil {
			return nil, err
		}
		c := *l
		out.AppSpecContent = &c
	default:
		return nil, invalidRevision("The revision needs a revisionType (S3, GitHub, String or AppSpecContent) and its location.")
	}
	return out, nil
}

func checkSha256(content string, sum *string) error {
	if sum == nil {
		return nil
	}
	got := sha256.Sum256([]byte(content))
	if !strings.EqualFold(*sum, hex.EncodeToString(got[:])) {
		return invalidRevision("The sha256 %q does not match the content.", *sum)
	}
	return nil
}

// RevisionKey returns the store key suffix of a revision: a digest of its
// full location (for S3 bucket, key, bundleType, version and eTag), so two
// locations share a key exactly when they name the same revision. Callers
// pass a validated location; a missing revisionType is inferred.
func RevisionKey(r *cd.RevisionLocation) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	typ := revisionType(r)
	field(typ)
	switch typ {
	case cd.RevisionLocationTypeS3:
		if l := r.S3Location; l != nil {
			field(deref(l.Bucket))
			field(deref(l.Key))
			field(deref(l.BundleType))
			field(deref(l.Version))
			field(deref(l.ETag))
		}
	case cd.RevisionLocationTypeGitHub:
		if l := r.GitHubLocation; l != nil {
			field(deref(l.Repository))
			field(strings.ToLower(deref(l.CommitId)))
		}
	case cd.RevisionLocationTypeString:
		//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
		if l := r.String; l != nil {
			field(deref(l.Content))
		}
	case cd.RevisionLocationTypeAppSpecContent:
		if l := r.AppSpecContent; l != nil {
			field(deref(l.Content))
		}
	}
	return strings.ToLower(typ) + "-" + hex.EncodeToString(h.Sum(nil))
}

func revisionKey(sc scope, app string, r *cd.RevisionLocation) string {
	return appKey(sc, app) + "/" + RevisionKey(r)
}

// TouchRevision records that a deployment of group uses a revision:
// it registers the revision if it is new (CreateDeployment registers
// revisions implicitly, as on AWS) and sets firstUsedTime and
// lastUsedTime. The group's target revision, which makes the revision
// "deployed", is recorded separately through SaveGroup on success.
func TouchRevision(ctx context.Context, tx store.Tx, account, region, app string, r *cd.RevisionLocation, now time.Time, group string) error {
	loc, err := normalizeRevision(r)
	if err != nil {
		return err
	}
	sc := scope{account, region}
	if _, err := loadApp(ctx, tx, sc, app); err != nil {
		return err
	}
	key := revisionKey(sc, app, loc)
	var rec cd.RevisionInfo
	err = getJSON(ctx, tx, kindRevision, key, &rec)
	switch {
	case notFound(err):
		rec = cd.RevisionInfo{RevisionLocation: loc, GenericRevisionInfo: &cd.GenericRevisionInfo{RegisterTime: &awstime.Time{Time: now.UTC()}}}
	case err != nil:
		return fmt.Errorf("touch revision for group %s: %w", group, err)
	}
	if rec.GenericRevisionInfo == nil {
		rec.GenericRevisionInfo = &cd.GenericRevisionInfo{}
	}
	if rec.GenericRevisionInfo.FirstUsedTime == nil {
		rec.GenericRevisionInfo.FirstUsedTime = &awstime.Time{Time: now.UTC()}
	}
	rec.GenericRevisionInfo.LastUsedTime = &awstime.Time{Time: now.UTC()}
	return putJSON(ctx, tx, kindRevision, key, rec)
}

// RegisterApplicationRevision registers a revision. Registering one that
// exists keeps its times and replaces its description when one is given.
func (s *Server) RegisterApplicationRevision(ctx context.Context, in *cd.RegisterApplicationRevisionInput) error {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(deref(in.Description)) > maxRevisionDescription {
		return awsjson.Errorf("DescriptionTooLongException", "The description is too long: at most %d characters.", maxRevisionDescription)
	}
	loc, err := normalizeRevision(in.Revision)
	if err != nil {
		return err
	}
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		key := revisionKey(sc, app, loc)
		var rec cd.RevisionInfo
		err := getJSON(ctx, tx, kindRevision, key, &rec)
		switch {
		case notFound(err):
			rec = cd.RevisionInfo{RevisionLocation: loc, GenericRevisionInfo: &cd.GenericRevisionInfo{RegisterTime: &awstime.Time{Time: s.now()}}}
		case err != nil:
			return err
		}
		if in.Description != nil {
			rec.GenericRevisionInfo.Description = in.Description
		}
		return putJSON(ctx, tx, kindRevision, key, rec)
	})
}

// deployedRevisions maps the revision keys that are some group's target
// revision to those groups' names (sorted).
func deployedRevisions(ctx context.Context, tx store.Tx, sc scope, app string) (map[string][]string, error) {
	items, err := tx.Scan(ctx, kindGroup, appKey(sc, app)+"/", "", 0)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, it := range items {
		var g cd.DeploymentGroupInfo
		if err := decodeInto(it.Value, &g); err != nil {
			return nil, err
		}
		if g.TargetRevision != nil {
			k := RevisionKey(g.TargetRevision)
			out[k] = append(out[k], deref(g.DeploymentGroupName))
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}

// loadRevision reads a revision with its derived deploymentGroups, or
// answers RevisionDoesNotExistException.
func loadRevision(ctx context.Context, tx store.Tx, sc scope, app string, loc *cd.RevisionLocation, deployed map[string][]string) (*cd.RevisionInfo, error) {
	var rec cd.RevisionInfo
	err := getJSON(ctx, tx, kindRevision, revisionKey(sc, app, loc), &rec)
	if notFound(err) {
		return nil, awsjson.Errorf("RevisionDoesNotExistException", "No application revision found for this location in application %s.", app)
	}
	if err != nil {
		return nil, err
	}
	withGroups(&rec, deployed)
	return &rec, nil
}

func withGroups(rec *cd.RevisionInfo, deployed map[string][]string) {
	if rec.GenericRevisionInfo == nil {
		rec.GenericRevisionInfo = &cd.GenericRevisionInfo{}
	}
	rec.GenericRevisionInfo.DeploymentGroups = deployed[RevisionKey(rec.RevisionLocation)]
}

// GetApplicationRevision implements the operation. The location must match
// the registered one in full (SERVICE-SEMANTICS §8.6).
func (s *Server) GetApplicationRevision(ctx context.Context, in *cd.GetApplicationRevisionInput) (*cd.GetApplicationRevisionOutput, error) {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	loc, err := normalizeRevision(in.Revision)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	var rec *cd.RevisionInfo
	err = s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		deployed, err := deployedRevisions(ctx, tx, sc, app)
		if err != nil {
			return err
		}
		rec, err = loadRevision(ctx, tx, sc, app, loc, deployed)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.GetApplicationRevisionOutput{ApplicationName: &app, Revision: rec.RevisionLocation, RevisionInfo: rec.GenericRevisionInfo}, nil
}

// BatchGetApplicationRevisions returns the revisions found, in request
// order; the missing ones are reported in errorMessage.
func (s *Server) BatchGetApplicationRevisions(ctx context.Context, in *cd.BatchGetApplicationRevisionsInput) (*cd.BatchGetApplicationRevisionsOutput, error) {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	if len(in.Revisions) == 0 {
		return nil, awsjson.Errorf("RevisionRequiredException", "The revisions must be specified.")
	}
	if len(in.Revisions) > maxBatchRevisions {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of revisions allowed for this request (%d) was exceeded.", maxBatchRevisions)
	}
	locs := make([]*cd.RevisionLocation, len(in.Revisions))
	for i := range in.Revisions {
		if locs[i], err = normalizeRevision(&in.Revisions[i]); err != nil {
			return nil, err
		}
	}
	sc := scopeOf(ctx)
	out := &cd.BatchGetApplicationRevisionsOutput{ApplicationName: &app, Revisions: []cd.RevisionInfo{}}
	missing := 0
	err = s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		deployed, err := deployedRevisions(ctx, tx, sc, app)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, loc := range locs {
			k := RevisionKey(loc)
			if seen[k] {
				continue
			}
			seen[k] = true
			rec, err := loadRevision(ctx, tx, sc, app, loc, deployed)
			if isAWSError(err, "RevisionDoesNotExistException") {
				missing++
				continue
			}
			if err != nil {
				return err
			}
			out.Revisions = append(out.Revisions, *rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if missing > 0 {
		out.ErrorMessage = str(fmt.Sprintf("%d of the requested revisions are not registered with application %s.", missing, app))
	}
	return out, nil
}

// ListApplicationRevisions implements the operation. Without sortBy the
// order is by registerTime (AWS leaves it unspecified); sortOrder applies
// either way. Revisions without the sort time (never used) sort first in
// ascending order.
func (s *Server) ListApplicationRevisions(ctx context.Context, in *cd.ListApplicationRevisionsInput) (*cd.ListApplicationRevisionsOutput, error) {
	app, err := appName(in.ApplicationName)
	if err != nil {
		return nil, err
	}
	bucket, prefix := deref(in.S3Bucket), deref(in.S3KeyPrefix)
	if in.S3Bucket != nil && (bucket == "" || strings.Contains(bucket, "/") || utf8.RuneCountInString(bucket) > 255) {
		return nil, awsjson.Errorf("InvalidBucketNameFilterException", "The bucket name filter %q is not a valid bucket name.", bucket)
	}
	if prefix != "" && bucket == "" {
		return nil, awsjson.Errorf("BucketNameFilterRequiredException", "A bucket name is required when a key prefix is given.")
	}
	if utf8.RuneCountInString(prefix) > 1024 {
		return nil, awsjson.Errorf("InvalidKeyPrefixFilterException", "The key prefix filter is longer than an S3 key can be.")
	}
	sortBy := deref(in.SortBy)
	if sortBy == "" {
		sortBy = cd.ApplicationRevisionSortByRegisterTime
	}
	desc := deref(in.SortOrder) == cd.SortOrderDescending
	deployedFilter := deref(in.Deployed)
	sc := scopeOf(ctx)
	var order []string
	byOrder := map[string]*cd.RevisionLocation{}
	err = s.Store.View(ctx, func(tx store.Tx) error {
		if _, err := loadApp(ctx, tx, sc, app); err != nil {
			return err
		}
		deployed, err := deployedRevisions(ctx, tx, sc, app)
		if err != nil {
			return err
		}
		p := appKey(sc, app) + "/"
		items, err := tx.Scan(ctx, kindRevision, p, "", 0)
		if err != nil {
			return err
		}
		for _, it := range items {
			var rec cd.RevisionInfo
			if err := decodeInto(it.Value, &rec); err != nil {
				return err
			}
			loc, info := rec.RevisionLocation, rec.GenericRevisionInfo
			if loc == nil || info == nil {
				continue
			}
			if bucket != "" {
				l := loc.S3Location
				if l == nil || deref(l.Bucket) != bucket || !strings.HasPrefix(deref(l.Key), prefix) {
					continue
				}
			}
			_, isDeployed := deployed[it.Key[len(p):]]
			if (deployedFilter == cd.ListStateFilterActionInclude && !isDeployed) ||
				(deployedFilter == cd.ListStateFilterActionExclude && isDeployed) {
				continue
			}
			o := sortKey(info, sortBy, desc) + "/" + it.Key[len(p):]
			order = append(order, o)
			byOrder[o] = loc
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(order)
	// The token is bound to the sort, since its position means nothing
	// in another order.
	page, next, err := s.page("ListApplicationRevisions/"+sortBy+"/"+fmt.Sprint(desc), order, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := &cd.ListApplicationRevisionsOutput{Revisions: []cd.RevisionLocation{}, NextToken: next}
	for _, o := range page {
		out.Revisions = append(out.Revisions, *byOrder[o])
	}
	return out, nil
}

// sortKey is a fixed-width string that sorts as the chosen time does.
func sortKey(info *cd.GenericRevisionInfo, sortBy string, desc bool) string {
	var t *awstime.Time
	switch sortBy {
	case cd.ApplicationRevisionSortByFirstUsedTime:
		t = info.FirstUsedTime
	case cd.ApplicationRevisionSortByLastUsedTime:
		t = info.LastUsedTime
	default:
		t = info.RegisterTime
	}
	var n int64 // never used: before every time
	if t != nil {
		n = t.UnixMicro() - math.MinInt64/2 // shift so that every time is positive
	}
	if desc {
		n = math.MaxInt64 - n
	}
	return fmt.Sprintf("%020d", n)
}
