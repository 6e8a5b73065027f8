package deploy_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// TestE2EUnknownRevisionFirst: with one instance at a time, an instance
// whose revision is unknown is deployed before those on an older one.
func TestE2EUnknownRevisionFirst(t *testing.T) {
	e := newE2E(t)
	startHost(t, e.env, e.s3.URL, "host-a", "web", "")
	startHost(t, e.env, e.s3.URL, "host-b", "web", "")
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	v1 := e.upload(t, "app/v1.tgz", revSpec{hooks: recordAll()})
	e.waitDone(t, e.deploy(t, "app", "web", v1), types.DeploymentStatusSucceeded)
	startHost(t, e.env, e.s3.URL, "host-0-new", "web", "") // sorts first by name, but...
	startHost(t, e.env, e.s3.URL, "host-z-new", "web", "") // ...by revision both go first
	v2 := e.upload(t, "app/v2.tgz", revSpec{hooks: recordAll()})
	id := e.deploy(t, "app", "web", v2)
	e.waitDone(t, id, types.DeploymentStatusSucceeded)
	start := func(name string) int64 {
		tg := e.target(t, id, name)
		return tg.LifecycleEvents[0].StartTime.UnixNano()
	}
	for _, fresh := range []string{"host-0-new", "host-z-new"} {
		for _, old := range []string{"host-a", "host-b"} {
			if start(fresh) >= start(old) {
				t.Errorf("%s (unknown revision) started after %s (older revision)", fresh, old)
			}
		}
	}
}
