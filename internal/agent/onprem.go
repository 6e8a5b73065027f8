package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/atomicfile"
)

// DefaultOnPremConfigPath is where the official agent reads the on-premises
// registration.
const DefaultOnPremConfigPath = "/etc/codedeploy-agent/conf/codedeploy.onpremises.yml"

// OnPremConfig is the on-premises config file (§5.4), in the official
// agent's format, so one file serves both agents.
//
// Two modes exist. IAM user: IAMUserARN, AWSAccessKeyID, AWSSecretAccessKey
// and Region (what Register produces). IAM session: IAMSessionARN,
// AWSCredentialsFile (shared-credentials format, [default] profile) and
// Region.
//
// CutoverEndpoint (key cutover_endpoint) and CutoverCAFile are Cutover
// additions: the server URL the agent talks to, and the CA it pins. The
// official agent ignores unknown keys, and takes its endpoint from
// :deploy_control_endpoint: in codedeployagent.yml instead.
type OnPremConfig struct {
	IAMUserARN         string `yaml:"iam_user_arn,omitempty"`
	IAMSessionARN      string `yaml:"iam_session_arn,omitempty"`
	AWSAccessKeyID     string `yaml:"aws_access_key_id,omitempty"`
	AWSSecretAccessKey string `yaml:"aws_secret_access_key,omitempty"`
	AWSCredentialsFile string `yaml:"aws_credentials_file,omitempty"`
	Region             string `yaml:"region,omitempty"`
	CutoverEndpoint    string `yaml:"cutover_endpoint,omitempty"`
	// CutoverCAFile (key cutover_ca_file) is the PEM CA certificate that
	// cutover agent trusts, alone, for CutoverEndpoint.
	CutoverCAFile string `yaml:"cutover_ca_file,omitempty"`
}

// Validate checks that exactly one mode is fully configured.
func (c OnPremConfig) Validate() error {
	switch {
	case c.IAMUserARN != "" && c.IAMSessionARN != "":
		return errors.New("on-premises config: iam_user_arn and iam_session_arn are mutually exclusive")
	case c.IAMUserARN != "":
		if c.AWSAccessKeyID == "" || c.AWSSecretAccessKey == "" || c.Region == "" {
			return errors.New("on-premises config: iam_user_arn requires aws_access_key_id, aws_secret_access_key and region")
		}
	case c.IAMSessionARN != "":
		if c.AWSCredentialsFile == "" || c.Region == "" {
			return errors.New("on-premises config: iam_session_arn requires aws_credentials_file and region")
		}
	default:
		return errors.New("on-premises config: iam_user_arn or iam_session_arn is required")
	}
	return nil
}

// HostIdentifier is the identifier the agent polls with: the ARN, verbatim.
func (c OnPremConfig) HostIdentifier() string {
	if c.IAMSessionARN != "" {
		return c.IAMSessionARN
	}
	return c.IAMUserARN
}

// CredentialsProvider returns the host's signing credentials. In session
// mode the credentials file is re-read every 30 minutes, as the official
// agent does; something else keeps it fresh.
func (c OnPremConfig) CredentialsProvider() aws.CredentialsProvider {
	if c.IAMSessionARN != "" {
		return aws.NewCredentialsCache(fileCredentials{path: c.AWSCredentialsFile})
	}
	return credentials.NewStaticCredentialsProvider(c.AWSAccessKeyID, c.AWSSecretAccessKey, "")
}

// LoadOnPremConfig reads and validates an on-premises config file.
func LoadOnPremConfig(path string) (OnPremConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return OnPremConfig{}, fmt.Errorf("load on-premises config: %w", err)
	}
	var c OnPremConfig
	if err := yaml.Unmarshal(data, &c); err != nil {
		return OnPremConfig{}, fmt.Errorf("load on-premises config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return OnPremConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteOnPremConfig validates c and writes it to path with mode 0600 (it
// holds a secret key), replacing any existing file atomically.
func WriteOnPremConfig(path string, c OnPremConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("---\n")
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("write on-premises config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write on-premises config: %w", err)
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write on-premises config: %w", err)
	}
	return nil
}

// WriteCAFile writes the server's CA certificate (PEM) to path, readable by
// all: it is public, and the official agent's launcher reads it.
func WriteCAFile(path string, pem []byte) error {
	if err := atomicfile.Write(path, pem, 0o644); err != nil {
		return fmt.Errorf("write CA file: %w", err)
	}
	return nil
}

// fileCredentials reads the [default] profile of a shared-credentials file.
type fileCredentials struct{ path string }

func (p fileCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	f, err := os.Open(p.path)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("read credentials file: %w", err)
	}
	defer f.Close()
	var creds aws.Credentials
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "default" {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			creds.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			creds.SecretAccessKey = strings.TrimSpace(v)
		case "aws_session_token":
			creds.SessionToken = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return aws.Credentials{}, fmt.Errorf("read credentials file: %w", err)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return aws.Credentials{}, fmt.Errorf("credentials file %s: no [default] access key", p.path)
	}
	creds.Source = "cutover-onpremises-credentials-file"
	creds.CanExpire = true
	creds.Expires = time.Now().Add(30 * time.Minute)
	return creds, nil
}
