package server_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// TestSessionArnInstanceRunsAgent: an instance registered with an IAM
// session ARN gets a host key that signs as that session; `cutover agent`,
// configured as the official agent is for sessions (iam_session_arn and a
// credentials file), deploys to it. The key only works for its instance.
func TestSessionArnInstanceRunsAgent(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	const session = "arn:aws:sts::000000000000:assumed-role/CodeDeployHost/web-7"
	if _, err := env.Client.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
		InstanceName: aws.String("web-7"), IamSessionArn: aws.String(session)}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{
		InstanceNames: []string{"web-7"}, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("session")}}}); err != nil {
		t.Fatal(err)
	}
	grant := access.Grant{Role: access.Host, Instance: "web-7", Region: env.Region}
	for _, bad := range []keys.Spec{
		{User: "x", Grant: access.Grant{Role: access.Deployer}, SessionArn: session},
		{User: "x", Grant: grant, SessionArn: "arn:aws:sts::111122223333:assumed-role/CodeDeployHost/web-7"},
		{User: "x", Grant: grant, SessionArn: "arn:aws:iam::000000000000:role/CodeDeployHost"},
	} {
		if _, err := env.Server.Keys.CreateKey(ctx, bad); err == nil {
			t.Errorf("key %+v created", bad)
		}
	}
	k, err := env.Server.Keys.CreateKey(ctx, keys.Spec{User: "web-7", Grant: grant, SessionArn: session})
	if err != nil {
		t.Fatal(err)
	}
	if k.Arn != session {
		t.Fatalf("key ARN %s", k.Arn)
	}

	// The official agent's session setup: onprem config + credentials file.
	dir := t.TempDir()
	credsFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(credsFile, []byte("[default]\naws_access_key_id = "+k.AccessKeyID+"\naws_secret_access_key = "+k.SecretAccessKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	onprem := filepath.Join(dir, "codedeploy.onpremises.yml")
	if err := os.WriteFile(onprem, []byte("---\niam_session_arn: "+session+"\naws_credentials_file: "+credsFile+"\nregion: "+env.Region+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oc, err := agent.LoadOnPremConfig(onprem)
	if err != nil {
		t.Fatal(err)
	}
	s3 := servertest.StartS3(t, "bundles")
	cfg := agent.Config{Endpoint: env.URL, Region: oc.Region, Credentials: oc.CredentialsProvider(), HostIdentifier: oc.HostIdentifier(),
		RootDir: filepath.Join(dir, "root"), S3Endpoint: s3.URL, S3PathStyle: true, PollInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx, cfg) }()
	t.Cleanup(func() { stop(); <-done })

	env.SetupGroup(t, "sess", "hosts", "CodeDeployDefault.AllAtOnce", "role", "session")
	rev := s3.UploadRevision(t, "bundles", "app.tgz", servertest.HookBundle(t, map[string]string{"AfterInstall": "echo on $(hostname)\n"}))
	out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("sess"), DeploymentGroupName: aws.String("hosts"), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	info := env.WaitStatus(t, aws.ToString(out.DeploymentId), 30*time.Second, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed)
	if info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment to the session-ARN instance: %s", info.Status)
	}
	inst, err := env.Client.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: out.DeploymentId, TargetIds: []string{"web-7"}})
	if err != nil || len(inst.DeploymentTargets) != 1 || !strings.Contains(aws.ToString(inst.DeploymentTargets[0].InstanceTarget.TargetArn), "web-7") {
		t.Fatalf("targets %+v %v", inst, err)
	}
	ran := false
	for _, ev := range inst.DeploymentTargets[0].InstanceTarget.LifecycleEvents {
		if aws.ToString(ev.LifecycleEventName) == "AfterInstall" && ev.Status == types.LifecycleEventStatusSucceeded {
			ran = true
		}
	}
	if !ran {
		t.Fatalf("AfterInstall did not run on web-7: %+v", inst.DeploymentTargets[0].InstanceTarget.LifecycleEvents)
	}

	// The session's key is a host key: it cannot call the CodeDeploy API.
	_, err = env.NewClient(k.AccessKeyID, k.SecretAccessKey, env.Region).ListApplications(ctx, &codedeploy.ListApplicationsInput{})
	wantDenied(t, err, "a session host key on the CodeDeploy API")
}
