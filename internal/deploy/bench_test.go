package deploy_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// BenchmarkFleetDeployment is cmd/deploybench's (b) with the server in
// process, so that it can be profiled (-cpuprofile): -benchtime=1x
// deploys once to 200 minimal agents (BENCH_FLEET_N overrides).
func BenchmarkFleetDeployment(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("BENCH_FLEET_N")); err == nil {
		n = v
	}
	env := servertest.Start(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 10000
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		c, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region,
			AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
			InstanceName:     fmt.Sprintf("fleet-%d", i), Tags: map[string]string{"role": "fleet"}, HTTPClient: hc})
		if err != nil {
			b.Fatal(err)
		}
		pc := &protocol.Client{Endpoint: env.URL, Region: env.Region, Credentials: c.CredentialsProvider(), HTTPClient: hc}
		id := c.HostIdentifier()
		wg.Add(1)
		go func() { defer wg.Done(); minimalAgent(ctx, pc, id) }()
	}
	env.SetupGroup(b, "app", "fleet", "CodeDeployDefault.AllAtOnce", "role", "fleet")
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}
	b.ResetTimer()
	// BENCH_FLEET_CPUPROFILE profiles the deployments alone, without the
	// registrations before them.
	if f := os.Getenv("BENCH_FLEET_CPUPROFILE"); f != "" {
		w, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		if err := pprof.StartCPUProfile(w); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	for range b.N {
		out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("fleet"), Revision: rev})
		if err != nil {
			b.Fatal(err)
		}
		info := env.WaitStatus(b, *out.DeploymentId, 5*time.Minute, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed)
		if info.Status != types.DeploymentStatusSucceeded {
			b.Fatalf("%s", info.Status)
		}
	}
}

// minimalAgent is Poll → GetDeploymentSpecification → Ack → Complete.
func minimalAgent(ctx context.Context, c *protocol.Client, id string) {
	for ctx.Err() == nil {
		out, err := c.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &id})
		if err != nil || out.HostCommand == nil {
			continue
		}
		hcmd := out.HostCommand
		if _, err := c.GetDeploymentSpecification(ctx, &commands.GetDeploymentSpecificationInput{DeploymentExecutionId: hcmd.DeploymentExecutionId, HostIdentifier: &id}); err != nil {
			continue
		}
		ack, err := c.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: hcmd.HostCommandIdentifier})
		if err != nil || aws.ToString(ack.CommandStatus) != commands.DeploymentCommandStatusInProgress {
			continue
		}
		_ = c.PutHostCommandComplete(ctx, &commands.PutHostCommandCompleteInput{HostCommandIdentifier: hcmd.HostCommandIdentifier,
			CommandStatus: aws.String(commands.DeploymentCommandStatusSucceeded)})
	}
}
