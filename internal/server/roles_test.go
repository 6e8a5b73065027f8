//lint:file-ignore SA1019 the matrix calls every operation, the deprecated ones included.

package server_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/keys"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// fixture is what every permission-matrix server holds: an application
// with a group and a deployment, and a registered on-premises instance
// with its host key.
type fixture struct {
	env        *servertest.Env
	deployment string
	host       keys.Created
}

const (
	mApp   = "matrix-app"
	mGroup = "matrix-group"
	mHost  = "matrix-host"
)

func shortPolls(c *server.Config) { c.PollWait = 50 * time.Millisecond }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := servertest.Start(t, shortPolls)
	ctx := context.Background()
	c := env.Client
	if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(mApp)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String(mApp), DeploymentGroupName: aws.String(mGroup),
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/cutover"),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("env"), Value: aws.String("nowhere"), Type: types.TagFilterTypeKeyAndValue}},
	}); err != nil {
		t.Fatal(err)
	}
	dep, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(mApp), DeploymentGroupName: aws.String(mGroup), Revision: s3Revision()})
	if err != nil {
		t.Fatal(err)
	}
	host, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: mHost, Grant: access.Grant{Role: access.Host, Region: env.Region, Instance: mHost}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(mHost), IamUserArn: aws.String(host.Arn)}); err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, deployment: *dep.DeploymentId, host: host}
}

func s3Revision() *types.RevisionLocation {
	return &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
		Bucket: aws.String("bucket"), Key: aws.String("app.zip"), BundleType: types.BundleTypeZip}}
}

// apiCase is one CodeDeploy operation called with the Go SDK. read marks
// the Get/List/BatchGet operations; narrow whether a deployer limited to
// the applications matrix-* may call it as made here.
type apiCase struct {
	op     string
	read   bool
	narrow bool
	call   func(ctx context.Context, c *codedeploy.Client, f *fixture) error
}

