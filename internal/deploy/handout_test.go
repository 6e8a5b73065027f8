package deploy_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

// TestTakeoverKeepsHandout: a command an agent took from the queue is not
// handed out again when another replica takes the deployment over while
// the agent's acknowledgement is still on its way (the official agent
// would run it twice). Found when a replica starved of CPU lost its lease
// and blue-2's ApplicationStop ran twice. The acknowledgement, sent late
// to the new owner, runs it; the deployment then finishes.
func TestTakeoverKeepsHandout(t *testing.T) {
	envs := startReplicas(t, 2, func(c *server.Config) { c.PollWait = 500 * time.Millisecond })
	a, b := envs[0], envs[1]
	ctx := context.Background()
	reg, host, poll := rawHost(t, b)
	e := &e2e{env: a, s3: startS3(t)}
	a.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	id := e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: recordAll()}))
	var hc *commands.HostCommandInstance
	for deadline := time.Now().Add(10 * time.Second); hc == nil; {
		if hc = poll(); hc == nil && time.Now().After(deadline) {
			t.Fatal("no command handed out")
		}
	}
	cmdID := aws.ToString(hc.HostCommandIdentifier)

	// Replica A stops: B takes the deployment over before the agent acks.
	a.Stop()
	for deadline := time.Now().Add(5 * time.Second); ; {
		v, err := store.Get(ctx, b.Server.Store, "lease", "deployment/"+id)
		if err == nil && strings.Contains(string(v), `"owner":"replica-1"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica-1 did not take the deployment over: %s %v", v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 3 {
		if again := poll(); again != nil {
			t.Fatalf("after the takeover the host got %s (%s) again before acknowledging it", aws.ToString(again.HostCommandIdentifier), aws.ToString(again.CommandName))
		}
	}
	ack, err := host.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: aws.String(cmdID)})
	if err != nil || aws.ToString(ack.CommandStatus) != commands.DeploymentCommandStatusInProgress {
		t.Fatalf("late acknowledgement: %v %v", ack, err)
	}

	// A real agent finishes the deployment from the next command on.
	if err := host.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{HostCommandIdentifier: aws.String(cmdID),
		CommandStatus: aws.String(commands.DeploymentCommandStatusSucceeded),
		Diagnostics:   &commands.Envelope{Format: aws.String("JSON"), Payload: aws.String(`{"error_code":0,"script_name":"","message":"Succeeded","log":""}`)}}); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Endpoint: b.URL, Region: b.Region, Credentials: reg.CredentialsProvider(), HostIdentifier: reg.HostIdentifier(),
		RootDir: filepath.Join(t.TempDir(), "root"), S3Endpoint: e.s3.URL, S3PathStyle: true, PollInterval: -1,
		ErrorBackoff: func(int) time.Duration { return 50 * time.Millisecond }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx, cfg) }()
	t.Cleanup(func() { stop(); <-done })
	info := b.WaitStatus(t, id, 30*time.Second, terminal...)
	if info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s (%s)", info.Status, errInfo(info))
	}
}

// rawHost registers host-1 through env and returns a protocol client
// signing as it, and a poll function.
func rawHost(t *testing.T, env *servertest.Env) (agent.OnPremConfig, *protocol.Client, func() *commands.HostCommandInstance) {
	t.Helper()
	ctx := context.Background()
	reg, err := agent.Register(ctx, agent.RegisterRequest{
		Endpoint: env.URL, Region: env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
		InstanceName:     "host-1", Tags: map[string]string{"role": "web"},
	})
	if err != nil {
		t.Fatal(err)
	}
	host := &protocol.Client{Endpoint: env.URL, Region: env.Region, Credentials: reg.CredentialsProvider(), MaxRetries: -1}
	return reg, host, func() *commands.HostCommandInstance {
		t.Helper()
		out, err := host.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: aws.String(reg.HostIdentifier())})
		if err != nil {
			t.Fatal(err)
		}
		return out.HostCommand
	}
}

// TestUnacknowledgedHandoutOfferedAgain: a command taken and never
// acknowledged (the poll's answer was lost with the replica that sent it)
// is handed out again, after half the pickup timeout, not left to fail.
func TestUnacknowledgedHandoutOfferedAgain(t *testing.T) {
	const pickup = 10 * time.Second
	env := startReplicas(t, 1, func(c *server.Config) { c.PollWait = 300 * time.Millisecond; c.PickupTimeout = pickup })[0]
	_, _, poll := rawHost(t, env)
	e := &e2e{env: env, s3: startS3(t)}
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web")
	e.deploy(t, "app", "web", e.upload(t, "app/v1.tgz", revSpec{hooks: recordAll()}))
	var first *commands.HostCommandInstance
	for deadline := time.Now().Add(10 * time.Second); first == nil; {
		if first = poll(); first == nil && time.Now().After(deadline) {
			t.Fatal("no command handed out")
		}
	}
	taken := time.Now()
	if again := poll(); again != nil {
		t.Fatalf("handed out again at once: %s", aws.ToString(again.HostCommandIdentifier))
	}
	for {
		again := poll()
		if again != nil {
			if aws.ToString(again.HostCommandIdentifier) != aws.ToString(first.HostCommandIdentifier) {
				t.Fatalf("handed out %s, want %s again", aws.ToString(again.HostCommandIdentifier), aws.ToString(first.HostCommandIdentifier))
			}
			if d := time.Since(taken); d < pickup/2-100*time.Millisecond {
				t.Fatalf("handed out again after %s, before half the pickup timeout", d)
			}
			return
		}
		if time.Since(taken) > pickup {
			t.Fatal("the unacknowledged command was not handed out again within the pickup timeout")
		}
	}
}
