package clitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// toolEnv is the environment of an AWS tool pointed at env and isolated
// from the user's own AWS configuration.
func toolEnv(t *testing.T, env *servertest.Env) []string {
	dir := t.TempDir()
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "BOTO_") {
			out = append(out, kv)
		}
	}
	return append(out,
		"AWS_ENDPOINT_URL="+env.URL,
		"AWS_ACCESS_KEY_ID="+env.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+env.SecretKey,
		"AWS_REGION="+env.Region,
		"AWS_DEFAULT_REGION="+env.Region,
		"AWS_PAGER=",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
	)
}

type cli struct {
	t   *testing.T
	env []string
}

// run runs `aws deploy <args> --output json` and returns stdout, stderr and
// the exit code.
func (c cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command("aws", append(append([]string{"deploy"}, args...), "--output", "json")...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("aws %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// ok runs a command that must succeed and decodes its JSON output into v
// (nil: output ignored).
func (c cli) ok(v any, args ...string) {
	c.t.Helper()
	stdout, stderr, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws deploy %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			c.t.Fatalf("aws deploy %s: output %q: %v", strings.Join(args, " "), stdout, err)
		}
	}
}

func TestAWSCLISession(t *testing.T) {
	path, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("SKIPPING AWS CLI SESSION: the aws command is not on PATH; install awscli to run it")
	}
	version, _ := exec.Command(path, "--version").CombinedOutput()
	t.Logf("using %s: %s", path, bytes.TrimSpace(version))
	// A service error exits 254 with AWS CLI v2; v1 has no separate code
	// for it and exits 255.
	wantExit := 254
	if bytes.HasPrefix(version, []byte("aws-cli/1.")) {
		wantExit = 255
	}
	env := servertest.Start(t)
	c := cli{t: t, env: toolEnv(t, env)}

	var created struct{ ApplicationId string }
	c.ok(&created, "create-application", "--application-name", "cli-app", "--compute-platform", "Server", "--tags", "Key=team,Value=cli")
	if len(created.ApplicationId) != 36 {
		t.Fatalf("applicationId %q", created.ApplicationId)
	}
	var got struct {
		Application struct {
			ApplicationId, ApplicationName, ComputePlatform string
			CreateTime                                      any
			LinkedToGitHub                                  bool
		}
	}
	c.ok(&got, "get-application", "--application-name", "cli-app")
	if a := got.Application; a.ApplicationId != created.ApplicationId || a.ApplicationName != "cli-app" || a.ComputePlatform != "Server" || a.CreateTime == nil {
		t.Errorf("get-application: %+v", a)
	}
	var apps struct{ Applications []string }
	c.ok(&apps, "list-applications")
	if !slices.Equal(apps.Applications, []string{"cli-app"}) {
		t.Errorf("list-applications: %v", apps.Applications)
	}

	var cfg struct{ DeploymentConfigId string }
	c.ok(&cfg, "create-deployment-config", "--deployment-config-name", "cli-cfg", "--minimum-healthy-hosts", "type=HOST_COUNT,value=2")
	var cfgInfo struct {
		DeploymentConfigInfo struct {
			DeploymentConfigId  string
			MinimumHealthyHosts struct {
				Type  string
				Value int
			}
		}
	}
	c.ok(&cfgInfo, "get-deployment-config", "--deployment-config-name", "cli-cfg")
	if i := cfgInfo.DeploymentConfigInfo; i.DeploymentConfigId != cfg.DeploymentConfigId || i.MinimumHealthyHosts.Type != "HOST_COUNT" || i.MinimumHealthyHosts.Value != 2 {
		t.Errorf("get-deployment-config: %+v", i)
	}
	var configs struct{ DeploymentConfigsList []string }
	c.ok(&configs, "list-deployment-configs")
	if len(configs.DeploymentConfigsList) != 18 || !slices.Contains(configs.DeploymentConfigsList, "cli-cfg") || !slices.Contains(configs.DeploymentConfigsList, "CodeDeployDefault.OneAtATime") {
		t.Errorf("list-deployment-configs: %v", configs.DeploymentConfigsList)
	}

	const arn = "arn:aws:codedeploy:us-east-1:000000000000:application:cli-app"
	c.ok(nil, "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=prod", "Key=team,Value=platform")
	var tags struct {
		Tags []struct{ Key, Value string }
	}
	c.ok(&tags, "list-tags-for-resource", "--resource-arn", arn)
	if fmt.Sprint(tags.Tags) != "[{env prod} {team platform}]" {
		t.Errorf("list-tags-for-resource: %v", tags.Tags)
	}
	c.ok(nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "env")

	// Errors: the CLI names the exception on stderr and exits 254 (v2).
	errCases := []struct {
		name string
		args []string
		want string
	}{
		{"missing application", []string{"get-application", "--application-name", "no-such-app"}, "ApplicationDoesNotExistException"},
		{"duplicate application", []string{"create-application", "--application-name", "cli-app"}, "ApplicationAlreadyExistsException"},
		{"delete built-in config", []string{"delete-deployment-config", "--deployment-config-name", "CodeDeployDefault.AllAtOnce"}, "InvalidOperationException"},
		{"tag lambda function", []string{"list-tags-for-resource", "--resource-arn", "arn:aws:lambda:us-east-1:000000000000:function:f"}, "ArnNotSupportedException"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := c.run(tc.args...)
			if code != wantExit || !strings.Contains(stderr, "An error occurred ("+tc.want+")") {
				t.Errorf("exit %d, stderr %q; want %d naming %s", code, stderr, wantExit, tc.want)
			}
		})
	}

	t.Run("groups and instances", func(t *testing.T) {
		c := cli{t: t, env: c.env}
		stdout, stderr, code := c.run("create-deployment-group", "--application-name", "cli-app", "--deployment-group-name", "cli-dg",
			"--service-role-arn", "arn:aws:iam::000000000000:role/CodeDeployServiceRole", "--deployment-config-name", "cli-cfg",
			"--on-premises-instance-tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")
		var dg struct{ DeploymentGroupId string }
		if code != 0 || json.Unmarshal([]byte(stdout), &dg) != nil || len(dg.DeploymentGroupId) != 36 {
			t.Fatalf("create-deployment-group: exit %d %s %s", code, stdout, stderr)
		}
		var groups struct{ DeploymentGroups []string }
		c.ok(&groups, "list-deployment-groups", "--application-name", "cli-app")
		if !slices.Equal(groups.DeploymentGroups, []string{"cli-dg"}) {
			t.Errorf("list-deployment-groups: %v", groups.DeploymentGroups)
		}
		_, stderr, code = c.run("register-on-premises-instance", "--instance-name", "cli-host", "--iam-user-arn", "arn:aws:iam::000000000000:user/cli-host")
		if code != 0 {
			t.Fatalf("register-on-premises-instance: exit %d %s", code, stderr)
		}
		c.ok(nil, "add-tags-to-on-premises-instances", "--instance-names", "cli-host", "--tags", "Key=env,Value=prod")
		var inst struct{ InstanceNames []string }
		c.ok(&inst, "list-on-premises-instances")
		if !slices.Equal(inst.InstanceNames, []string{"cli-host"}) {
			t.Errorf("list-on-premises-instances: %v", inst.InstanceNames)
		}
		c.ok(&inst, "list-on-premises-instances", "--registration-status", "Registered", "--tag-filters", "Key=env,Value=prod,Type=KEY_AND_VALUE")
		if !slices.Equal(inst.InstanceNames, []string{"cli-host"}) {
			t.Errorf("list-on-premises-instances by tag: %v", inst.InstanceNames)
		}
		t.Run("no match", func(t *testing.T) {
			stdout, stderr, code := c.run("list-on-premises-instances", "--tag-filters", "Key=env,Value=staging,Type=KEY_AND_VALUE")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if strings.TrimSpace(stdout) == "" {
				t.Fatal(`an empty result must be answered {"instanceNames":[]}, the CLI printed nothing`)
			}
			var none struct{ InstanceNames []string }
			if err := json.Unmarshal([]byte(stdout), &none); err != nil || none.InstanceNames == nil || len(none.InstanceNames) != 0 {
				t.Errorf("list-on-premises-instances by other tag: %q %v", stdout, err)
			}
		})
		var oi struct {
			InstanceInfo struct {
				InstanceName, InstanceArn, IamUserArn string
				Tags                                  []struct{ Key, Value string }
			}
		}
		c.ok(&oi, "get-on-premises-instance", "--instance-name", "cli-host")
		if i := oi.InstanceInfo; i.InstanceName != "cli-host" || !strings.HasPrefix(i.InstanceArn, "arn:aws:codedeploy:us-east-1:000000000000:instance/cli-host_") || fmt.Sprint(i.Tags) != "[{env prod}]" {
			t.Errorf("get-on-premises-instance: %+v", i)
		}
	})
}