func apiCases() []apiCase {
	app, group := aws.String(mApp), aws.String(mGroup)
	appArn := aws.String("arn:aws:codedeploy:us-east-1:000000000000:application:" + mApp)
	none := aws.String("matrix-none")
	tags := []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
	// err drops the output of an SDK call.
	err := func(_ any, err error) error { return err }
	return []apiCase{
		{"AddTagsToOnPremisesInstances", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{"matrix-none"}, Tags: tags}))
		}},
		{"BatchGetApplicationRevisions", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetApplicationRevisions(ctx, &codedeploy.BatchGetApplicationRevisionsInput{ApplicationName: app, Revisions: []types.RevisionLocation{*s3Revision()}}))
		}},
		{"BatchGetApplications", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: []string{mApp}}))
		}},
		{"BatchGetDeploymentGroups", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: app, DeploymentGroupNames: []string{mGroup}}))
		}},
		{"BatchGetDeploymentInstances", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetDeploymentInstances(ctx, &codedeploy.BatchGetDeploymentInstancesInput{DeploymentId: &f.deployment, InstanceIds: []string{"matrix-none"}}))
		}},
		{"BatchGetDeploymentTargets", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: &f.deployment, TargetIds: []string{"matrix-none"}}))
		}},
		{"BatchGetDeployments", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetDeployments(ctx, &codedeploy.BatchGetDeploymentsInput{DeploymentIds: []string{f.deployment}}))
		}},
		{"BatchGetOnPremisesInstances", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.BatchGetOnPremisesInstances(ctx, &codedeploy.BatchGetOnPremisesInstancesInput{InstanceNames: []string{mHost}}))
		}},
		{"ContinueDeployment", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &f.deployment}))
		}},
		{"CreateApplication", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("matrix-new")}))
		}},
		{"CreateDeployment", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: app, DeploymentGroupName: group, Revision: s3Revision()}))
		}},
		{"CreateDeploymentConfig", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.CreateDeploymentConfig(ctx, &codedeploy.CreateDeploymentConfigInput{DeploymentConfigName: aws.String("matrix-config"),
				MinimumHealthyHosts: &types.MinimumHealthyHosts{Type: types.MinimumHealthyHostsTypeHostCount, Value: 0}}))
		}},
		{"CreateDeploymentGroup", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{ApplicationName: app, DeploymentGroupName: aws.String("matrix-group2"),
				ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/cutover")}))
		}},
		{"DeleteApplication", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String("matrix-gone")}))
		}},
		{"DeleteDeploymentConfig", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeleteDeploymentConfig(ctx, &codedeploy.DeleteDeploymentConfigInput{DeploymentConfigName: none}))
		}},
		{"DeleteDeploymentGroup", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeleteDeploymentGroup(ctx, &codedeploy.DeleteDeploymentGroupInput{ApplicationName: app, DeploymentGroupName: aws.String("matrix-gone")}))
		}},
		{"DeleteGitHubAccountToken", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeleteGitHubAccountToken(ctx, &codedeploy.DeleteGitHubAccountTokenInput{TokenName: none}))
		}},
		{"DeleteResourcesByExternalId", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeleteResourcesByExternalId(ctx, &codedeploy.DeleteResourcesByExternalIdInput{ExternalId: none}))
		}},
		{"DeregisterOnPremisesInstance", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: none}))
		}},
		{"GetApplication", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: app}))
		}},
		{"GetApplicationRevision", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetApplicationRevision(ctx, &codedeploy.GetApplicationRevisionInput{ApplicationName: app, Revision: s3Revision()}))
		}},
		{"GetDeployment", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: &f.deployment}))
		}},
		{"GetDeploymentConfig", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("CodeDeployDefault.OneAtATime")}))
		}},
		{"GetDeploymentGroup", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: app, DeploymentGroupName: group}))
		}},
		{"GetDeploymentInstance", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetDeploymentInstance(ctx, &codedeploy.GetDeploymentInstanceInput{DeploymentId: &f.deployment, InstanceId: none}))
		}},
		{"GetDeploymentTarget", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetDeploymentTarget(ctx, &codedeploy.GetDeploymentTargetInput{DeploymentId: &f.deployment, TargetId: none}))
		}},
		{"GetOnPremisesInstance", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String(mHost)}))
		}},
		{"ListApplicationRevisions", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListApplicationRevisions(ctx, &codedeploy.ListApplicationRevisionsInput{ApplicationName: app}))
		}},
		{"ListApplications", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListApplications(ctx, &codedeploy.ListApplicationsInput{}))
		}},
		{"ListDeploymentConfigs", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListDeploymentConfigs(ctx, &codedeploy.ListDeploymentConfigsInput{}))
		}},
		{"ListDeploymentGroups", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListDeploymentGroups(ctx, &codedeploy.ListDeploymentGroupsInput{ApplicationName: app}))
		}},
		{"ListDeploymentInstances", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListDeploymentInstances(ctx, &codedeploy.ListDeploymentInstancesInput{DeploymentId: &f.deployment}))
		}},
		{"ListDeploymentTargets", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: &f.deployment}))
		}},
		{"ListDeployments", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{}))
		}},
		{"ListGitHubAccountTokenNames", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListGitHubAccountTokenNames(ctx, &codedeploy.ListGitHubAccountTokenNamesInput{}))
		}},
		{"ListOnPremisesInstances", true, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{}))
		}},
		{"ListTagsForResource", true, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: appArn}))
		}},
		{"PutLifecycleEventHookExecutionStatus", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.PutLifecycleEventHookExecutionStatus(ctx, &codedeploy.PutLifecycleEventHookExecutionStatusInput{DeploymentId: &f.deployment,
				LifecycleEventHookExecutionId: none, Status: types.LifecycleEventStatusSucceeded}))
		}},
		{"RegisterApplicationRevision", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.RegisterApplicationRevision(ctx, &codedeploy.RegisterApplicationRevisionInput{ApplicationName: app, Revision: s3Revision()}))
		}},
		{"RegisterOnPremisesInstance", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("matrix-other"),
				IamUserArn: aws.String("arn:aws:iam::000000000000:user/matrix-other")}))
		}},
		{"RemoveTagsFromOnPremisesInstances", false, false, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.RemoveTagsFromOnPremisesInstances(ctx, &codedeploy.RemoveTagsFromOnPremisesInstancesInput{InstanceNames: []string{"matrix-none"}, Tags: tags}))
		}},
		{"SkipWaitTimeForInstanceTermination", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.SkipWaitTimeForInstanceTermination(ctx, &codedeploy.SkipWaitTimeForInstanceTerminationInput{DeploymentId: &f.deployment}))
		}},
		{"StopDeployment", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &f.deployment}))
		}},
		{"TagResource", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: appArn, Tags: tags}))
		}},
		{"UntagResource", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.UntagResource(ctx, &codedeploy.UntagResourceInput{ResourceArn: appArn, TagKeys: []string{"k"}}))
		}},
		{"UpdateApplication", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("matrix-gone"), NewApplicationName: aws.String("matrix-gone2")}))
		}},
		{"UpdateDeploymentGroup", false, true, func(ctx context.Context, c *codedeploy.Client, f *fixture) error {
			return err(c.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{ApplicationName: app, CurrentDeploymentGroupName: group}))
		}},
	}
}

