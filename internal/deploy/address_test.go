package deploy_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/model/commands"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
)

// TestTrafficAddressSurvivesRestart: a host without a cutover:address tag
// receives traffic at the address its agent polls from. The server is
// restarted after the host's last poll and before AllowTraffic: the new
// process must still know the address (it is a store record) and put the
// instance in the target group, not report Success with the instance left
// out.
func TestTrafficAddressSurvivesRestart(t *testing.T) {
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }), ReadHeaderTimeout: time.Second}
	go func() { _ = appSrv.Serve(app) }()
	t.Cleanup(func() { appSrv.Close() })
	port := app.Addr().(*net.TCPAddr).Port

	dir, listen := t.TempDir(), haproxytest.FreeAddr(t)
	opts := []servertest.Option{servertest.WithDataDir(dir), func(c *server.Config) {
		c.Listen = listen
		c.TargetGroups = []traffic.TargetGroupConfig{{Name: "web", Listen: haproxytest.FreeAddr(t), Port: port,
			HealthCheck: traffic.HealthCheck{Path: "/", Interval: 50 * time.Millisecond, Timeout: time.Second}}}
	}}
	env := servertest.Start(t, opts...)
	ctx := context.Background()
	reg, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: env.URL, Region: env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""),
		InstanceName:     "untagged-1", Tags: map[string]string{"role": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	host := reg.HostIdentifier()
	pc := &protocol.Client{Endpoint: env.URL, Region: env.Region, Credentials: reg.CredentialsProvider()}
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.DeploymentStyle = &types.DeploymentStyle{DeploymentType: types.DeploymentTypeInPlace, DeploymentOption: types.DeploymentOptionWithTrafficControl}
		in.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String("web")}}}
	})
	out, err := env.Client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("web"),
		Revision: &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent, AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.DeploymentId)

	// Run the host's commands by hand up to BeforeAllowTraffic, whose
	// completion makes the server perform AllowTraffic.
	var last *commands.HostCommandInstance
	for deadline := time.Now().Add(30 * time.Second); last == nil; {
		if time.Now().After(deadline) {
			t.Fatal("BeforeAllowTraffic never came")
		}
		hc := pollAck(ctx, t, pc, host)
		if hc == nil {
			continue
		}
		if aws.ToString(hc.CommandName) == "BeforeAllowTraffic" {
			last = hc
			break
		}
		complete(t, pc, hc)
	}
	env.Stop()
	env = servertest.Start(t, opts...)
	complete(t, pc, last) // to the new process, which never saw a poll
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	go func() { // AfterAllowTraffic
		for pollCtx.Err() == nil {
			if hc := pollAck(pollCtx, t, pc, host); hc != nil {
				complete(t, pc, hc)
			}
		}
	}()
	info := env.WaitStatus(t, id, 30*time.Second, terminal...)
	stopPolls()
	if info.Status != types.DeploymentStatusSucceeded {
		t.Fatalf("deployment %s (%s)", info.Status, errInfo(info))
	}
	ms, err := env.Server.Traffic.Members(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if len(ms) != 1 || ms[0].ID != "untagged-1" || ms[0].Addr != want || ms[0].Weight == 0 {
		t.Fatalf("target group members %+v, want untagged-1 at %s serving", ms, want)
	}
}

// pollAck polls once and acknowledges what it got.
func pollAck(ctx context.Context, t *testing.T, pc *protocol.Client, host string) *commands.HostCommandInstance {
	t.Helper()
	out, err := pc.PollHostCommand(ctx, &commands.PollHostCommandInput{HostIdentifier: &host})
	if err != nil || out.HostCommand == nil {
		return nil
	}
	hc := out.HostCommand
	ack, err := pc.PutHostCommandAcknowledgement(ctx, &commands.PutHostCommandAcknowledgementInput{HostCommandIdentifier: hc.HostCommandIdentifier})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil || aws.ToString(ack.CommandStatus) != commands.DeploymentCommandStatusInProgress {
		t.Errorf("ack of %s: %v %v", aws.ToString(hc.CommandName), err, ack)
		return nil
	}
	return hc
}

func complete(t *testing.T, pc *protocol.Client, hc *commands.HostCommandInstance) {
	t.Helper()
	err := pc.PutHostCommandComplete(context.Background(), &commands.PutHostCommandCompleteInput{HostCommandIdentifier: hc.HostCommandIdentifier,
		CommandStatus: aws.String(commands.DeploymentCommandStatusSucceeded)})
	if err != nil {
		t.Fatalf("complete %s: %v", aws.ToString(hc.CommandName), err)
	}
}
