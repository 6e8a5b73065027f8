package api

import (
	"context"
	"crypto/rand"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/model/awstime"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// Limits of the on-premises instance operations.
const (
	maxInstanceTags     = 10  // tags on one instance
	maxInstancesPerCall = 100 // names in one tag call or batch get
)

func instanceName(v *string) (string, error) {
	// The instance name character set is that of the other names, which
	// already excludes the colon AWS calls out (SERVICE-SEMANTICS §8.1).
	return checkName(v, "InstanceNameRequiredException", "InvalidInstanceNameException", "instance name")
}

func instanceKey(sc scope, name string) string { return sc.prefix() + name }

// instanceArn returns a new instance ARN in the form AWS returns: the name
// and a random 10-character alphanumeric suffix, new per registration.
func (sc scope) instanceArn(name string) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return sc.arn("instance/" + name + "_" + string(b))
}

func registered(in *cd.InstanceInfo) bool { return in.DeregisterTime == nil }

// iamArnOf is the principal ARN an instance was registered with.
func iamArnOf(in *cd.InstanceInfo) string {
	if in.IamUserArn != nil {
		return *in.IamUserArn
	}
	return deref(in.IamSessionArn)
}

// InstanceOfArn finds an instance of account registered with the IAM ARN,
// in any region: a registered one first, else the last deregistered one.
// It serves the migration of keys stored before roles existed.
func InstanceOfArn(ctx context.Context, tx store.Tx, account, arn string) (region, name string, ok bool, err error) {
	items, err := tx.Scan(ctx, kindInstance, account+"/", "", 0)
	if err != nil {
		return "", "", false, err
	}
	for _, it := range items {
		var in cd.InstanceInfo
		if err := decodeInto(it.Value, &in); err != nil {
			return "", "", false, err
		}
		if iamArnOf(&in) != arn {
			continue
		}
		rest := it.Key[len(account)+1:]
		r, _, _ := strings.Cut(rest, "/")
		if registered(&in) || !ok {
			region, name, ok = r, deref(in.InstanceName), true
		}
		if registered(&in) {
			return region, name, true, nil
		}
	}
	return region, name, ok, nil
}

// LoadInstance reads an on-premises instance, registered or deregistered,
// or answers InstanceNotRegisteredException.
func LoadInstance(ctx context.Context, tx store.Tx, account, region, name string) (*cd.InstanceInfo, error) {
	var in cd.InstanceInfo
	err := getJSON(ctx, tx, kindInstance, instanceKey(scope{account, region}, name), &in)
	if notFound(err) {
		return nil, awsjson.Errorf("InstanceNotRegisteredException", "The on-premises instance %s is not registered.", name)
	}
	if err != nil {
		return nil, err
	}
	return &in, nil
}