// agentCase is one agent protocol operation, called with the agent's own
// protocol client (SigV4 by the SDK's signer).
type agentCase struct {
	op   string
	call func(ctx context.Context, c *protocol.Client, host string) error
}

func agentCases() []agentCase {
	cmd := aws.String("d-MATRIX000-1")
	return []agentCase{
		{"PollHostCommand", func(ctx context.Context, c *protocol.Client, host string) error {
			_, err := c.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
			return err
		}},
		{"GetDeploymentSpecification", func(ctx context.Context, c *protocol.Client, host string) error {
			_, err := c.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{HostIdentifier: &host,
				DeploymentExecutionId: aws.String("Cutover/us-east-1/000000000000/d-MATRIX000")})
			return err
		}},
		{"PutHostCommandAcknowledgement", func(ctx context.Context, c *protocol.Client, host string) error {
			_, err := c.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: cmd})
			return err
		}},
		{"PostHostCommandUpdate", func(ctx context.Context, c *protocol.Client, host string) error {
			_, err := c.PostHostCommandUpdate(ctx, &commands.PostHostCommandUpdateInput{HostCommandIdentifier: cmd})
			return err
		}},
		{"PutHostCommandComplete", func(ctx context.Context, c *protocol.Client, host string) error {
			return c.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{HostCommandIdentifier: cmd, CommandStatus: aws.String("Succeeded")})
		}},
	}
}

func agentClient(env *servertest.Env, id, secret, region string) *protocol.Client {
	return &protocol.Client{Endpoint: env.URL, Region: region, MaxRetries: -1,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")}
}

func adminClient(env *servertest.Env, id, secret, region string) *protocol.Client {
	c := agentClient(env, id, secret, region)
	c.TargetPrefix, c.SigningName = server.PrefixAdmin, server.SigningCodeDeploy
	return c
}

func createKeyCall(ctx context.Context, c *protocol.Client, user, role string) (keys.Created, error) {
	var out keys.Created
	err := c.Call(ctx, "CreateAccessKey", map[string]string{"UserName": user, "Role": role}, &out)
	return out, err
}

// denied reports whether err is an AccessDeniedException and, if so,
// checks that it is worded as AWS words it.
func denied(t *testing.T, err error, principal, action string) bool {
	t.Helper()
	code, msg := "", ""
	var ae smithy.APIError
	var pe *protocol.APIError
	switch {
	case errors.As(err, &ae):
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	case errors.As(err, &pe):
		code, msg = pe.Type, pe.Message
		if code == "AccessDeniedException" && pe.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", action, pe.StatusCode)
		}
	}
	if code != "AccessDeniedException" {
		return false
	}
	want := "User: " + principal + " is not authorized to perform: " + action + " on resource: "
	if !strings.HasPrefix(msg, want) {
		t.Errorf("denial message %q, want prefix %q", msg, want)
	}
	return true
}

