package terraformtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
)

const (
	defaultTerraform = "/usr/local/bin/terraform"
	defaultMirror    = "/opt/tf-plugins"
	providerVersion  = "5.100.0"
	targetGroup      = "tf-web-tg"
	topicArn         = "arn:aws:sns:us-east-1:000000000000:tf-deploys"
	alarmName        = "tf-web-5xx"
)

// tools returns the terraform binary and the provider mirror, or skips.
func tools(t *testing.T) (bin, mirror string) {
	bin = os.Getenv("CUTOVER_TERRAFORM")
	if bin == "" {
		bin = defaultTerraform
	}
	mirror = os.Getenv("CUTOVER_TF_PLUGIN_MIRROR")
	if mirror == "" {
		mirror = defaultMirror
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("SKIPPING TERRAFORM: no terraform binary at %s (set CUTOVER_TERRAFORM): %v", bin, err)
	}
	matches, _ := filepath.Glob(filepath.Join(mirror, "registry.terraform.io/hashicorp/aws", providerVersion, "*", "terraform-provider-aws*"))
	if len(matches) == 0 {
		t.Skipf("SKIPPING TERRAFORM: no hashicorp/aws %s provider under %s (set CUTOVER_TF_PLUGIN_MIRROR)", providerVersion, mirror)
	}
	return bin, mirror
}

type tf struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

// run runs terraform and returns its exit code; output goes to the log.
func (c tf) run(args ...string) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("terraform %v: %v", args, err)
	}
	return code, out.String()
}

