package clitest

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// accessScript makes the refused calls of the trust findings with boto3
// and prints what botocore parsed of each answer.
const accessScript = `
import json, os, sys
import boto3
from botocore.exceptions import ClientError

def client(key, secret, region="us-east-1"):
    return boto3.client("codedeploy", region_name=region, aws_access_key_id=key, aws_secret_access_key=secret)

def err(fn, **kw):
    try:
        fn(**kw)
        return None
    except ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}

k = json.loads(os.environ["KEYS"])
viewer = client(*k["viewer"])
host_eu = client(*k["host"], region="eu-west-1")
admin = client(*k["admin"])
out = {
    "viewerDelete": err(viewer.delete_application, applicationName="web"),
    "viewerGet": err(viewer.get_application, applicationName="web"),
    "hostOtherRegion": err(host_eu.create_application, applicationName="evil"),
    "crossAccount": err(admin.register_on_premises_instance, instanceName="web-9", iamUserArn="arn:aws:iam::222222222222:user/web-9"),
}
json.dump(out, sys.stdout)
`

type botoErr struct {
	Code, Message string
	Status        int
}

func TestBoto3AccessDenied(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIPPING: python3 is not on PATH")
	}
	if out, err := exec.Command(py, "-c", "import boto3").CombinedOutput(); err != nil {
		t.Skipf("SKIPPING: boto3 is not importable: %s", out)
	}
	env := servertest.Start(t)
	ctx := context.Background()
	if _, err := env.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	viewer, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "viewer", Grant: access.Grant{Role: access.ReadOnly}})
	if err != nil {
		t.Fatal(err)
	}
	host, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "web-1", Grant: access.Grant{Role: access.Host, Region: env.Region, Instance: "web-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{InstanceName: aws.String("web-1"), IamUserArn: aws.String(host.Arn)}); err != nil {
		t.Fatal(err)
	}
	ks, _ := json.Marshal(map[string][2]string{
		"viewer": {viewer.AccessKeyID, viewer.SecretAccessKey},
		"host":   {host.AccessKeyID, host.SecretAccessKey},
		"admin":  {env.AccessKey, env.SecretKey},
	})
	cmd := exec.Command(py, "-c", accessScript)
	cmd.Env = append(toolEnv(t, env), "KEYS="+string(ks))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3: %v\n%s", err, stderr.String())
	}
	var got struct {
		ViewerDelete, ViewerGet, HostOtherRegion, CrossAccount *botoErr
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, stdout.String())
	}
	want := func(name string, e *botoErr, code, msgPrefix string) {
		t.Helper()
		if e == nil || e.Code != code || e.Status != 400 || !strings.HasPrefix(e.Message, msgPrefix) {
			t.Errorf("%s: %+v, want %s (400) %q…", name, e, code, msgPrefix)
		}
	}
	want("read-only DeleteApplication", got.ViewerDelete, "AccessDeniedException",
		"User: arn:aws:iam::000000000000:user/viewer is not authorized to perform: codedeploy:DeleteApplication on resource: arn:aws:codedeploy:us-east-1:000000000000:application:web")
	if got.ViewerGet != nil {
		t.Errorf("read-only GetApplication: %+v", got.ViewerGet)
	}
	want("host key in another region", got.HostOtherRegion, "AccessDeniedException",
		"User: arn:aws:iam::000000000000:user/web-1 is not authorized to perform: codedeploy:CreateApplication on resource: arn:aws:codedeploy:eu-west-1:000000000000:application:evil")
	want("another account's IAM ARN", got.CrossAccount, "InvalidIamUserArnException", "The IAM user ARN must belong to the caller's account")
	if _, err := env.Client.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String("web")}); err != nil {
		t.Fatalf("application after refused delete: %v", err)
	}
}
