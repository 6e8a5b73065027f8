package agent

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/atomicfile"
)

// DefaultOfficialAgentConfigPath is where the official CodeDeploy agent
// (1.x, Ruby) reads its own configuration on Linux.
const DefaultOfficialAgentConfigPath = "/etc/codedeploy-agent/conf/codedeployagent.yml"

// OfficialAgentConfig is the official agent's codedeployagent.yml, as
// Cutover writes it: the settings the Linux package ships, plus the two
// that point the agent at Cutover. Its keys are Ruby symbols (a leading
// colon), as the agent expects.
type OfficialAgentConfig struct {
	LogAWSWire      bool   `yaml:":log_aws_wire"`
	LogDir          string `yaml:":log_dir"`
	PIDDir          string `yaml:":pid_dir"`
	ProgramName     string `yaml:":program_name"`
	RootDir         string `yaml:":root_dir"`
	Verbose         bool   `yaml:":verbose"`
	WaitBetweenRuns int    `yaml:":wait_between_runs"`
	MaxRevisions    int    `yaml:":max_revisions"`
	// DeployControlEndpoint is the command service the agent polls
	// (Cutover's URL); without it the agent goes to AWS.
	DeployControlEndpoint string `yaml:":deploy_control_endpoint"`
	// S3EndpointOverride is where it downloads S3 revisions (Cutover's
	// embedded store); without it the agent goes to AWS S3.
	S3EndpointOverride string `yaml:":s3_endpoint_override"`
	// OnPremisesConfigFile names the file with the host's key and ARN.
	OnPremisesConfigFile string `yaml:":on_premises_config_file"`
	// ProxyURI, when set, is the HTTP proxy of every agent request.
	ProxyURI string `yaml:":proxy_uri,omitempty"`
}

// NewOfficialAgentConfig returns the shipped settings with the agent
// pointed at endpoint, for both commands and revisions, and at onprem.
func NewOfficialAgentConfig(endpoint, onprem string) OfficialAgentConfig {
	return OfficialAgentConfig{
		LogDir: "/var/log/aws/codedeploy-agent/", PIDDir: "/opt/codedeploy-agent/state/.pid/",
		ProgramName: "codedeploy-agent", RootDir: "/opt/codedeploy-agent/deployment-root",
		WaitBetweenRuns: 1, MaxRevisions: DefaultMaxRevisions,
		DeployControlEndpoint: endpoint, S3EndpointOverride: endpoint, OnPremisesConfigFile: onprem,
	}
}

// WriteOfficialAgentConfig writes c to path (mode 0644: it holds no
// secret), replacing any existing file atomically.
func WriteOfficialAgentConfig(path string, c OfficialAgentConfig) error {
	if c.DeployControlEndpoint == "" {
		return fmt.Errorf("official agent config: no endpoint")
	}
	var buf bytes.Buffer
	buf.WriteString("---\n")
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("write official agent config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write official agent config: %w", err)
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write official agent config: %w", err)
	}
	return nil
}
