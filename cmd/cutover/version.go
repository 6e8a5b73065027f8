package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version, when set at build time (go build -ldflags "-X main.version=v1.2.0"),
// overrides the module version from the build information; release builds
// set it so that the version is right however the tree was fetched.
var version string

// buildInfo is what `cutover version` reports.
type buildInfo struct {
	Version  string // release or module version; "(devel)" for a plain go build
	Revision string // VCS commit the binary was built from
	Time     string // commit time
	Modified bool   // built from a tree with uncommitted changes
	Go       string
}

func readBuildInfo() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version)
}

// fromBuildInfo reads bi (nil: none), with override (main.version) winning
// over the module version.
func fromBuildInfo(bi *debug.BuildInfo, override string) buildInfo {
	v := buildInfo{Version: "(devel)"}
	if bi != nil {
		v.Go = bi.GoVersion
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		v.Version = override
	}
	return v
}

func (v buildInfo) String() string {
	var details []string
	if v.Revision != "" {
		details = append(details, "revision "+v.Revision)
	}
	if v.Time != "" {
		details = append(details, "committed "+v.Time)
	}
	if v.Modified {
		details = append(details, "modified")
	}
	if v.Go != "" {
		details = append(details, v.Go)
	}
	s := "cutover " + v.Version
	if len(details) > 0 {
		s += " (" + strings.Join(details, ", ") + ")"
	}
	return s
}

func runVersion(args []string, stdout io.Writer) error {
	s := newSettings("version")
	if err := s.parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, readBuildInfo())
	return err
}
