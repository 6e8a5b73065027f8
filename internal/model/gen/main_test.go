package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate fails when a checked-in zz_generated.go differs from
// what the generator now produces; run go generate ./internal/model/... to fix.
func TestGeneratedUpToDate(t *testing.T) {
	for _, c := range []struct{ pkg, spec, paginators string }{
		{"codedeploy", "codedeploy-2014-10-06.service.json", "codedeploy-2014-10-06.paginators.json"},
		{"commands", "codedeploy-commands-2014-10-06.service.json", ""},
	} {
		out := filepath.Join(t.TempDir(), "zz_generated.go")
		args := []string{"-spec", filepath.Join("..", "spec", c.spec), "-pkg", c.pkg, "-iface", "Service", "-out", out}
		if c.paginators != "" {
			args = append(args, "-paginators", filepath.Join("..", "spec", c.paginators))
		}
		if err := run(args); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", c.pkg, "zz_generated.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/zz_generated.go is stale; run go generate", c.pkg)
		}
	}
}

func TestEnumIdent(t *testing.T) {
	for in, want := range map[string]string{
		"InProgress": "InProgress", "YAML": "YAML", "Local File": "LocalFile",
		"tar": "Tar", "CONTINUE_DEPLOYMENT": "CONTINUEDEPLOYMENT", "ECS": "ECS",
	} {
		if got := enumIdent(in); got != want {
			t.Errorf("enumIdent(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := config{spec: "../spec/codedeploy-2014-10-06.service.json", paginators: "../spec/codedeploy-2014-10-06.paginators.json", pkg: "codedeploy", iface: "Service"}
	a, err := generate(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two runs differ")
	}
}
