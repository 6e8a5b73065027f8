package api_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/api"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

func userArn(name string) string { return "arn:aws:iam::000000000000:user/hosts/" + name }

func register(t *testing.T, c *codedeploy.Client, name string, tags ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(name), IamUserArn: aws.String(userArn(name))}); err != nil {
		t.Fatal(err)
	}
	if len(tags) == 0 {
		return
	}
	var ts []types.Tag
	for _, kv := range tags {
		k, v, _ := strings.Cut(kv, "=")
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{name}, Tags: ts}); err != nil {
		t.Fatal(err)
	}
}

func getInstance(t *testing.T, c *codedeploy.Client, name string) *types.InstanceInfo {
	t.Helper()
	out, err := c.GetOnPremisesInstance(context.Background(), &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.InstanceInfo
}

func TestOnPremisesRegistration(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "host1")
	session := "arn:aws:sts::000000000000:assumed-role/CodeDeployHosts/host2"
	if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("host2"), IamSessionArn: aws.String(session)}); err != nil {
		t.Fatal(err)
	}
	i := getInstance(t, c, "host1")
	arnRE := regexp.MustCompile(`^arn:aws:codedeploy:us-east-1:000000000000:instance/host1_[A-Za-z0-9]{10}$`)
	if !arnRE.MatchString(*i.InstanceArn) || *i.IamUserArn != userArn("host1") || i.IamSessionArn != nil || i.RegisterTime == nil || i.DeregisterTime != nil {
		t.Fatalf("instance %+v", i)
	}
	if i2 := getInstance(t, c, "host2"); *i2.IamSessionArn != session || i2.IamUserArn != nil {
		t.Fatalf("session instance %+v", i2)
	}

	cases := []struct {
		name             string
		instance         string
		user, sessionArn string
		want             string
	}{
		{"both ARNs", "h", userArn("h"), "arn:aws:sts::000000000000:assumed-role/r/h", "MultipleIamArnsProvidedException"},
		{"no ARN", "h", "", "", "IamArnRequiredException"},
		{"empty name", "", userArn("h"), "", "InstanceNameRequiredException"},
		{"colon in name", "00:11:22:33:44:55", userArn("h"), "", "InvalidInstanceNameException"},
		{"name too long", strings.Repeat("h", 101), userArn("h"), "", "InvalidInstanceNameException"},
		{"role instead of user", "h", "arn:aws:iam::000000000000:role/r", "", "InvalidIamUserArnException"},
		{"short account", "h", "arn:aws:iam::0000:user/h", "", "InvalidIamUserArnException"},
		{"session ARN of a user", "h", "", userArn("h"), "InvalidIamSessionArnException"},
		{"session ARN without session", "h", "", "arn:aws:sts::000000000000:assumed-role/r", "InvalidIamSessionArnException"},
		{"name taken", "host1", userArn("other"), "", "InstanceNameAlreadyRegisteredException"},
		{"user ARN taken", "other", userArn("host1"), "", "IamUserArnAlreadyRegisteredException"},
		{"session ARN taken", "other", "", session, "IamSessionArnAlreadyRegisteredException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(tc.instance)}
			if tc.user != "" {
				in.IamUserArn = aws.String(tc.user)
			}
			if tc.sessionArn != "" {
				in.IamSessionArn = aws.String(tc.sessionArn)
			}
			_, err := c.RegisterOnPremisesInstance(ctx, in)
			servertest.WantError(t, err, tc.want)
		})
	}
	list, err := c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
	if err != nil || strings.Join(list.InstanceNames, ",") != "host1,host2" {
		t.Fatalf("bad registrations changed state: %v %v", list.InstanceNames, err)
	}
	if i := getInstance(t, c, "host1"); *i.IamUserArn != userArn("host1") {
		t.Fatalf("host1 changed: %+v", i)
	}

	_, err = c.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("nope")})
	servertest.WantError(t, err, "InstanceNotRegisteredException")
	_, err = c.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("a:b")})
	servertest.WantError(t, err, "InvalidInstanceNameException")
}

