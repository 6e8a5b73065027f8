package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// settings resolves each option from, in order: the command-line flag, the
// environment variable CUTOVER_<NAME>, the config file (--config, YAML with
// the flag names as keys), the default.
type settings struct {
	fs      *flag.FlagSet
	config  *string
	fromCfg map[string]string
}

func newSettings(name string) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &settings{fs: fs}
	s.config = fs.String("config", "", "YAML config file; keys are the flag names (env CUTOVER_CONFIG)")
	return s
}

// parse parses args, then fills every flag not given on the command line
// from the environment or the config file.
func (s *settings) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfgPath := *s.config
	if cfgPath == "" {
		cfgPath = os.Getenv("CUTOVER_CONFIG")
	}
	if cfgPath != "" {
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		raw := map[string]any{}
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("parse config %s: %w", cfgPath, err)
		}
		s.fromCfg = map[string]string{}
		for k, v := range raw {
			if s.fs.Lookup(k) == nil {
				return fmt.Errorf("config %s: unknown key %q", cfgPath, k)
			}
			s.fromCfg[k] = fmt.Sprint(v)
		}
	}
	var err error
	s.fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" || err != nil {
			return
		}
		env := "CUTOVER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
			return
		}
		if v, ok := s.fromCfg[f.Name]; ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("config %s: %w", f.Name, e)
			}
		}
	})
	return err
}