// boto3Script runs a session like the CLI's and prints what it saw as JSON.
const boto3Script = `
import json, os, sys
import boto3
from botocore.exceptions import ClientError

cd = boto3.client("codedeploy")
out = {"boto3": boto3.__version__}

def code(fn, **kw):
    try:
        fn(**kw)
        return None
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "requestId": e.response["ResponseMetadata"].get("RequestId", "")}

def not_yet(err):
    return err is not None and err["code"] == "InvalidOperationException" and "not available" in err["message"]

out["emptyListHasKey"] = "applications" in cd.list_applications()
r = cd.create_application(applicationName="py-app", computePlatform="Server")
out["applicationId"] = r["applicationId"]
out["requestId"] = r["ResponseMetadata"]["RequestId"]
a = cd.get_application(applicationName="py-app")["application"]
out["application"] = {"name": a["applicationName"], "platform": a["computePlatform"],
                      "createTimeType": type(a["createTime"]).__name__, "linkedToGitHub": a["linkedToGitHub"]}
cd.create_deployment_config(deploymentConfigName="py-cfg", minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 0})
c = cd.get_deployment_config(deploymentConfigName="py-cfg")["deploymentConfigInfo"]
out["config"] = c["minimumHealthyHosts"]
one = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.OneAtATime")["deploymentConfigInfo"]
out["oneAtATime"] = {"id": one["deploymentConfigId"], "mh": one["minimumHealthyHosts"]}
out["configs"] = [n for p in cd.get_paginator("list_deployment_configs").paginate() for n in p["deploymentConfigsList"]]
arn = "arn:aws:codedeploy:us-east-1:000000000000:application:py-app"
cd.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "py"}])
out["tags"] = cd.list_tags_for_resource(ResourceArn=arn)["Tags"]
out["missingApp"] = code(cd.get_application, applicationName="no-such-app")
out["badConfig"] = code(cd.create_deployment_config, deploymentConfigName="CodeDeployDefault.Mine",
                        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1})

for i in range(104):
    cd.create_application(applicationName="bulk-%03d" % i)
pages = [p["applications"] for p in cd.get_paginator("list_applications").paginate()]
out["pageSizes"] = [len(p) for p in pages]
out["applications"] = [n for p in pages for n in p]

err = code(cd.create_deployment_group, applicationName="py-app", deploymentGroupName="py-dg",
           serviceRoleArn="arn:aws:iam::000000000000:role/CodeDeployServiceRole")
if not_yet(err):
    out["groups"] = "skipped: " + err["message"]
elif err:
    out["groups"] = err
else:
    out["groups"] = cd.list_deployment_groups(applicationName="py-app")["deploymentGroups"]
    bg = cd.batch_get_deployment_groups(applicationName="py-app", deploymentGroupNames=["py-dg"])
    out["groupInfo"] = {"name": bg["deploymentGroupsInfo"][0]["deploymentGroupName"], "error": bg.get("errorMessage", "")}

err = code(cd.register_on_premises_instance, instanceName="py-host", iamUserArn="arn:aws:iam::000000000000:user/py-host")
if not_yet(err):
    out["instances"] = "skipped: " + err["message"]
elif err:
    out["instances"] = err
else:
    cd.add_tags_to_on_premises_instances(instanceNames=["py-host"], tags=[{"Key": "env", "Value": "prod"}])
    out["instances"] = cd.list_on_premises_instances(tagFilters=[{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}])["instanceNames"]

json.dump(out, sys.stdout)
`