// RegisterOnPremisesInstance implements the operation. It also writes the
// IAM ARN index that authenticates the instance's agent.
func (s *Server) RegisterOnPremisesInstance(ctx context.Context, in *cd.RegisterOnPremisesInstanceInput) error {
	name, err := instanceName(in.InstanceName)
	if err != nil {
		return err
	}
	user, session := deref(in.IamUserArn), deref(in.IamSessionArn)
	switch {
	case user != "" && session != "":
		return awsjson.Errorf("MultipleIamArnsProvidedException", "Both an IAM user ARN and an IAM session ARN were provided; give exactly one.")
	case user == "" && session == "":
		return awsjson.Errorf("IamArnRequiredException", "An IAM user ARN or an IAM session ARN is required.")
	case user != "" && !access.IsIAMUserArn(user):
		return awsjson.Errorf("InvalidIamUserArnException", "The IAM user ARN %q is not valid (arn:aws:iam::<account>:user/<name>).", user)
	case session != "" && !access.IsIAMSessionArn(session):
		return awsjson.Errorf("InvalidIamSessionArnException", "The IAM session ARN %q is not valid (arn:aws:sts::<account>:assumed-role/<role>/<session>).", session)
	}
	sc := scopeOf(ctx)
	// An instance's IAM ARN is the identity its agent signs with, so one of
	// another account would let this account's deployments run code on a
	// host of that account.
	switch {
	case user != "" && access.ArnAccount(user) != sc.Account:
		return awsjson.Errorf("InvalidIamUserArnException", "The IAM user ARN must belong to the caller's account %s, not %s.", sc.Account, access.ArnAccount(user))
	case session != "" && access.ArnAccount(session) != sc.Account:
		return awsjson.Errorf("InvalidIamSessionArnException", "The IAM session ARN must belong to the caller's account %s, not %s.", sc.Account, access.ArnAccount(session))
	}
	info := cd.InstanceInfo{
		InstanceName: &name,
		InstanceArn:  str(sc.instanceArn(name)),
		RegisterTime: &awstime.Time{Time: s.now()},
	}
	arn, taken := user, "IamUserArnAlreadyRegisteredException"
	if user != "" {
		info.IamUserArn = &user
	} else {
		info.IamSessionArn = &session
		arn, taken = session, "IamSessionArnAlreadyRegisteredException"
	}
	defer s.callers.invalidate(sc.prefix() + arn)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		old, err := LoadInstance(ctx, tx, sc.Account, sc.Region, name)
		if err == nil && registered(old) {
			return awsjson.Errorf("InstanceNameAlreadyRegisteredException", "The on-premises instance name %s is already registered.", name)
		}
		if err != nil && !isAWSError(err, "InstanceNotRegisteredException") {
			return err
		}
		// The index holds registered instances only, so any entry is a
		// registered instance other than this name.
		if b, err := tx.Get(ctx, kindIamArn, sc.prefix()+arn); err == nil {
			return awsjson.Errorf(taken, "The IAM ARN %s is already registered with on-premises instance %s.", arn, b)
		} else if !notFound(err) {
			return err
		}
		// A deregistered name is registered afresh: a new ARN and no tags,
		// as it is a new instance to AWS.
		if err := putJSON(ctx, tx, kindInstance, instanceKey(sc, name), info); err != nil {
			return err
		}
		return tx.Put(ctx, kindIamArn, sc.prefix()+arn, []byte(name))
	})
}

// DeregisterOnPremisesInstance marks an instance deregistered: it keeps
// its record and tags but drops out of deployments and loses its agent
// credentials (the IAM ARN index entry). Deregistering an instance that
// is already deregistered changes nothing.
//
// An unknown name succeeds and changes nothing: the model lists no
// DoesNotExist error for the operation (SERVICE-SEMANTICS §8.3).
func (s *Server) DeregisterOnPremisesInstance(ctx context.Context, in *cd.DeregisterOnPremisesInstanceInput) error {
	name, err := instanceName(in.InstanceName)
	if err != nil {
		return err
	}
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		info, err := LoadInstance(ctx, tx, sc.Account, sc.Region, name)
		if isAWSError(err, "InstanceNotRegisteredException") {
			return nil
		}
		if err != nil {
			return err
		}
		if !registered(info) {
			return nil
		}
		info.DeregisterTime = &awstime.Time{Time: s.now()}
		if err := putJSON(ctx, tx, kindInstance, instanceKey(sc, name), info); err != nil {
			return err
		}
		defer s.callers.invalidate(sc.prefix() + iamArnOf(info))
		_, err = tx.Delete(ctx, kindIamArn, sc.prefix()+iamArnOf(info))
		return err
	})
}