func TestOnPremisesDeregistration(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "host1", "env=prod")
	first := getInstance(t, c, "host1")

	// Unknown names succeed: the operation models no DoesNotExist error.
	if _, err := c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("nope")}); err != nil {
		t.Fatalf("deregister unknown: %v", err)
	}
	_, err := c.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String("nope")})
	servertest.WantError(t, err, "InstanceNotRegisteredException")
	_, err = c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("")})
	servertest.WantError(t, err, "InstanceNameRequiredException")

	if _, err := c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("host1")}); err != nil {
		t.Fatal(err)
	}
	gone := getInstance(t, c, "host1")
	if gone.DeregisterTime == nil || len(gone.Tags) != 1 || *gone.InstanceArn != *first.InstanceArn {
		t.Fatalf("deregistered %+v", gone)
	}
	// Deregistering again changes nothing.
	if _, err := c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("host1")}); err != nil {
		t.Fatal(err)
	}
	if again := getInstance(t, c, "host1"); !again.DeregisterTime.Equal(*gone.DeregisterTime) {
		t.Fatalf("deregisterTime moved: %v -> %v", gone.DeregisterTime, again.DeregisterTime)
	}
	// A deregistered instance takes no tags.
	_, err = c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{"host1"}, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
	servertest.WantError(t, err, "InstanceNotRegisteredException")

	// Its ARN is free for another instance, and its name can be registered
	// again at once: a new instance with a new ARN.
	if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("host1b"), IamUserArn: aws.String(userArn("host1"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("host1"), IamUserArn: aws.String(userArn("host1-new"))}); err != nil {
		t.Fatal(err)
	}
	re := getInstance(t, c, "host1")
	if re.DeregisterTime != nil || *re.InstanceArn == *first.InstanceArn || *re.IamUserArn != userArn("host1-new") || len(re.Tags) != 0 {
		t.Fatalf("re-registered %+v", re)
	}
}

// A key's powers are declared, never inferred from the instances: an
// admin key whose principal is also an instance's IAM ARN stays an admin
// key before, during and after the registration (the agent protocol takes
// host keys; internal/server tests those).
func TestOnPremisesAgentIdentity(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	k, err := env.Server.Keys.Create(ctx, "host1", "000000000000")
	if err != nil {
		t.Fatal(err)
	}
	c := env.NewClient(k.AccessKeyID, k.SecretAccessKey, "us-east-1")
	if _, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("before registration: %v", err)
	}
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("host1"), IamUserArn: aws.String(k.Arn)}); err != nil {
		t.Fatal(err)
	}
	name, err := env.Server.API.InstanceOfCaller(ctx)
	if err != nil || name != "" {
		t.Fatalf("no caller in ctx: %q %v", name, err)
	}
	if _, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("registered: %v", err)
	}
	if _, err := env.Client.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("host1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("after deregistration: %v", err)
	}
}

// An instance can be registered only with an IAM ARN of the caller's own
// account: else that account's agent would run this account's hooks.
func TestRegisterOtherAccountsArn(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	cases := []struct {
		name string
		in   codedeploy.RegisterOnPremisesInstanceInput
		code string
	}{
		{"user of another account", codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("h1"), IamUserArn: aws.String("arn:aws:iam::222222222222:user/h1")}, "InvalidIamUserArnException"},
		{"session of another account", codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("h2"), IamSessionArn: aws.String("arn:aws:sts::222222222222:assumed-role/r/h2")}, "InvalidIamSessionArnException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client.RegisterOnPremisesInstance(ctx, &tc.in)
			servertest.WantError(t, err, tc.code)
			_, err = env.Client.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: tc.in.InstanceName})
			servertest.WantError(t, err, "InstanceNotRegisteredException")
		})
	}
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("h3"), IamUserArn: aws.String("arn:aws:iam::000000000000:user/h3")}); err != nil {
		t.Fatalf("own account: %v", err)
	}
}

func TestBatchGetOnPremisesInstances(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "a")
	register(t, c, "b")
	out, err := c.BatchGetOnPremisesInstances(ctx, &codedeploy.BatchGetOnPremisesInstancesInput{InstanceNames: []string{"b", "missing", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceInfos) != 2 || *out.InstanceInfos[0].InstanceName != "b" || *out.InstanceInfos[1].InstanceName != "a" {
		t.Fatalf("batch %+v", out.InstanceInfos)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("h", i)
	}
	for _, tc := range []struct {
		name  string
		names []string
		want  string
	}{
		{"too many", many, "BatchLimitExceededException"},
		{"none", []string{}, "InstanceNameRequiredException"},
		{"bad name", []string{"a:b"}, "InvalidInstanceNameException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.BatchGetOnPremisesInstances(ctx, &codedeploy.BatchGetOnPremisesInstancesInput{InstanceNames: tc.names})
			servertest.WantError(t, err, tc.want)
		})
	}
}

