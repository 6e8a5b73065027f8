package api

import (
	"github.com/cutoverhq/cutover/internal/awsjson"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
)

// UnsupportedPlatform is the answer to creating a deployment group or a
// deployment for a Lambda or ECS application. Such applications (and
// deployment configurations) may be created: they are metadata that
// pipelines create up front. Running them is not possible here, and saying
// so beats a blue/green error about target instances. The model lists no
// InvalidComputePlatformException for these operations; every Lambda or ECS
// group or deployment necessarily uses a deployment configuration of that
// platform, so InvalidDeploymentConfigNameException is the modeled error
// that fits.
func UnsupportedPlatform(platform, config string) error {
	return awsjson.Errorf("InvalidDeploymentConfigNameException",
		"This server does not run the %s compute platform (deployment configuration %s): it deploys only to the %s compute platform (EC2/on-premises instances).",
		platform, config, cd.ComputePlatformServer)
}
