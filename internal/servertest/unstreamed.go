package servertest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
)

// WithoutHookLogStream makes the agent keep its hooks' output on the
// host, as the official agent does (it does not know PutHookLog).
func WithoutHookLogStream() AgentOption { return func(c *agent.Config) { c.NoHookLogStream = true } }

// Names of DeployWithoutStreaming.
const (
	QuietApp      = "quiet"
	QuietGroup    = "quiet-group"
	QuietInstance = "quiet-1"
	// QuietFailure is what the failing AfterInstall hook prints; it
	// reaches the server only in the event's log tail.
	QuietFailure = "AfterInstall breaks on purpose"
)

// DeployWithoutStreaming runs an in-place deployment on one agent that
// does not stream hook output: BeforeInstall prints and succeeds,
// AfterInstall prints QuietFailure on stderr and fails. It returns the
// deployment's id once it has failed.
func (e *Env) DeployWithoutStreaming(t testing.TB) string {
	t.Helper()
	s3 := StartS3(t, "quiet-bundles")
	rev := s3.UploadRevision(t, "quiet-bundles", "quiet.tgz", HookBundle(t, map[string]string{
		"BeforeInstall": "echo before-install ran quietly\n",
		"AfterInstall":  "echo about to fail\necho '" + QuietFailure + "' >&2\nexit 3\n",
	}))
	e.StartAgent(t, QuietInstance, map[string]string{"quiet": "yes"}, s3.URL, WithoutHookLogStream())
	e.SetupGroup(t, QuietApp, QuietGroup, "CodeDeployDefault.AllAtOnce", "quiet", "yes")
	out, err := e.Client.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String(QuietApp), DeploymentGroupName: aws.String(QuietGroup), Revision: rev})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	id := aws.ToString(out.DeploymentId)
	if info := e.WaitStatus(t, id, 60*time.Second, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusSucceeded); info.Status != cdtypes.DeploymentStatusFailed {
		t.Fatalf("deployment %s: %s, want Failed", id, info.Status)
	}
	return id
}