// python3WithBoto3 returns the python3 to run boto3 scripts with, or skips
// the test (loudly) when boto3 is missing.
func python3WithBoto3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPING BOTO3 TEST: python3 is not on PATH")
	}
	if out, err := exec.Command(py, "-c", "import boto3").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING BOTO3 TEST: boto3 is not importable: %s", out)
	}
	return py
}

func TestBoto3Session(t *testing.T) {
	py := python3WithBoto3(t)
	env := servertest.Start(t)
	cmd := exec.Command(py, "-c", boto3Script)
	cmd.Env = toolEnv(t, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 session: %v\n%s", err, stderr.String())
	}
	t.Logf("boto3 session took %v", time.Since(start).Round(time.Millisecond))
	var got struct {
		Boto3, ApplicationID, RequestID string
		EmptyListHasKey                 bool
		Application                     struct {
			Name, Platform, CreateTimeType string
			LinkedToGitHub                 bool
		}
		Config struct {
			Type  string
			Value int
		}
		OneAtATime struct {
			ID string
			Mh struct {
				Type  string
				Value int
			}
		}
		Configs               []string
		Tags                  []struct{ Key, Value string }
		MissingApp, BadConfig *struct {
			Code, Message, RequestID string
			Status                   int
		}
		PageSizes    []int
		Applications []string
		Groups       any
		GroupInfo    *struct{ Name, Error string }
		Instances    any
	}
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode boto3 output: %v\n%s", err, stderr.String())
	}
	t.Logf("boto3 %s", got.Boto3)
	t.Run("empty list keeps its key", func(t *testing.T) {
		if !got.EmptyListHasKey {
			t.Fatal(`list_applications() on an empty account must keep the "applications" key`)
		}
	})
	if len(got.ApplicationID) != 36 || len(got.RequestID) != 36 {
		t.Errorf("applicationId %q requestId %q", got.ApplicationID, got.RequestID)
	}
	if a := got.Application; a.Name != "py-app" || a.Platform != "Server" || a.CreateTimeType != "datetime" || a.LinkedToGitHub {
		t.Errorf("application %+v", a)
	}
	if got.Config.Type != "FLEET_PERCENT" || got.Config.Value != 0 {
		t.Errorf("custom config %+v", got.Config)
	}
	if o := got.OneAtATime; o.ID != "00000000-0000-0000-0000-000000000001" || o.Mh.Type != "MOST_CONCURRENCY" || o.Mh.Value != 1 {
		t.Errorf("OneAtATime %+v", o)
	}
	if len(got.Configs) != 18 || !slices.Contains(got.Configs, "py-cfg") {
		t.Errorf("configs %v", got.Configs)
	}
	if fmt.Sprint(got.Tags) != "[{team py}]" {
		t.Errorf("tags %v", got.Tags)
	}
	if e := got.MissingApp; e == nil || e.Code != "ApplicationDoesNotExistException" || e.Status != 400 || e.RequestID == "" {
		t.Errorf("missing app error %+v", e)
	}
	if e := got.BadConfig; e == nil || e.Code != "InvalidDeploymentConfigNameException" {
		t.Errorf("reserved-prefix config error %+v", e)
	}
	if fmt.Sprint(got.PageSizes) != "[100 5]" {
		t.Errorf("list_applications pages of %v, want [100 5]", got.PageSizes)
	}
	if len(got.Applications) != 105 || !slices.IsSorted(got.Applications) || len(slices.Compact(slices.Clone(got.Applications))) != 105 {
		t.Errorf("paginated %d applications", len(got.Applications))
	}
	switch g := got.Groups.(type) {
	case string:
		t.Logf("deployment groups part: %s", g)
	case []any:
		if fmt.Sprint(g) != "[py-dg]" || got.GroupInfo == nil || got.GroupInfo.Name != "py-dg" || got.GroupInfo.Error != "" {
			t.Errorf("groups %v %+v", g, got.GroupInfo)
		}
	default:
		t.Errorf("groups: %v", g)
	}
	switch i := got.Instances.(type) {
	case string:
		t.Logf("instances part: %s", i)
	case []any:
		if fmt.Sprint(i) != "[py-host]" {
			t.Errorf("instances %v", i)
		}
	default:
		t.Errorf("instances: %v", i)
	}
}