// TestPermissionMatrix calls every CodeDeploy operation, the admin API and
// every agent protocol operation with a key of each role, through real
// clients, and checks each is allowed or refused with AccessDeniedException
// as the role declares. Allowed means any answer but AccessDeniedException:
// the inputs name mostly missing resources, so validation errors are
// expected.
func TestPermissionMatrix(t *testing.T) {
	cases := apiCases()
	var names []string
	for _, c := range cases {
		names = append(names, c.op)
	}
	for op := range cd.Operations {
		if !slices.Contains(names, op) {
			t.Errorf("operation %s is missing from the matrix", op)
		}
	}
	if len(cases) != len(cd.Operations) || len(cases) != 47 {
		t.Fatalf("%d cases for %d operations", len(cases), len(cd.Operations))
	}
	roles := []struct {
		name  string
		grant access.Grant
		api   func(apiCase) bool
		admin bool
		agent bool
	}{
		{"admin", access.Grant{Role: access.Admin}, func(apiCase) bool { return true }, true, false},
		{"deployer", access.Grant{Role: access.Deployer}, func(apiCase) bool { return true }, false, false},
		{"read-only", access.Grant{Role: access.ReadOnly}, func(c apiCase) bool { return c.read }, false, false},
		{"host", access.Grant{}, func(apiCase) bool { return false }, false, true},
		{"deployer limited to matrix-*", access.Grant{Role: access.Deployer, Applications: []string{"matrix-*"}}, func(c apiCase) bool { return c.narrow }, false, false},
		{"admin limited to us-east-1", access.Grant{Role: access.Admin, Regions: []string{"us-east-1"}}, func(apiCase) bool { return true }, false, false},
		{"admin limited to eu-west-1", access.Grant{Role: access.Admin, Regions: []string{"eu-west-1"}}, func(apiCase) bool { return false }, false, false},
	}
	ctx := context.Background()
	for _, role := range roles {
		t.Run(role.name, func(t *testing.T) {
			f := newFixture(t)
			env := f.env
			k := f.host // the host row uses the fixture's host key
			if role.grant.Role != "" {
				var err error
				if k, err = env.Server.Keys.CreateKey(ctx, keys.Spec{User: "matrix-user", Grant: role.grant}); err != nil {
					t.Fatal(err)
				}
			}
			c := env.NewClient(k.AccessKeyID, k.SecretAccessKey, env.Region)
			for _, tc := range cases {
				err := tc.call(ctx, c, f)
				if got, want := !denied(t, err, k.Arn, "codedeploy:"+tc.op), role.api(tc); got != want {
					t.Errorf("%s: allowed %v, want %v (%v)", tc.op, got, want, err)
				}
			}
			_, err := createKeyCall(ctx, adminClient(env, k.AccessKeyID, k.SecretAccessKey, env.Region), "matrix-made", "read-only")
			if got := !denied(t, err, k.Arn, "iam:CreateAccessKey"); got != role.admin {
				t.Errorf("CreateAccessKey: allowed %v, want %v (%v)", got, role.admin, err)
			}
			err = adminClient(env, k.AccessKeyID, k.SecretAccessKey, env.Region).Call(ctx, "DeleteAccessKey", map[string]string{"AccessKeyId": "AKIAMATRIXNONE000000"}, nil)
			if got := !denied(t, err, k.Arn, "iam:DeleteAccessKey"); got != role.admin {
				t.Errorf("DeleteAccessKey: allowed %v, want %v (%v)", got, role.admin, err)
			}
			// The fleet view is a read of a deployment group.
			err = adminClient(env, k.AccessKeyID, k.SecretAccessKey, env.Region).Call(ctx, "GetDeploymentGroupFleet",
				map[string]string{"applicationName": mApp, "deploymentGroupName": mGroup}, nil)
			if got, want := !denied(t, err, k.Arn, "codedeploy:GetDeploymentGroupFleet"), role.api(apiCase{read: true, narrow: true}); got != want {
				t.Errorf("GetDeploymentGroupFleet: allowed %v, want %v (%v)", got, want, err)
			}
			ac := agentClient(env, k.AccessKeyID, k.SecretAccessKey, env.Region)
			for _, tc := range agentCases() {
				err := tc.call(ctx, ac, k.Arn)
				if got := !denied(t, err, k.Arn, "codedeploy-commands-secure:"+tc.op); got != role.agent {
					t.Errorf("%s: allowed %v, want %v (%v)", tc.op, got, role.agent, err)
				}
			}
		})
	}
}

