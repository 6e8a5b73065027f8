package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/logging"
)

// settings resolves each option from, in order: the command-line flag, the
// environment variable CUTOVER_<NAME>, the config file (--config, YAML with
// the flag names as keys), the default.
//
// Each (sub)command makes its own settings with newSettings, declares its
// flags on s.fs, sets s.args when it takes positional arguments, and calls
// s.parse before touching any state: -h and --help end parse with
// flag.ErrHelp after printing the usage, and unknown flags are errors.
type settings struct {
	fs      *flag.FlagSet
	config  *string
	fromCfg map[string]string
	// args names the positional arguments in the usage line, e.g.
	// "ACCESS_KEY_ID"; empty means the command takes none and refuses any.
	args string
	// pos are the positional arguments, wherever they stood among the flags.
	pos []string
	// about, when set, is printed between the usage line and the flags.
	about string
}

func newSettings(name string) *settings {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &settings{fs: fs}
	fs.Usage = s.usage
	s.config = fs.String("config", "", "YAML config file; keys are the flag names (env CUTOVER_CONFIG)")
	return s
}

func (s *settings) usage() {
	w := s.fs.Output()
	line := "cutover " + s.fs.Name() + " [flags]"
	if s.args != "" {
		line += " " + s.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n", line)
	if s.about != "" {
		fmt.Fprintf(w, "%s\n\n", s.about)
	}
	fmt.Fprintf(w, "Flags may come before or after the arguments. Each can also be set as\nCUTOVER_<FLAG> (upper case, - as _) in the environment or as a key of --config.\n\n")
	s.fs.PrintDefaults()
}

// parse parses args, then fills every flag not given on the command line
// from the environment or the config file.
func (s *settings) parse(args []string) error {
	pos, err := parseInterleaved(s.fs, args)
	if err != nil {
		return err
	}
	if s.args == "" && len(pos) > 0 {
		return fmt.Errorf("%s: unexpected argument %q (see 'cutover %s -h')", s.fs.Name(), pos[0], s.fs.Name())
	}
	s.pos = pos
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

// parseInterleaved parses flags wherever they stand among the positional
// arguments (the flag package alone stops at the first positional one) and
// returns the positional arguments in order. Everything after "--" is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// logFlags are the logging flags of the long-running commands.
type logFlags struct{ level, format string }

func (f *logFlags) declare(fs *flag.FlagSet, level string) {
	fs.StringVar(&f.level, "log-level", level, "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log line format: text or json")
}

func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return processLogger(w, f.level, f.format)
}

// processLogger builds the command's logger and makes it the process
// default, so that packages logging through slog.Default, and the standard
// log package (which slog.SetDefault redirects), write in the same format.
func processLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := logging.New(w, level, format)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(l)
	return l, nil
}
