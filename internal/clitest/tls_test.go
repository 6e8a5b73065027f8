package clitest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestAWSToolsOverTLS talks to a server serving HTTPS from its own CA, as
// cutover server does by default: the aws CLI and boto3 work given the CA
// file (AWS_CA_BUNDLE, or --ca-bundle), and refuse the server without it.
func TestAWSToolsOverTLS(t *testing.T) {
	env := servertest.Start(t, servertest.WithTLS())
	if !strings.HasPrefix(env.URL, "https://") || env.CAFile == "" {
		t.Fatalf("server at %s, CA file %q", env.URL, env.CAFile)
	}
	t.Run("aws", func(t *testing.T) {
		if _, err := exec.LookPath("aws"); err != nil {
			t.Skip("SKIPPING: the aws command is not on PATH; install awscli to run it")
		}
		c := cli{t, toolEnv(t, env)}
		if _, stderr, code := c.run("list-applications"); code == 0 || !strings.Contains(stderr, "SSL") {
			t.Fatalf("aws trusted the server without its CA: exit %d %s", code, stderr)
		}
		var out struct{ Applications []string }
		c.ok(&out, "list-applications", "--ca-bundle", env.CAFile)
		c = cli{t, append(toolEnv(t, env), "AWS_CA_BUNDLE="+env.CAFile)}
		c.ok(&out, "list-applications")
	})
	t.Run("boto3", func(t *testing.T) {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("SKIPPING: python3 is not on PATH")
		}
		if out, err := exec.Command(py, "-c", "import boto3").CombinedOutput(); err != nil {
			t.Skipf("SKIPPING: boto3 is not importable: %s", out)
		}
		const script = `import boto3, sys
print(boto3.client("codedeploy", verify=sys.argv[1]).list_applications()["applications"])`
		cmd := exec.Command(py, "-c", script, env.CAFile)
		cmd.Env = toolEnv(t, env)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || strings.TrimSpace(stdout.String()) != "[]" {
			t.Fatalf("boto3 with the CA: %v %q\n%s", err, stdout.String(), stderr.String())
		}
	})
}
