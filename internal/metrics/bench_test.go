package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// BenchmarkScrape measures GET /metrics with 1,000 agents long-polling
// (BENCH_AGENTS overrides), after one AllAtOnce deployment to all of them
// so every family has its series. Baseline, in the same run: a bare
// promhttp handler serving only the Go and process collectors.
func BenchmarkScrape(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_AGENTS")); err == nil {
		n = v
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 10000}}

	b.Run("baseline", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer srv.Close()
		scrapeLoop(b, hc, srv.URL+"/metrics")
	})

	env := servertest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
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
		go func() { defer wg.Done(); pollAndComplete(ctx, pc, id) }()
	}
	b.Logf("registered %d agents in %v", n, time.Since(start).Round(time.Millisecond))
	env.SetupGroup(b, "app", "fleet", "CodeDeployDefault.AllAtOnce", "role", "fleet")
	rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}
	out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("fleet"), Revision: rev})
	if err != nil {
		b.Fatal(err)
	}
	if info := env.WaitStatus(b, *out.DeploymentId, 5*time.Minute, types.DeploymentStatusSucceeded, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusSucceeded {
		b.Fatalf("deployment %s", info.Status)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		s := get(b, env.URL)
		if s.value("cutover_agents_polling") == float64(n) && s.value("cutover_agents_connected") == float64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("agents polling %v, connected %v, want %d", s.value("cutover_agents_polling"), s.value("cutover_agents_connected"), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Run(fmt.Sprintf("cutover-%d-agents", n), func(b *testing.B) {
		scrapeLoop(b, hc, env.URL+"/metrics")
	})
}

func scrapeLoop(b *testing.B, hc *http.Client, url string) {
	size := 0
	b.ResetTimer()
	for range b.N {
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("scrape: %v %s", err, resp.Status)
		}
		size = int(n)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// pollAndComplete is a minimal agent: Poll → spec → Ack → Complete.
func pollAndComplete(ctx context.Context, c *protocol.Client, id string) {
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