// GetOnPremisesInstance implements the operation; deregistered instances
// are returned with their deregisterTime.
func (s *Server) GetOnPremisesInstance(ctx context.Context, in *cd.GetOnPremisesInstanceInput) (*cd.GetOnPremisesInstanceOutput, error) {
	name, err := instanceName(in.InstanceName)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(ctx)
	var info *cd.InstanceInfo
	err = s.Store.View(ctx, func(tx store.Tx) error {
		info, err = LoadInstance(ctx, tx, sc.Account, sc.Region, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cd.GetOnPremisesInstanceOutput{InstanceInfo: info}, nil
}

// BatchGetOnPremisesInstances returns the named instances in request
// order; unknown names are left out, as the operation models no error for
// them (SERVICE-SEMANTICS §8.8).
func (s *Server) BatchGetOnPremisesInstances(ctx context.Context, in *cd.BatchGetOnPremisesInstancesInput) (*cd.BatchGetOnPremisesInstancesOutput, error) {
	if len(in.InstanceNames) == 0 {
		return nil, awsjson.Errorf("InstanceNameRequiredException", "The instance names must be specified.")
	}
	if len(in.InstanceNames) > maxInstancesPerCall {
		return nil, awsjson.Errorf("BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (%d) was exceeded.", maxInstancesPerCall)
	}
	for i := range in.InstanceNames {
		if _, err := instanceName(&in.InstanceNames[i]); err != nil {
			return nil, err
		}
	}
	sc := scopeOf(ctx)
	out := &cd.BatchGetOnPremisesInstancesOutput{InstanceInfos: []cd.InstanceInfo{}}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		seen := map[string]bool{}
		for _, n := range in.InstanceNames {
			if seen[n] {
				continue
			}
			seen[n] = true
			info, err := LoadInstance(ctx, tx, sc.Account, sc.Region, n)
			if isAWSError(err, "InstanceNotRegisteredException") {
				continue
			}
			if err != nil {
				return err
			}
			out.InstanceInfos = append(out.InstanceInfos, *info)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// allInstances returns every instance record of the scope, sorted by name.
func allInstances(ctx context.Context, tx store.Tx, sc scope) ([]cd.InstanceInfo, error) {
	items, err := tx.Scan(ctx, kindInstance, sc.prefix(), "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]cd.InstanceInfo, 0, len(items))
	for _, it := range items {
		var in cd.InstanceInfo
		if err := decodeInto(it.Value, &in); err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return deref(out[i].InstanceName) < deref(out[j].InstanceName) })
	return out, nil
}

// ListOnPremisesInstances lists instance names, sorted, optionally only
// those of one registration status and those matching any tag filter.
func (s *Server) ListOnPremisesInstances(ctx context.Context, in *cd.ListOnPremisesInstancesInput) (*cd.ListOnPremisesInstancesOutput, error) {
	status := deref(in.RegistrationStatus)
	if status != "" && !cd.ValidRegistrationStatus(status) {
		return nil, awsjson.Errorf("InvalidRegistrationStatusException", "The registration status %q is not valid.", status)
	}
	for _, f := range in.TagFilters {
		if err := checkFilter(f.Key, f.Value, f.Type, "InvalidTagFilterException"); err != nil {
			return nil, err
		}
	}
	sc := scopeOf(ctx)
	var names []string
	err := s.Store.View(ctx, func(tx store.Tx) error {
		all, err := allInstances(ctx, tx, sc)
		if err != nil {
			return err
		}
		for _, i := range all {
			switch {
			case status == cd.RegistrationStatusRegistered && !registered(&i),
				status == cd.RegistrationStatusDeregistered && registered(&i),
				len(in.TagFilters) > 0 && !matchAny(i.Tags, in.TagFilters):
				continue
			}
			names = append(names, deref(i.InstanceName))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	page, next, err := s.page("ListOnPremisesInstances", names, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cd.ListOnPremisesInstancesOutput{InstanceNames: page, NextToken: next}, nil
}

// MatchInstances returns the registered on-premises instances a deployment
// group selects, sorted by name: those matching any of the flat filters,
// plus those matching at least one filter of every group of the tag set.
// A group validly has one or the other; were both given, the union counts.
func MatchInstances(ctx context.Context, tx store.Tx, account, region string, filters []cd.TagFilter, set *cd.OnPremisesTagSet) ([]cd.InstanceInfo, error) {
	all, err := allInstances(ctx, tx, scope{account, region})
	if err != nil {
		return nil, err
	}
	out := []cd.InstanceInfo{}
	for _, i := range all {
		if !registered(&i) {
			continue
		}
		if (len(filters) > 0 && matchAny(i.Tags, filters)) || (set != nil && matchSet(i.Tags, set.OnPremisesTagSetList)) {
			out = append(out, i)
		}
	}
	return out, nil
}

func matchSet(tags []cd.Tag, groups [][]cd.TagFilter) bool {
	if len(groups) == 0 {
		return false
	}
	for _, g := range groups {
		if !matchAny(tags, g) {
			return false
		}
	}
	return true
}

func matchAny(tags []cd.Tag, filters []cd.TagFilter) bool {
	return slices.ContainsFunc(filters, func(f cd.TagFilter) bool { return matchFilter(tags, f.Key, f.Value, f.Type) })
}

// matchFilter reports whether any tag satisfies the filter. Keys and values
// compare case-sensitively (SERVICE-SEMANTICS §8.5). A filter without a
// type is KEY_AND_VALUE when it has a key, else VALUE_ONLY.
func matchFilter(tags []cd.Tag, key, value, typ *string) bool {
	t := deref(typ)
	if t == "" {
		t = cd.TagFilterTypeKEYANDVALUE
		if deref(key) == "" {
			t = cd.TagFilterTypeVALUEONLY
		}
	}
	return slices.ContainsFunc(tags, func(tag cd.Tag) bool {
		switch t {
		case cd.TagFilterTypeKEYONLY:
			return deref(tag.Key) == deref(key)
		case cd.TagFilterTypeVALUEONLY:
			return deref(tag.Value) == deref(value)
		default:
			return deref(tag.Key) == deref(key) && deref(tag.Value) == deref(value)
		}
	})
}

// checkInstanceTags validates the common input of the tag operations.
func checkInstanceTags(names []string, tags []cd.Tag) error {
	if len(names) == 0 {
		return awsjson.Errorf("InstanceNameRequiredException", "The instance names must be specified.")
	}
	if len(tags) == 0 {
		return awsjson.Errorf("TagRequiredException", "A tag was not specified.")
	}
	if len(names) > maxInstancesPerCall {
		return awsjson.Errorf("InstanceLimitExceededException", "The maximum number of instances in one request (%d) was exceeded.", maxInstancesPerCall)
	}
	for i := range names {
		if _, err := instanceName(&names[i]); err != nil {
			return err
		}
	}
	for _, t := range tags {
		k := deref(t.Key)
		if k == "" {
			return awsjson.Errorf("InvalidTagException", "Tag keys are required: value-only tags are not allowed on on-premises instances.")
		}
		if utf8.RuneCountInString(k) > 128 || utf8.RuneCountInString(deref(t.Value)) > 256 {
			return awsjson.Errorf("InvalidTagException", "Tag keys are at most 128 and values at most 256 characters long.")
		}
	}
	return nil
}

// editInstanceTags applies edit to the tags of every named instance, all
// or nothing: each must be registered.
func (s *Server) editInstanceTags(ctx context.Context, names []string, edit func([]cd.Tag) ([]cd.Tag, error)) error {
	sc := scopeOf(ctx)
	return s.Store.Update(ctx, func(tx store.Tx) error {
		for _, n := range names {
			info, err := LoadInstance(ctx, tx, sc.Account, sc.Region, n)
			if err != nil {
				return err
			}
			if !registered(info) {
				return awsjson.Errorf("InstanceNotRegisteredException", "The on-premises instance %s is not registered.", n)
			}
			if info.Tags, err = edit(info.Tags); err != nil {
				return err
			}
			if err := putJSON(ctx, tx, kindInstance, instanceKey(sc, n), info); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddTagsToOnPremisesInstances adds tags; a key already present gets the
// new value.
func (s *Server) AddTagsToOnPremisesInstances(ctx context.Context, in *cd.AddTagsToOnPremisesInstancesInput) error {
	if err := checkInstanceTags(in.InstanceNames, in.Tags); err != nil {
		return err
	}
	return s.editInstanceTags(ctx, in.InstanceNames, func(tags []cd.Tag) ([]cd.Tag, error) {
		for _, t := range in.Tags {
			i := slices.IndexFunc(tags, func(x cd.Tag) bool { return deref(x.Key) == deref(t.Key) })
			if i >= 0 {
				tags[i] = t
			} else {
				tags = append(tags, t)
			}
		}
		if len(tags) > maxInstanceTags {
			return nil, awsjson.Errorf("TagLimitExceededException", "An on-premises instance can have at most %d tags.", maxInstanceTags)
		}
		return tags, nil
	})
}

// RemoveTagsFromOnPremisesInstances removes tags by key; when a tag of the
// request has a value, only a tag with that value is removed.
func (s *Server) RemoveTagsFromOnPremisesInstances(ctx context.Context, in *cd.RemoveTagsFromOnPremisesInstancesInput) error {
	if err := checkInstanceTags(in.InstanceNames, in.Tags); err != nil {
		return err
	}
	return s.editInstanceTags(ctx, in.InstanceNames, func(tags []cd.Tag) ([]cd.Tag, error) {
		return slices.DeleteFunc(tags, func(x cd.Tag) bool {
			return slices.ContainsFunc(in.Tags, func(t cd.Tag) bool {
				return deref(t.Key) == deref(x.Key) && (t.Value == nil || deref(t.Value) == deref(x.Value))
			})
		}), nil
	})
}