// TestNarrowedKeys checks application and deployment-group limits: an
// application entry reaches its groups and deployments; a group entry
// reaches that group, its deployments and reads of the application.
func TestNarrowedKeys(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("other-app")}); err != nil {
		t.Fatal(err)
	}
	key := func(apps ...string) *codedeploy.Client {
		k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "narrow", Grant: access.Grant{Role: access.Deployer, Applications: apps}})
		if err != nil {
			t.Fatal(err)
		}
		return env.NewClient(k.AccessKeyID, k.SecretAccessKey, env.Region)
	}
	app, group := key(mApp), key(mApp+"/"+mGroup)
	otherGroup := key(mApp + "/other-group")
	cases := []struct {
		name    string
		c       *codedeploy.Client
		call    func(c *codedeploy.Client) error
		allowed bool
	}{
		{"app key reads its app", app, func(c *codedeploy.Client) error {
			_, err := c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String(mApp)})
			return err
		}, true},
		{"app key reads another app", app, func(c *codedeploy.Client) error {
			_, err := c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("other-app")})
			return err
		}, false},
		{"app key batch-reads its app and another", app, func(c *codedeploy.Client) error {
			_, err := c.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: []string{mApp, "other-app"}})
			return err
		}, false},
		{"app key renames its app to a name outside", app, func(c *codedeploy.Client) error {
			_, err := c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String(mApp), NewApplicationName: aws.String("elsewhere")})
			return err
		}, false},
		{"app key creates a group in its app", app, func(c *codedeploy.Client) error {
			_, err := c.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String(mApp), DeploymentGroupName: aws.String("g2"),
				ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/cutover")})
			return err
		}, true},
		{"group key deploys to its group", group, func(c *codedeploy.Client) error {
			_, err := c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(mApp), DeploymentGroupName: aws.String(mGroup), Revision: s3Revision()})
			return err
		}, true},
		{"group key stops a deployment of its group", group, func(c *codedeploy.Client) error {
			_, err := c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &f.deployment})
			return err
		}, true},
		{"other-group key reads a deployment of another group", otherGroup, func(c *codedeploy.Client) error {
			_, err := c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: &f.deployment})
			return err
		}, false},
		{"group key reads its application", group, func(c *codedeploy.Client) error {
			_, err := c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String(mApp)})
			return err
		}, true},
		{"group key deletes its application", group, func(c *codedeploy.Client) error {
			_, err := c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String(mApp)})
			return err
		}, false},
		{"group key tags its application", group, func(c *codedeploy.Client) error {
			_, err := c.TagResource(ctx, &codedeploy.TagResourceInput{ResourceArn: aws.String("arn:aws:codedeploy:us-east-1:000000000000:application:" + mApp),
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, false},
		{"app key lists applications", app, func(c *codedeploy.Client) error {
			_, err := c.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
			return err
		}, false},
		{"app key tags an instance", app, func(c *codedeploy.Client) error {
			_, err := c.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{mHost},
				Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("nowhere")}}})
			return err
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(tc.c)
			if got := servertest.ErrorCode(err) != "AccessDeniedException"; got != tc.allowed {
				t.Fatalf("allowed %v, want %v (%v)", got, tc.allowed, err)
			}
		})
	}
	// A member given twice, once per spelling, is checked in every form.
	status, _, doc := rawAs(t, env, f, "CodeDeploy_20141006.GetApplication", `{"applicationName":"other-app","ApplicationName":"`+mApp+`"}`)
	if status != 400 || doc["__type"] != "AccessDeniedException" {
		t.Fatalf("duplicate member: %d %v", status, doc)
	}
}