func TestOnPremisesInstanceTags(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "a", "env=prod", "role=web")
	register(t, c, "b")
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

	// Adding an existing key replaces its value.
	if _, err := c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{"a", "b"}, Tags: []types.Tag{tag("env", "staging")}}); err != nil {
		t.Fatal(err)
	}
	tagsOf := func(name string) string {
		var s []string
		for _, t := range getInstance(t, c, name).Tags {
			s = append(s, *t.Key+"="+*t.Value)
		}
		slices.Sort(s)
		return strings.Join(s, ",")
	}
	if a, b := tagsOf("a"), tagsOf("b"); a != "env=staging,role=web" || b != "env=staging" {
		t.Fatalf("tags a=%s b=%s", a, b)
	}
	// Removal by key and value: a different value is kept.
	if _, err := c.RemoveTagsFromOnPremisesInstances(ctx, &codedeploy.RemoveTagsFromOnPremisesInstancesInput{InstanceNames: []string{"a", "b"}, Tags: []types.Tag{tag("env", "staging"), tag("role", "db")}}); err != nil {
		t.Fatal(err)
	}
	if a, b := tagsOf("a"), tagsOf("b"); a != "role=web" || b != "" {
		t.Fatalf("after removal a=%s b=%s", a, b)
	}

	nine := make([]types.Tag, 9)
	for i := range nine {
		nine[i] = tag(fmt.Sprint("k", i), "v")
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "a"
	}
	type call func(names []string, tags []types.Tag) error
	add := func(names []string, tags []types.Tag) error {
		_, err := c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: names, Tags: tags})
		return err
	}
	remove := func(names []string, tags []types.Tag) error {
		_, err := c.RemoveTagsFromOnPremisesInstances(ctx, &codedeploy.RemoveTagsFromOnPremisesInstancesInput{InstanceNames: names, Tags: tags})
		return err
	}
	for _, op := range []struct {
		name string
		call call
	}{{"add", add}, {"remove", remove}} {
		for _, tc := range []struct {
			name  string
			names []string
			tags  []types.Tag
			want  string
		}{
			{"no names", []string{}, []types.Tag{tag("k", "v")}, "InstanceNameRequiredException"},
			{"no tags", []string{"a"}, []types.Tag{}, "TagRequiredException"},
			{"value only", []string{"a"}, []types.Tag{{Value: aws.String("v")}}, "InvalidTagException"},
			{"key too long", []string{"a"}, []types.Tag{tag(strings.Repeat("k", 129), "v")}, "InvalidTagException"},
			{"too many instances", many, []types.Tag{tag("k", "v")}, "InstanceLimitExceededException"},
			{"bad name", []string{"a:b"}, []types.Tag{tag("k", "v")}, "InvalidInstanceNameException"},
			{"unknown instance", []string{"a", "nope"}, []types.Tag{tag("k", "v")}, "InstanceNotRegisteredException"},
		} {
			t.Run(op.name+" "+tc.name, func(t *testing.T) { servertest.WantError(t, op.call(tc.names, tc.tags), tc.want) })
		}
	}
	// a has one tag; nine more make ten, one more is over the limit.
	servertest.WantError(t, add([]string{"b", "a"}, append(slices.Clone(nine), tag("k9", "v"), tag("k10", "v"))), "TagLimitExceededException")
	if a, b := tagsOf("a"), tagsOf("b"); a != "role=web" || b != "" {
		t.Fatalf("failed calls changed tags: a=%s b=%s", a, b)
	}
	if err := add([]string{"a"}, nine); err != nil {
		t.Fatal(err)
	}
	servertest.WantError(t, add([]string{"a"}, []types.Tag{tag("one", "more")}), "TagLimitExceededException")
}

