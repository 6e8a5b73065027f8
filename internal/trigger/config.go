package trigger

import (
	"fmt"
	"net/url"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// File is the --triggers-config file: where each SNS topic's messages go.
//
//	triggers:
//	  - topicArn: arn:aws:sns:us-east-1:000000000000:deployments
//	    url: https://hooks.example.com/codedeploy
//	    secret: s3cr3t             # optional: HMAC-SHA256 of the body in X-Cutover-Signature
//	    secretEnv: HOOK_SECRET     # or read the secret from the environment
//	    format: sns                # sns (default): the SNS HTTP notification; slack: {"text": …}
type File struct {
	Triggers []Endpoint `yaml:"triggers" json:"triggers"`
}

// Endpoint is where one topic's notifications are delivered.
type Endpoint struct {
	TopicArn  string `yaml:"topicArn" json:"topicArn"`
	URL       string `yaml:"url" json:"url"`
	Secret    string `yaml:"secret" json:"secret"`
	SecretEnv string `yaml:"secretEnv" json:"secretEnv"`
	Format    string `yaml:"format" json:"format"`
}

// Formats of an endpoint.
const (
	FormatSNS   = "sns"
	FormatSlack = "slack"
)

var topicRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$`)

// maxConfigSize bounds the configuration file.
const maxConfigSize = 1 << 20

// Load reads a configuration file (YAML, of which JSON is a subset).
func Load(path string) ([]Endpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("triggers config: %w", err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("triggers config %s: larger than %d bytes", path, maxConfigSize)
	}
	var f File
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("triggers config %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i := range f.Triggers {
		e := &f.Triggers[i]
		if err := e.complete(); err != nil {
			return nil, fmt.Errorf("triggers config %s: entry %d: %w", path, i+1, err)
		}
		if seen[e.TopicArn] {
			return nil, fmt.Errorf("triggers config %s: topic %s listed twice", path, e.TopicArn)
		}
		seen[e.TopicArn] = true
	}
	return f.Triggers, nil
}

func (e *Endpoint) complete() error {
	if !topicRE.MatchString(e.TopicArn) {
		return fmt.Errorf("topicArn %q is not an SNS topic ARN", e.TopicArn)
	}
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q: want an http or https URL", e.URL)
	}
	switch e.Format {
	case "":
		e.Format = FormatSNS
	case FormatSNS, FormatSlack:
	default:
		return fmt.Errorf("format %q: want sns or slack", e.Format)
	}
	if e.SecretEnv != "" {
		if e.Secret != "" {
			return fmt.Errorf("give secret or secretEnv, not both")
		}
		v, ok := os.LookupEnv(e.SecretEnv)
		if !ok || v == "" {
			return fmt.Errorf("secretEnv %s is not set", e.SecretEnv)
		}
		e.Secret = v
	}
	return nil
}