// rawAs signs a hand-made body with a key limited to matrix-app: the test
// is about a body the SDK would never send.
func rawAs(t *testing.T, env *servertest.Env, f *fixture, target, body string) (int, string, map[string]any) {
	t.Helper()
	k, err := env.Server.Keys.CreateKey(context.Background(), keys.Spec{User: "raw", Grant: access.Grant{Role: access.Deployer, Applications: []string{mApp}}})
	if err != nil {
		t.Fatal(err)
	}
	e := *env
	e.AccessKey, e.SecretKey = k.AccessKeyID, k.SecretAccessKey
	return raw(t, &e, "POST", target, []byte(body), true)
}

func wantDenied(t *testing.T, err error, what string) {
	t.Helper()
	code := servertest.ErrorCode(err)
	if pe := (*protocol.APIError)(nil); errors.As(err, &pe) {
		code = pe.Type
	}
	if code != "AccessDeniedException" {
		t.Fatalf("%s: got %q (%v), want AccessDeniedException", what, code, err)
	}
}

// Finding: a host's key signing for another region became an admin.
func TestHostKeyOtherRegionIsDenied(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	for _, region := range []string{"eu-west-1", "us-west-2"} {
		c := env.NewClient(f.host.AccessKeyID, f.host.SecretAccessKey, region)
		_, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("evil")})
		wantDenied(t, err, "CreateApplication in "+region)
		_, err = c.DeleteApplication(ctx, &codedeploy.DeleteApplicationInput{ApplicationName: aws.String(mApp)})
		wantDenied(t, err, "DeleteApplication in "+region)
		_, err = c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
		wantDenied(t, err, "ListOnPremisesInstances in "+region)
		_, err = c.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(mApp), DeploymentGroupName: aws.String(mGroup), Revision: s3Revision()})
		wantDenied(t, err, "CreateDeployment in "+region)
		_, err = createKeyCall(ctx, adminClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, region), "evil-admin", "admin")
		wantDenied(t, err, "CreateAccessKey in "+region)
		// Nor does it poll there: it is bound to its own region.
		host := f.host.Arn
		_, err = agentClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
		wantDenied(t, err, "PollHostCommand in "+region)
	}
	// Nothing changed.
	if _, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String(mApp)}); err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"eu-west-1", "us-west-2"} {
		list, err := env.NewClient(env.AccessKey, env.SecretKey, region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		if err != nil || len(list.Applications) != 0 {
			t.Fatalf("%s: %v %v", region, list.Applications, err)
		}
	}
	// In its own region it polls.
	host := f.host.Arn
	if _, err := agentClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, env.Region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host}); err != nil {
		t.Fatalf("own region: %v", err)
	}
}

// Finding: a deregistered instance's key became an admin key.
func TestDeregisteredHostKeyHasNoPower(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	host := f.host.Arn
	ac := agentClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, env.Region)
	if _, err := ac.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host}); err != nil {
		t.Fatalf("registered: %v", err)
	}
	if _, err := env.Client.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String(mHost)}); err != nil {
		t.Fatal(err)
	}
	_, err := ac.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
	wantDenied(t, err, "PollHostCommand after deregistration")
	c := env.NewClient(f.host.AccessKeyID, f.host.SecretAccessKey, env.Region)
	_, err = c.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	wantDenied(t, err, "ListApplications after deregistration")
	_, err = createKeyCall(ctx, adminClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, env.Region), "evil-admin", "admin")
	wantDenied(t, err, "CreateAccessKey after deregistration")
	// Registering the name again under another key's ARN does not bring
	// the old key back either.
	other, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "matrix-host-2", Grant: access.Grant{Role: access.Host, Region: env.Region, Instance: mHost}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(mHost), IamUserArn: aws.String(other.Arn)}); err != nil {
		t.Fatal(err)
	}
	_, err = ac.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
	wantDenied(t, err, "old key after re-registration")
	otherArn := other.Arn
	if _, err := agentClient(env, other.AccessKeyID, other.SecretAccessKey, env.Region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &otherArn}); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