func TestListOnPremisesInstances(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "web1", "env=prod", "role=web")
	register(t, c, "web2", "env=staging", "role=web")
	register(t, c, "db1", "env=prod", "role=db")
	register(t, c, "old", "env=prod")
	if _, err := c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("old")}); err != nil {
		t.Fatal(err)
	}
	f := func(typ types.TagFilterType, k, v string) types.TagFilter {
		tf := types.TagFilter{Type: typ}
		if k != "" {
			tf.Key = aws.String(k)
		}
		if v != "" {
			tf.Value = aws.String(v)
		}
		return tf
	}
	cases := []struct {
		name    string
		status  types.RegistrationStatus
		filters []types.TagFilter
		want    string
	}{
		{"all", "", nil, "db1,old,web1,web2"},
		{"registered", types.RegistrationStatusRegistered, nil, "db1,web1,web2"},
		{"deregistered", types.RegistrationStatusDeregistered, nil, "old"},
		{"key and value", "", []types.TagFilter{f(types.TagFilterTypeKeyAndValue, "env", "prod")}, "db1,old,web1"},
		{"key only", types.RegistrationStatusRegistered, []types.TagFilter{f(types.TagFilterTypeKeyOnly, "role", "")}, "db1,web1,web2"},
		{"value only", "", []types.TagFilter{f(types.TagFilterTypeValueOnly, "", "web")}, "web1,web2"},
		{"filters are OR", "", []types.TagFilter{f(types.TagFilterTypeKeyAndValue, "role", "db"), f(types.TagFilterTypeValueOnly, "", "staging")}, "db1,web2"},
		{"case-sensitive", "", []types.TagFilter{f(types.TagFilterTypeKeyAndValue, "env", "PROD")}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{RegistrationStatus: tc.status, TagFilters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(out.InstanceNames, ","); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name string
		in   *codedeploy.ListOnPremisesInstancesInput
		want string
	}{
		{"bad status", &codedeploy.ListOnPremisesInstancesInput{RegistrationStatus: "Lost"}, "InvalidRegistrationStatusException"},
		{"bad filter type", &codedeploy.ListOnPremisesInstancesInput{TagFilters: []types.TagFilter{f("SOME", "k", "")}}, "InvalidTagFilterException"},
		{"key only with value", &codedeploy.ListOnPremisesInstancesInput{TagFilters: []types.TagFilter{f(types.TagFilterTypeKeyOnly, "k", "v")}}, "InvalidTagFilterException"},
		{"bad token", &codedeploy.ListOnPremisesInstancesInput{NextToken: aws.String("x")}, "InvalidNextTokenException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ListOnPremisesInstances(ctx, tc.in)
			servertest.WantError(t, err, tc.want)
		})
	}

	env.Server.API.PageSize = 3
	// The SDK has no paginator for this operation: follow nextToken.
	var got []string
	pages := 0
	for tok := (*string)(nil); pages == 0 || tok != nil; pages++ {
		out, err := c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.InstanceNames...)
		tok = out.NextToken
	}
	if pages != 2 || strings.Join(got, ",") != "db1,old,web1,web2" {
		t.Fatalf("%d pages: %v", pages, got)
	}
}

func TestMatchInstances(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	register(t, c, "web1", "env=prod", "role=web", "zone=a")
	register(t, c, "web2", "env=staging", "role=web", "zone=b")
	register(t, c, "db1", "env=prod", "role=db", "zone=a")
	register(t, c, "gone", "env=prod", "role=web", "zone=a")
	if _, err := c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String("gone")}); err != nil {
		t.Fatal(err)
	}
	kv := func(k, v string) cd.TagFilter {
		return cd.TagFilter{Key: aws.String(k), Value: aws.String(v), Type: aws.String(cd.TagFilterTypeKEYANDVALUE)}
	}
	cases := []struct {
		name    string
		filters []cd.TagFilter
		set     *cd.OnPremisesTagSet
		want    string
	}{
		{"nothing selects nothing", nil, nil, ""},
		{"flat filters are OR", []cd.TagFilter{kv("role", "db"), kv("env", "staging")}, nil, "db1,web2"},
		{"key only", []cd.TagFilter{{Key: aws.String("zone"), Type: aws.String(cd.TagFilterTypeKEYONLY)}}, nil, "db1,web1,web2"},
		{"value only", []cd.TagFilter{{Value: aws.String("a"), Type: aws.String(cd.TagFilterTypeVALUEONLY)}}, nil, "db1,web1"},
		{"set is AND of OR groups", nil, &cd.OnPremisesTagSet{OnPremisesTagSetList: [][]cd.TagFilter{
			{kv("env", "prod"), kv("env", "staging")},
			{kv("role", "web")},
		}}, "web1,web2"},
		{"three groups", nil, &cd.OnPremisesTagSet{OnPremisesTagSetList: [][]cd.TagFilter{
			{kv("env", "prod")}, {kv("role", "web"), kv("role", "db")}, {kv("zone", "a")},
		}}, "db1,web1"},
		{"no instance matches", nil, &cd.OnPremisesTagSet{OnPremisesTagSetList: [][]cd.TagFilter{{kv("env", "staging")}, {kv("zone", "a")}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := env.Server.API.Store.View(ctx, func(tx store.Tx) error {
				is, err := api.MatchInstances(ctx, tx, "000000000000", "us-east-1", tc.filters, tc.set)
				for _, i := range is {
					got = append(got, *i.InstanceName)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
	err := env.Server.API.Store.View(ctx, func(tx store.Tx) error {
		i, err := api.LoadInstance(ctx, tx, "000000000000", "us-east-1", "gone")
		if err != nil || i.DeregisterTime == nil {
			return fmt.Errorf("load deregistered: %+v %v", i, err)
		}
		if _, err := api.LoadInstance(ctx, tx, "000000000000", "eu-west-1", "web1"); err == nil {
			return fmt.Errorf("instance visible from another region")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
