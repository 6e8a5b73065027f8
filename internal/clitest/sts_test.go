package clitest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestAWSCLIGetCallerIdentity: `aws sts get-caller-identity` and boto3's
// sts client parse Cutover's STS answer and its XML errors.
func TestAWSCLIGetCallerIdentity(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("SKIPPING AWS CLI STS: the aws command is not on PATH; install awscli to run it")
	}
	env := servertest.Start(t)
	vars := toolEnv(t, env)
	run := func(vars []string, args ...string) (string, string, error) {
		cmd := exec.Command("aws", args...)
		cmd.Env = vars
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := run(vars, "sts", "get-caller-identity", "--output", "json")
	if err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, errOut)
	}
	var id struct{ Account, Arn, UserId string }
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if id.Account != "000000000000" || id.Arn != "arn:aws:iam::000000000000:user/root" || !strings.HasPrefix(id.UserId, "AIDA") {
		t.Errorf("identity %+v", id)
	}
	bad := append(append([]string{}, vars...), "AWS_SECRET_ACCESS_KEY=wrong")
	if _, errOut, err := run(bad, "sts", "get-caller-identity"); err == nil || !strings.Contains(errOut, "(SignatureDoesNotMatch)") {
		t.Errorf("wrong secret: %v %s", err, errOut)
	}

	py := python3WithBoto3(t)
	cmd := exec.Command(py, "-c", `
import boto3, botocore
sts = boto3.client("sts")
print(sts.get_caller_identity()["Arn"])
try:
    sts.get_session_token()
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
`)
	cmd.Env = vars
	b, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "arn:aws:iam::000000000000:user/root\nInvalidAction" {
		t.Errorf("boto3: %v %q", err, b)
	}
}