// Finding: an admin of one account registered another account's host, so
// its deployments ran as root there.
func TestCrossAccountRegistrationRefused(t *testing.T) {
	env := servertest.Start(t, shortPolls)
	ctx := context.Background()
	admin111, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "admin", Account: "111111111111", Grant: access.Grant{Role: access.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	host222, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "web-1", Account: "222222222222", Grant: access.Grant{Role: access.Host, Region: env.Region, Instance: "web-1"}})
	if err != nil {
		t.Fatal(err)
	}
	c := env.NewClient(admin111.AccessKeyID, admin111.SecretAccessKey, env.Region)
	_, err = c.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("web-1"), IamUserArn: aws.String(host222.Arn)})
	servertest.WantError(t, err, "InvalidIamUserArnException")
	list, err := c.ListOnPremisesInstances(ctx, &codedeploy.ListOnPremisesInstancesInput{})
	if err != nil || len(list.InstanceNames) != 0 {
		t.Fatalf("instances %v %v", list.InstanceNames, err)
	}
	// 222's host has no instance registered, so it gets no commands at all.
	host := host222.Arn
	_, err = agentClient(env, host222.AccessKeyID, host222.SecretAccessKey, env.Region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
	wantDenied(t, err, "unregistered host polls")
}

// Host commands are matched by account, region and instance: an IAM ARN
// registered in two regions gets each region's commands only when its key
// signs for that region, and a host key only ever signs for its own.
func TestHostCommandsScopedByRegion(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	// The same ARN registered as an instance of eu-west-1, with a group
	// and a deployment there.
	eu := env.NewClient(env.AccessKey, env.SecretKey, "eu-west-1")
	if _, err := eu.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String(mHost), IamUserArn: aws.String(f.host.Arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{InstanceNames: []string{mHost}, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("eu")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("eu-app")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eu.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String("eu-app"), DeploymentGroupName: aws.String("g"),
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/cutover"),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("env"), Value: aws.String("eu"), Type: types.TagFilterTypeKeyAndValue}}}); err != nil {
		t.Fatal(err)
	}
	dep, err := eu.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("eu-app"), DeploymentGroupName: aws.String("g"), Revision: s3Revision()})
	if err != nil {
		t.Fatal(err)
	}
	// The us-east-1 host key polls in its region: the eu-west-1 command is
	// not handed to it.
	host := f.host.Arn
	ac := agentClient(env, f.host.AccessKeyID, f.host.SecretAccessKey, env.Region)
	for range 3 {
		out, err := ac.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
		if err != nil {
			t.Fatal(err)
		}
		if out.HostCommand != nil {
			t.Fatalf("us-east-1 key was given %+v", out.HostCommand)
		}
	}
	// Nor may it fetch that deployment's specification.
	_, err = ac.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{HostIdentifier: &host,
		DeploymentExecutionId: aws.String(fmt.Sprintf("Cutover/eu-west-1/000000000000/%s", *dep.DeploymentId))})
	if err == nil {
		t.Fatal("specification of another region's deployment handed out")
	}
	// A host key of eu-west-1 for that instance gets it.
	euKey, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: mHost, Grant: access.Grant{Role: access.Host, Region: "eu-west-1", Instance: mHost}})
	if err != nil {
		t.Fatal(err)
	}
	euAgent := agentClient(env, euKey.AccessKeyID, euKey.SecretAccessKey, "eu-west-1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := euAgent.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
		if err != nil {
			t.Fatal(err)
		}
		if out.HostCommand != nil {
			if !strings.Contains(aws.ToString(out.HostCommand.DeploymentExecutionId), *dep.DeploymentId) {
				t.Fatalf("command %+v", out.HostCommand)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("eu-west-1 key never got its command")
		}
	}
}

// `cutover agent register` (agent.Register) makes a host key bound to the
// instance it registers, in the region it registers it in.
func TestAgentRegisterMakesHostKey(t *testing.T) {
	env := servertest.Start(t, shortPolls)
	ctx := context.Background()
	cfg, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region, InstanceName: "web-7",
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	k, err := env.Server.Keys.Get(ctx, cfg.AWSAccessKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Role != access.Host || k.Instance != "web-7" || k.Region != env.Region || k.Arn != cfg.IAMUserARN {
		t.Fatalf("registered key %+v", k)
	}
	host := cfg.IAMUserARN
	if _, err := agentClient(env, cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey, env.Region).PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host}); err != nil {
		t.Fatalf("poll: %v", err)
	}
	_, err = env.NewClient(cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey, env.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	wantDenied(t, err, "host key ListApplications")
}

