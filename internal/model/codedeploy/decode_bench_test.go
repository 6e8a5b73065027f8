package codedeploy

import (
	"encoding/json"
	"testing"

	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

// BenchmarkDecode compares modelcheck.Decode, which Dispatch uses (exact
// member names, errors naming the member), with encoding/json, which it
// replaced, on request bodies of three sizes.
func BenchmarkDecode(b *testing.B) {
	bodies := []struct {
		name string
		body string
		in   func() any
	}{
		{"GetApplication", `{"applicationName":"web"}`, func() any { return new(GetApplicationInput) }},
		{"CreateDeployment", `{"applicationName":"web","deploymentGroupName":"prod","revision":{"revisionType":"S3","s3Location":{"bucket":"releases","key":"web/1.2.3.tgz","bundleType":"tgz","eTag":"0123456789abcdef","version":"v7"}},"description":"release 1.2.3","ignoreApplicationStopFailures":false,"fileExistsBehavior":"OVERWRITE","autoRollbackConfiguration":{"enabled":true,"events":["DEPLOYMENT_FAILURE","DEPLOYMENT_STOP_ON_REQUEST"]}}`,
			func() any { return new(CreateDeploymentInput) }},
		{"CreateDeploymentGroup", `{"applicationName":"web","deploymentGroupName":"prod","deploymentConfigName":"CodeDeployDefault.HalfAtATime","serviceRoleArn":"arn:aws:iam::123456789012:role/cd","onPremisesTagSet":{"onPremisesTagSetList":[[{"Key":"env","Value":"prod","Type":"KEY_AND_VALUE"}],[{"Key":"role","Type":"KEY_ONLY"},{"Value":"web","Type":"VALUE_ONLY"}]]},"deploymentStyle":{"deploymentType":"BLUE_GREEN","deploymentOption":"WITH_TRAFFIC_CONTROL"},"loadBalancerInfo":{"targetGroupInfoList":[{"name":"web"}]},"blueGreenDeploymentConfiguration":{"deploymentReadyOption":{"actionOnTimeout":"STOP_DEPLOYMENT","waitTimeInMinutes":60},"terminateBlueInstancesOnDeploymentSuccess":{"action":"TERMINATE","terminationWaitTimeInMinutes":5},"greenFleetProvisioningOption":{"action":"DISCOVER_EXISTING"}},"tags":[{"Key":"team","Value":"web"},{"Key":"cost","Value":"42"}]}`,
			func() any { return new(CreateDeploymentGroupInput) }},
	}
	for _, c := range bodies {
		body := []byte(c.body)
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := json.Unmarshal(body, c.in()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/modelcheck", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := modelcheck.Decode(body, c.in()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