func (c tf) ok(args ...string) string {
	c.t.Helper()
	code, out := c.run(args...)
	if code != 0 {
		c.t.Fatalf("terraform %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// planClean fails unless a plan finds nothing to change.
func (c tf) planClean(when string) {
	c.t.Helper()
	code, out := c.run("plan", "-detailed-exitcode", "-input=false", "-no-color")
	if code != 0 {
		c.t.Fatalf("plan %s: exit %d (want 0: no changes)\n%s", when, code, out)
	}
}

// config is the Terraform configuration: every CodeDeploy resource kind,
// with the attributes whose round trip most often drifts.
func config(url, key, secret string, skipAccount bool, tagValue string) string {
	return fmt.Sprintf(`
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "%[1]s" }
  }
}

provider "aws" {
  region                     = "us-east-1"
  access_key                 = %[2]q
  secret_key                 = %[3]q
  skip_metadata_api_check    = true
  skip_requesting_account_id = %[4]t
  endpoints {
    codedeploy = %[5]q
    sts        = %[5]q
  }
}

resource "aws_codedeploy_app" "web" {
  name             = "tf-web"
  compute_platform = "Server"
  tags             = { team = %[6]q }
}

resource "aws_codedeploy_deployment_config" "half" {
  deployment_config_name = "tf-half"
  compute_platform       = "Server"
  minimum_healthy_hosts {
    type  = "FLEET_PERCENT"
    value = 50
  }
}

resource "aws_codedeploy_deployment_group" "inplace" {
  app_name               = aws_codedeploy_app.web.name
  deployment_group_name  = "tf-inplace"
  service_role_arn       = "arn:aws:iam::000000000000:role/CodeDeploy"
  deployment_config_name = aws_codedeploy_deployment_config.half.id
  on_premises_instance_tag_filter {
    key   = "env"
    type  = "KEY_AND_VALUE"
    value = "prod"
  }
  trigger_configuration {
    trigger_events     = ["DeploymentFailure", "DeploymentSuccess"]
    trigger_name       = "notify"
    trigger_target_arn = %[7]q
  }
  alarm_configuration {
    alarms  = [%[8]q]
    enabled = true
  }
  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
  tags = { team = %[6]q }
}

resource "aws_codedeploy_deployment_group" "bluegreen" {
  app_name              = aws_codedeploy_app.web.name
  deployment_group_name = "tf-bluegreen"
  service_role_arn      = "arn:aws:iam::000000000000:role/CodeDeploy"
  deployment_style {
    deployment_option = "WITH_TRAFFIC_CONTROL"
    deployment_type   = "BLUE_GREEN"
  }
  blue_green_deployment_config {
    deployment_ready_option {
      action_on_timeout    = "STOP_DEPLOYMENT"
      wait_time_in_minutes = 60
    }
    green_fleet_provisioning_option {
      action = "DISCOVER_EXISTING"
    }
    terminate_blue_instances_on_deployment_success {
      action                           = "TERMINATE"
      termination_wait_time_in_minutes = 5
    }
  }
  load_balancer_info {
    target_group_info {
      name = %[9]q
    }
  }
  on_premises_instance_tag_filter {
    key   = "fleet"
    type  = "KEY_AND_VALUE"
    value = "blue"
  }
  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE"]
  }
  tags = { team = %[6]q }
}
`, providerVersion, key, secret, skipAccount, url, tagValue, topicArn, alarmName, targetGroup)
}

func start(t *testing.T) *servertest.Env {
	dir := t.TempDir()
	triggers := filepath.Join(dir, "triggers.yaml")
	alarms := filepath.Join(dir, "alarms.yaml")
	// Nothing is delivered or polled: no deployment runs in this test.
	write(t, triggers, "triggers:\n  - topicArn: "+topicArn+"\n    url: http://127.0.0.1:9/hook\n")
	write(t, alarms, "alarms:\n  - name: "+alarmName+"\n    http: http://127.0.0.1:9/alarm\n")
	return servertest.Start(t, func(c *server.Config) {
		c.TriggersConfig, c.AlarmsConfig = triggers, alarms
		c.TargetGroups = append(c.TargetGroups, traffic.TargetGroupConfig{Name: targetGroup, Driver: traffic.DriverBuiltin,
			Listen: "127.0.0.1:0", Mode: traffic.ModeHTTP, Port: 1})
	})
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTerraformLifecycle(t *testing.T) {
	bin, mirror := tools(t)
	// The whole lifecycle with the account looked up through STS; the
	// account-less ARNs of skip_requesting_account_id through apply, an
	// update of tags and a clean plan (each terraform command loads the
	// 700 MB provider, so the second case stops there).
	cases := []struct {
		name        string
		skipAccount bool
		full        bool
	}{
		{"account from STS", false, true},
		{"skip_requesting_account_id", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { lifecycle(t, bin, mirror, tc.skipAccount, tc.full) })
	}
}

func lifecycle(t *testing.T, bin, mirror string, skipAccount, full bool) {
	env := start(t)
	dir := t.TempDir()
	cliConfig := filepath.Join(dir, "cli.tfrc")
	write(t, cliConfig, fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n  direct {\n    exclude = [\"*/*\"]\n  }\n}\n", mirror))
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var osEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "TF_") {
			osEnv = append(osEnv, kv)
		}
	}
	c := tf{t: t, bin: bin, dir: work, env: append(osEnv,
		"TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"TF_DATA_DIR="+filepath.Join(dir, "data"),
		"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")}
	main := filepath.Join(work, "main.tf")
	write(t, main, config(env.URL, env.AccessKey, env.SecretKey, skipAccount, "web"))

	c.ok("init", "-input=false", "-no-color")
	c.ok("apply", "-auto-approve", "-input=false", "-no-color")
	c.planClean("after apply")

	ctx := context.Background()
	api := env.Client
	appArn := "arn:aws:codedeploy:us-east-1:000000000000:application:tf-web"
	wantTags := func(arn, want string) {
		t.Helper()
		out, err := api.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tg := range out.Tags {
			got = append(got, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		if strings.Join(got, ",") != want {
			t.Errorf("tags of %s: %v, want %s", arn, got, want)
		}
	}
	wantTags(appArn, "team=web")
	g, err := api.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("tf-web"), DeploymentGroupName: aws.String("tf-bluegreen")})
	if err != nil {
		t.Fatal(err)
	}
	if s := g.DeploymentGroupInfo.DeploymentStyle; s == nil || s.DeploymentType != types.DeploymentTypeBlueGreen {
		t.Errorf("blue/green group style %+v", s)
	}

	// An in-place update: the tags of everything and a group's trigger
	// events change. (A config cannot change in place, and a config in use
	// cannot be replaced: DeploymentConfigInUseException, as on AWS.)
	write(t, main, strings.Replace(config(env.URL, env.AccessKey, env.SecretKey, skipAccount, "platform"),
		`["DeploymentFailure", "DeploymentSuccess"]`, `["DeploymentFailure", "DeploymentStop"]`, 1))
	c.ok("apply", "-auto-approve", "-input=false", "-no-color")
	c.planClean("after update")
	wantTags(appArn, "team=platform")
	wantTags("arn:aws:codedeploy:us-east-1:000000000000:deploymentgroup:tf-web/tf-inplace", "team=platform")
	ig, err := api.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String("tf-web"), DeploymentGroupName: aws.String("tf-inplace")})
	if err != nil {
		t.Fatal(err)
	}
	if tc := ig.DeploymentGroupInfo.TriggerConfigurations; len(tc) != 1 || fmt.Sprint(tc[0].TriggerEvents) != "[DeploymentFailure DeploymentStop]" {
		t.Errorf("updated triggers %+v", tc)
	}
	if ig.DeploymentGroupInfo.AlarmConfiguration == nil || !ig.DeploymentGroupInfo.AlarmConfiguration.Enabled {
		t.Errorf("alarm configuration %+v", ig.DeploymentGroupInfo.AlarmConfiguration)
	}

	if !full {
		c.ok("destroy", "-auto-approve", "-input=false", "-no-color")
		return
	}
	// Import: forget the groups, import them back, plan clean again.
	for _, g := range []struct{ addr, id string }{
		{"aws_codedeploy_deployment_group.inplace", "tf-web:tf-inplace"},
		{"aws_codedeploy_deployment_group.bluegreen", "tf-web:tf-bluegreen"},
	} {
		c.ok("state", "rm", "-no-color", g.addr)
		c.ok("import", "-input=false", "-no-color", g.addr, g.id)
	}
	c.planClean("after import")

	c.ok("destroy", "-auto-approve", "-input=false", "-no-color")
	apps, err := api.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	if err != nil || len(apps.Applications) != 0 {
		t.Errorf("applications after destroy: %v %v", apps, err)
	}
	_, err = api.GetDeploymentConfig(ctx, &codedeploy.GetDeploymentConfigInput{DeploymentConfigName: aws.String("tf-half")})
	servertest.WantError(t, err, "DeploymentConfigDoesNotExistException")
	_, err = api.ListTagsForResource(ctx, &codedeploy.ListTagsForResourceInput{ResourceArn: aws.String(appArn)})
	servertest.WantError(t, err, "InvalidArnException")
}
