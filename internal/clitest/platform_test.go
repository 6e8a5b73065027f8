package clitest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// platformScript is what moto's own CodeDeploy tests do with Lambda and
// ECS: an application, a group and a deployment for each, then reads.
// With MOTO set it runs against moto's in-process mock instead, so the
// same calls are shown to be accepted by an emulator pipelines use.
const platformScript = `
import json, os, sys, boto3, contextlib

ctx = contextlib.nullcontext()
if os.environ.get("MOTO"):
    from moto import mock_aws
    ctx = mock_aws()
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CODEDEPLOY"):
        os.environ.pop(k, None)

out = {}
with ctx:
    cd = boto3.client("codedeploy", region_name="us-east-1")
    role = "arn:aws:iam::123456789012:role/CodeDeployRole"
    cd.create_application(applicationName="fn", computePlatform="Lambda")
    cd.create_deployment_group(applicationName="fn", deploymentGroupName="live", serviceRoleArn=role,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"})
    appspec = json.dumps({"version": 0.0, "Resources": [{"fn": {"Type": "AWS::Lambda::Function",
        "Properties": {"Name": "fn", "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}]})
    d = cd.create_deployment(applicationName="fn", deploymentGroupName="live",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec}})
    info = cd.get_deployment(deploymentId=d["deploymentId"])["deploymentInfo"]
    out["lambda"] = {"status": info["status"], "platform": info.get("computePlatform"),
        "error": info.get("errorInformation", {}), "group": cd.get_deployment_group(applicationName="fn",
        deploymentGroupName="live")["deploymentGroupInfo"].get("computePlatform")}
    out["listed"] = len(cd.list_deployments(applicationName="fn", deploymentGroupName="live")["deployments"])
    out["batch"] = len(cd.batch_get_deployments(deploymentIds=[d["deploymentId"]])["deploymentsInfo"])

    cd.create_application(applicationName="svc", computePlatform="ECS")
    cd.create_deployment_group(applicationName="svc", deploymentGroupName="prod", serviceRoleArn=role,
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={"terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}},
        ecsServices=[{"serviceName": "web", "clusterName": "main"}],
        loadBalancerInfo={"targetGroupPairInfoList": [{"targetGroups": [{"name": "blue"}, {"name": "green"}],
            "prodTrafficRoute": {"listenerArns": ["arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2"]}}]})
    g = cd.get_deployment_group(applicationName="svc", deploymentGroupName="prod")["deploymentGroupInfo"]
    out["ecs"] = {"platform": g.get("computePlatform"), "services": g.get("ecsServices")}
    d = cd.create_deployment(applicationName="svc", deploymentGroupName="prod",
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0"}})
    info = cd.get_deployment(deploymentId=d["deploymentId"])["deploymentInfo"]
    out["ecsDeployment"] = {"status": info["status"], "error": info.get("errorInformation", {})}
json.dump(out, sys.stdout)
`

// TestBoto3LambdaAndECS runs moto's CodeDeploy test ideas through boto3:
// Lambda and ECS groups are accepted, and their deployments exist, failed,
// with an error that says why. The same script is run against moto when
// it is installed, to show that an emulator accepts the same calls.
func TestBoto3LambdaAndECS(t *testing.T) {
	py := python3WithBoto3(t)
	run := func(env []string) map[string]json.RawMessage {
		t.Helper()
		cmd := exec.Command(py, "-c", platformScript)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("boto3: %v\n%s", err, stderr.String())
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("decode %q: %v", stdout.String(), err)
		}
		return out
	}
	env := servertest.Start(t)
	got := run(toolEnv(t, env))
	var lambda struct {
		Status, Platform, Group string
		Error                   struct{ Code, Message string }
	}
	var ecs struct {
		Platform string
		Services []struct{ ServiceName, ClusterName string }
	}
	var ecsDep struct {
		Status string
		Error  struct{ Code, Message string }
	}
	var listed, batch int
	for k, v := range map[string]any{"lambda": &lambda, "ecs": &ecs, "ecsDeployment": &ecsDep, "listed": &listed, "batch": &batch} {
		if err := json.Unmarshal(got[k], v); err != nil {
			t.Fatalf("%s: %v (%s)", k, err, got[k])
		}
	}
	if lambda.Status != "Failed" || lambda.Platform != "Lambda" || lambda.Group != "Lambda" || lambda.Error.Code != "INVALID_LAMBDA_CONFIGURATION" ||
		!strings.Contains(lambda.Error.Message, "deploys only to the Server compute platform") || listed != 1 || batch != 1 {
		t.Errorf("Lambda: %+v listed %d batch %d", lambda, listed, batch)
	}
	if ecs.Platform != "ECS" || len(ecs.Services) != 1 || ecs.Services[0].ServiceName != "web" || ecsDep.Status != "Failed" || ecsDep.Error.Code != "INVALID_ECS_SERVICE" {
		t.Errorf("ECS: group %+v deployment %+v", ecs, ecsDep)
	}

	if out, err := exec.Command(py, "-c", "import moto").CombinedOutput(); err != nil {
		t.Logf("moto is not importable, the script is not run against it: %s", out)
		return
	}
	moto := run(append(toolEnv(t, env), "MOTO=1", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"))
	if len(moto["lambda"]) == 0 || len(moto["ecs"]) == 0 {
		t.Errorf("moto answered %v", moto)
	}
}