// The embedded revision store decides by declared role too: any key reads,
// only an admin or deployer key without limits writes, and a host key
// reads only while its instance is registered with it.
func TestRevisionStoreByRole(t *testing.T) {
	f := newFixture(t)
	env := f.env
	ctx := context.Background()
	admin := s3Client(env)
	bucketWithObject(ctx, t, admin, "revs", "a.zip", "zip")
	as := func(k keys.Created) *s3.Client {
		return s3.New(s3.Options{Region: env.Region, BaseEndpoint: aws.String(env.URL), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(k.AccessKeyID, k.SecretAccessKey, ""), Retryer: aws.NopRetryer{}})
	}
	mk := func(g access.Grant) keys.Created {
		k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "s3-user", Grant: g})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mkIn := func(account string, g access.Grant) keys.Created {
		k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "s3-" + string(g.Role), Account: account, Grant: g})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cases := []struct {
		name        string
		key         keys.Created
		read, write bool
	}{
		{"deployer", mk(access.Grant{Role: access.Deployer}), true, true},
		{"read-only", mk(access.Grant{Role: access.ReadOnly}), true, false},
		{"deployer limited to an application", mk(access.Grant{Role: access.Deployer, Applications: []string{mApp}}), true, false},
		{"admin limited to a region", mk(access.Grant{Role: access.Admin, Regions: []string{env.Region}}), true, false},
		{"host", f.host, true, false},
		// The bucket is the fixture account's: no role of another account
		// may use it.
		{"admin of another account", mkIn("222222222222", access.Grant{Role: access.Admin}), false, false},
		{"deployer of another account", mkIn("222222222222", access.Grant{Role: access.Deployer}), false, false},
		{"read-only of another account", mkIn("222222222222", access.Grant{Role: access.ReadOnly}), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := as(tc.key)
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip")})
			if (err == nil) != tc.read {
				t.Errorf("read: %v, want allowed %v", err, tc.read)
			}
			_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("revs"), Key: aws.String("b.zip"), Body: strings.NewReader("b")})
			if (err == nil) != tc.write {
				t.Errorf("write: %v, want allowed %v", err, tc.write)
			}
			if err != nil && servertest.ErrorCode(err) != "AccessDenied" {
				t.Errorf("write refused with %v, want AccessDenied", err)
			}
		})
	}
	// The successful writes are in the audit log, reads and refusals not.
	entries, err := audit.List(ctx, env.Server.Store, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var s3ops []string
	for _, e := range entries {
		if strings.HasPrefix(e.Operation, "s3:") {
			s3ops = append(s3ops, e.AccessKeyID+" "+e.Operation+" "+strings.Join(e.Resources, ",")+" "+e.Principal)
		}
	}
	want := []string{
		env.AccessKey + " s3:CreateBucket s3:revs,bucket-owner:000000000000 arn:aws:iam::000000000000:user/root",
		env.AccessKey + " s3:PutObject s3:revs/a.zip,bucket-owner:000000000000 arn:aws:iam::000000000000:user/root",
		cases[0].key.AccessKeyID + " s3:PutObject s3:revs/b.zip,bucket-owner:000000000000 arn:aws:iam::000000000000:user/s3-user",
	}
	if !slices.Equal(s3ops, want) {
		t.Errorf("audit of S3 writes\n got %q\nwant %q", s3ops, want)
	}
	if _, err := env.Client.DeregisterOnPremisesInstance(ctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String(mHost)}); err != nil {
		t.Fatal(err)
	}
	_, err = as(f.host).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("revs"), Key: aws.String("a.zip")})
	if servertest.ErrorCode(err) != "AccessDenied" {
		t.Fatalf("deregistered host reads: %v", err)
	}
}
