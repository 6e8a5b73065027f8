package deploy_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/server"
)

// TestFleetAfterBlueGreen: after a blue/green deployment GetDeploymentGroup
// returns the group as configured (AWS rewrites a group only for
// COPY_AUTO_SCALING_GROUP), while the admin operation behind `cutover
// fleet` shows the replacement instances as the fleet and the originals as
// retired.
func TestFleetAfterBlueGreen(t *testing.T) {
	f := newBG(t, bgOptions{})
	ctx := context.Background()
	admin := &protocol.Client{Endpoint: f.Env.URL, Region: f.Env.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(f.Env.AccessKey, f.Env.SecretKey, ""),
		TargetPrefix: server.PrefixAdmin, SigningName: server.SigningCodeDeploy}
	fleet := func() deploy.GroupFleet {
		t.Helper()
		var out deploy.GroupFleet
		if err := admin.Call(ctx, "GetDeploymentGroupFleet", map[string]string{"applicationName": bgApp, "deploymentGroupName": bgGroup}, &out); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out.Instances)
		slices.Sort(out.Retired)
		return out
	}

	id := f.Deploy(t, "green")
	if info := f.Env.WaitStatus(t, id, time.Minute, types.DeploymentStatusReady, types.DeploymentStatusFailed); info.Status != types.DeploymentStatusReady {
		t.Fatalf("%s (%s)", info.Status, bgErr(info))
	}
	// Until the deployment succeeds the fleet is the bootstrap's: blue.
	if got := fleet(); got.Source != deploy.FleetFromBlueGreen || !slices.Equal(got.Instances, bgNames(f.Blue)) {
		t.Errorf("fleet while Ready: %+v, want the blue hosts", got)
	}
	f.Continue(t, id, types.DeploymentWaitTypeReadyWait)
	f.WaitTerminationWait(t, id)
	f.Continue(t, id, types.DeploymentWaitTypeTerminationWait)
	f.WaitDone(t, id, types.DeploymentStatusSucceeded)

	g, err := f.Env.Client.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(bgApp), DeploymentGroupName: aws.String(bgGroup)})
	if err != nil {
		t.Fatal(err)
	}
	tf := g.DeploymentGroupInfo.OnPremisesInstanceTagFilters
	if len(tf) != 1 || aws.ToString(tf[0].Key) != "fleet" || aws.ToString(tf[0].Value) != "blue" {
		t.Errorf("GetDeploymentGroup tag filters %+v, want them as configured (fleet=blue)", tf)
	}
	if aws.ToString(g.DeploymentGroupInfo.LastSuccessfulDeployment.DeploymentId) != id {
		t.Errorf("lastSuccessfulDeployment %+v, want %s", g.DeploymentGroupInfo.LastSuccessfulDeployment, id)
	}
	got := fleet()
	if got.Source != deploy.FleetFromBlueGreen || !slices.Equal(got.Instances, bgNames(f.Green)) || !slices.Equal(got.Retired, bgNames(f.Blue)) {
		t.Errorf("fleet after the deployment: %+v, want instances %v retired %v", got, bgNames(f.Green), bgNames(f.Blue))
	}

	// Errors are CodeDeploy's.
	var perr *protocol.APIError
	for in, want := range map[string]string{
		`{"applicationName":"` + bgApp + `","deploymentGroupName":"nope"}`: "DeploymentGroupDoesNotExistException",
		`{"applicationName":"nope","deploymentGroupName":"x"}`:             "ApplicationDoesNotExistException",
		`{"deploymentGroupName":"x"}`:                                      "ApplicationNameRequiredException",
		`{"applicationName":"` + bgApp + `","DeploymentGroupName":"x"}`:    "DeploymentGroupNameRequiredException",
		`{"applicationName":7}`:                                            "SerializationException",
	} {
		err := admin.Call(ctx, "GetDeploymentGroupFleet", rawJSON(in), nil)
		if !errors.As(err, &perr) || perr.Type != want {
			t.Errorf("%s: %v, want %s", in, err, want)
		}
	}
}

// rawJSON is a request body sent as is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
