package appspec

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" = valid
		check   func(t *testing.T, s *Spec)
	}{
		{name: "valid full", in: `version: 0.0
os: linux
files:
  - source: /
    destination: /var/app
permissions:
  - object: /var/app
    pattern: "*.sh"
    except: [skip.sh]
    owner: nobody
    group: nogroup
    mode: 755
    type: [file]
hooks:
  BeforeInstall:
    - location: scripts/a.sh
      timeout: 30
      runas: nobody
    - location: "  scripts/b.sh  "
      sudo: true
  ApplicationStop:
file_exists_behavior: OVERWRITE
`, check: func(t *testing.T, s *Spec) {
			want := &Spec{
				Version: "0.0", OS: "linux",
				Files: []File{{Source: "/", Destination: "/var/app"}},
				Permissions: []Permission{{Object: "/var/app", Pattern: "*.sh", Except: []string{"skip.sh"},
					Owner: "nobody", Group: "nogroup", Mode: "755", Type: []string{"file"}}},
				Hooks: map[string][]Script{
					"BeforeInstall": {
						{Location: "scripts/a.sh", Timeout: 30 * time.Second, RunAs: "nobody"},
						{Location: "scripts/b.sh", Timeout: DefaultTimeout, Sudo: true},
					},
					"ApplicationStop": {},
				},
				FileExistsBehavior: "OVERWRITE",
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got  %+v\nwant %+v", s, want)
			}
		}},
		{name: "json is yaml", in: `{"version": 0.0, "os": "linux"}`},
		{name: "integer version 0 passes", in: "version: 0\nos: linux\n"},
		{name: "quoted version rejected", in: "version: \"0.0\"\nos: linux\n", wantErr: "unknown version"},
		{name: "version 1.0 rejected", in: "version: 1.0\nos: linux\n", wantErr: "unknown version"},
		{name: "missing version", in: "os: linux\n", wantErr: "unknown version"},
		{name: "os windows rejected", in: "version: 0.0\nos: windows\n", wantErr: "unknown os: windows"},
		{name: "os missing", in: "version: 0.0\n", wantErr: "unknown os"},
		{name: "empty file", in: "", wantErr: "empty"},
		{name: "comment only", in: "# nothing\n", wantErr: "empty"},
		{name: "not a mapping", in: "- a\n", wantErr: "mapping"},
		{name: "bad yaml", in: "version: [\n", wantErr: "invalid YAML"},
		{name: "hook without location", in: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - timeout: 10\n", wantErr: "without a location"},
		{name: "hook with null location", in: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location:\n", wantErr: "need a location"},
		{name: "timeout negative", in: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a\n      timeout: -5\n", wantErr: "greater than 0"},
		{name: "timeout zero", in: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a\n      timeout: 0\n", wantErr: "greater than 0"},
		{name: "timeout garbage is to_i 0", in: "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: a\n      timeout: abc\n", wantErr: "greater than 0"},
		{name: "timeout string and float like Ruby to_i", in: "version: 0.0\nos: linux\nhooks:\n  A:\n    - location: a\n      timeout: \"90s\"\n    - location: b\n      timeout: 7.9\n    - location: c\n      timeout: 86400\n",
			check: func(t *testing.T, s *Spec) {
				got := []time.Duration{s.Hooks["A"][0].Timeout, s.Hooks["A"][1].Timeout, s.Hooks["A"][2].Timeout}
				want := []time.Duration{90 * time.Second, 7 * time.Second, 24 * time.Hour}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("timeouts %v, want %v (no maximum)", got, want)
				}
			}},
		{name: "sudo ruby truthiness", in: "version: 0.0\nos: linux\nhooks:\n  A:\n    - {location: a, sudo: no}\n    - {location: b, sudo: \"no\"}\n    - {location: c, sudo: 0}\n    - {location: d, sudo: false}\n    - {location: e, sudo: ~}\n",
			check: func(t *testing.T, s *Spec) {
				var got []bool
				for _, sc := range s.Hooks["A"] {
					got = append(got, sc.Sudo)
				}
				if want := []bool{false, true, true, false, false}; !reflect.DeepEqual(got, want) {
					t.Errorf("sudo %v, want %v", got, want)
				}
			}},
		{name: "hooks not a mapping", in: "version: 0.0\nos: linux\nhooks: [a]\n", wantErr: "hooks must be a mapping"},
		{name: "files without destination", in: "version: 0.0\nos: linux\nfiles:\n  - source: /\n", wantErr: "needs to have a destination"},
		{name: "files without source", in: "version: 0.0\nos: linux\nfiles:\n  - destination: /x\n", wantErr: "needs to have a source"},
		{name: "unknown file_exists_behavior", in: "version: 0.0\nos: linux\nfile_exists_behavior: overwrite\n", wantErr: "file_exists_behavior"},
		{name: "permission without object", in: "version: 0.0\nos: linux\npermissions:\n  - mode: 644\n", wantErr: "without a object"},
		{name: "permission bad type", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    type: [link]\n", wantErr: "type link"},
		{name: "mode 0644 read as octal integer 420", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    mode: 0644\n  - object: /y\n    mode: \"0644\"\n  - object: /z\n    mode: 44\n",
			check: func(t *testing.T, s *Spec) {
				got := []string{s.Permissions[0].Mode, s.Permissions[1].Mode, s.Permissions[2].Mode}
				if want := []string{"420", "0644", "044"}; !reflect.DeepEqual(got, want) {
					t.Errorf("modes %v, want %v", got, want)
				}
				if !reflect.DeepEqual(s.Permissions[0].Type, []string{"file", "directory"}) || s.Permissions[0].Pattern != "**" {
					t.Errorf("defaults: %+v", s.Permissions[0])
				}
			}},
		{name: "mode bad digit", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    mode: 789\n", wantErr: "invalid character 8"},
		{name: "mode too long", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    mode: 12345\n", wantErr: "length"},
		{name: "acl unnamed user rejected", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    acls: [\"u::rwx\"]\n", wantErr: "use mode"},
		{name: "acl ok", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    acls: [\"u:nobody:rw\", \"d:g:nogroup:5\", \"m::r\"]\n    context: {name: unconfined_u, type: httpd_sys_content_t, range: s0}\n",
			check: func(t *testing.T, s *Spec) {
				c, ok := s.Permissions[0].Context.(*SELinuxContext)
				if !ok || *c != (SELinuxContext{User: "unconfined_u", Type: "httpd_sys_content_t", Range: "s0"}) {
					t.Errorf("context %#v", s.Permissions[0].Context)
				}
			}},
		{name: "context without type", in: "version: 0.0\nos: linux\npermissions:\n  - object: /x\n    context: {name: u}\n", wantErr: "type is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	const spec = "version: 0.0\nos: linux\n"
	tests := []struct {
		name     string
		files    []string
		filename string
		fallback bool
		want     string // base name used; "" = error
	}{
		{name: "default yml", files: []string{"appspec.yml"}, want: "appspec.yml"},
		{name: "yaml only with fallback", files: []string{"appspec.yaml"}, fallback: true, want: "appspec.yaml"},
		{name: "yaml only without fallback fails", files: []string{"appspec.yaml"}},
		{name: "custom name first", files: []string{"custom.yml", "appspec.yml"}, filename: "custom.yml", fallback: true, want: "custom.yml"},
		{name: "custom missing falls back to yaml", files: []string{"appspec.yaml", "appspec.yml"}, filename: "custom.yml", fallback: true, want: "appspec.yaml"},
		{name: "custom missing without fallback fails", files: []string{"appspec.yml"}, filename: "custom.yml"},
		{name: "nothing", fallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(spec), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, used, err := Load(dir, tt.filename, tt.fallback)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Load succeeded with %s, want error", used)
				}
				return
			}
			if err != nil || s == nil {
				t.Fatalf("Load: %v", err)
			}
			if used != filepath.Join(dir, tt.want) {
				t.Errorf("used %s, want %s", used, tt.want)
			}
		})
	}
}

func TestValidateLifecycleEvents(t *testing.T) {
	s, err := Parse([]byte("version: 0.0\nos: linux\nhooks:\n  AfterInstall: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string(nil), defaultLifecycleEvents...)
	if err := s.ValidateLifecycleEvents(all); err != nil {
		t.Errorf("default list: %v", err)
	}
	if err := s.ValidateLifecycleEvents([]string{"AfterInstall"}); err == nil {
		t.Error("list missing mapped hooks accepted")
	}
	if err := s.ValidateLifecycleEvents(append(all, "Custom")); err == nil {
		t.Error("custom event absent from the appspec accepted")
	}
}
