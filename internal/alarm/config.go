package alarm

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the --alarms-config file: what each alarm name of an
// alarmConfiguration means on this server.
//
//	prometheusUrl: http://127.0.0.1:9090   # for alarms defined by a query
//	pollInterval: 10s                      # default 10s
//	alarms:
//	  - name: high-error-rate
//	    prometheus: 'sum(rate(http_requests_total{code=~"5.."}[1m])) > 1'
//	  - name: web-health
//	    http: http://10.0.0.5:8080/healthz
//
// A Prometheus alarm fires when its query returns a non-empty result. An
// HTTP alarm fires when the URL answers a status outside 200-299. When the
// state cannot be read (Prometheus or the URL unreachable, a query error, a
// timeout) the alarm's state is unknown, and the deployment group's
// ignorePollAlarmFailure decides.
type File struct {
	PrometheusURL string        `yaml:"prometheusUrl" json:"prometheusUrl"`
	PollInterval  time.Duration `yaml:"pollInterval" json:"pollInterval"`
	Timeout       time.Duration `yaml:"timeout" json:"timeout"`
	Alarms        []Definition  `yaml:"alarms" json:"alarms"`
}

// Definition is one alarm.
type Definition struct {
	Name       string `yaml:"name" json:"name"`
	Prometheus string `yaml:"prometheus" json:"prometheus"`
	HTTP       string `yaml:"http" json:"http"`
}

const maxConfigSize = 1 << 20

// Load reads and checks a configuration file (YAML or JSON).
func Load(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("alarms config: %w", err)
	}
	if len(b) > maxConfigSize {
		return f, fmt.Errorf("alarms config %s: larger than %d bytes", path, maxConfigSize)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("alarms config %s: %w", path, err)
	}
	if err := f.Check(); err != nil {
		return f, fmt.Errorf("alarms config %s: %w", path, err)
	}
	return f, nil
}

// Check validates a configuration and fills in defaults.
func (f *File) Check() error {
	if f.PollInterval <= 0 {
		f.PollInterval = 10 * time.Second
	}
	if f.Timeout <= 0 {
		f.Timeout = min(f.PollInterval, 5*time.Second)
	}
	if f.PrometheusURL != "" {
		if err := httpURL(f.PrometheusURL); err != nil {
			return fmt.Errorf("prometheusUrl: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, d := range f.Alarms {
		switch {
		case d.Name == "" || len(d.Name) > 255:
			return fmt.Errorf("alarm names must be 1 to 255 characters long")
		case seen[d.Name]:
			return fmt.Errorf("alarm %s defined twice", d.Name)
		case (d.Prometheus == "") == (d.HTTP == ""):
			return fmt.Errorf("alarm %s: give exactly one of prometheus or http", d.Name)
		case d.Prometheus != "" && f.PrometheusURL == "":
			return fmt.Errorf("alarm %s: a prometheus alarm needs prometheusUrl", d.Name)
		case d.HTTP != "":
			if err := httpURL(d.HTTP); err != nil {
				return fmt.Errorf("alarm %s: %w", d.Name, err)
			}
		}
		seen[d.Name] = true
	}
	return nil
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want an http or https URL", s)
	}
	return nil
}
