// Package appspec parses and validates the appspec.yml file of an EC2/on-premises
// revision the way the official CodeDeploy agent (Ruby, 1.8.1) does, so that a bundle
// accepted or rejected by the official agent is accepted or rejected here too.
//
// The file is YAML (JSON is a subset and is accepted). The official agent parses it
// with Ruby's Psych, a YAML 1.1 parser, while gopkg.in/yaml.v3 speaks YAML 1.2; the few
// places where that difference is visible (octal modes such as 0644, yes/no/on/off
// booleans) are resolved here with YAML 1.1 rules.
package appspec

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultTimeout is the per-script timeout used when a hook entry has no timeout key.
const DefaultTimeout = 3600 * time.Second

// File-exists behaviours (the appspec key and the deployment's FileExistsBehavior).
const (
	Disallow  = "DISALLOW"
	Overwrite = "OVERWRITE"
	Retain    = "RETAIN"
)

// Spec is a parsed appspec.
type Spec struct {
	Version string // always "0.0" after a successful Parse
	OS      string // always "linux" after a successful Parse
	Files   []File
	// Permissions in appspec order.
	Permissions []Permission
	// Hooks maps an event name to its scripts, in list order. An event written
	// with a null value is present with an empty list.
	Hooks map[string][]Script
	// FileExistsBehavior is "" when the appspec does not set it.
	FileExistsBehavior string
}

// File is one entry of the files section.
type File struct {
	Source, Destination string
}

// Permission is one entry of the permissions section.
type Permission struct {
	Object string
	// Pattern is a simple glob ('*' is the only wildcard) or "**" (the default).
	Pattern string
	Except  []string
	// Owner and Group are names ("" = unchanged).
	Owner, Group string
	// Mode is 3 or 4 octal digits ("" = unchanged). A YAML 0644 arrives here as
	// "420", exactly as the official agent reads it.
	Mode string
	// ACLs are validated ACL entries as written in the appspec.
	ACLs []string
	// Context is nil or a *SELinuxContext.
	Context any
	// Type holds "file" and/or "directory"; it is never empty after Parse.
	Type []string
}

// SELinuxContext is the context key of a permissions entry. The official agent reads
// the SELinux user from the key "name" (the docs say "user"; that key is ignored).
type SELinuxContext struct {
	User  string // from "name"; optional
	Type  string // required
	Range string // optional, "sN[-sM][:cX[.cY],...]"
}

// Script is one entry of a hook's list.
type Script struct {
	Location string
	Timeout  time.Duration
	RunAs    string
	Sudo     bool
}

// Parse parses and validates an appspec. Error messages follow the official agent's
// where it has one.
func Parse(data []byte) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("appspec: invalid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errors.New("appspec: the appspec file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("appspec: the appspec file must be a mapping of keys to values")
	}
	keys := mapping(root)

	s := &Spec{Hooks: map[string][]Script{}}
	if err := parseVersion(keys["version"]); err != nil {
		return nil, err
	}
	s.Version = "0.0"

	osNode := keys["os"]
	if osNode == nil || isNull(osNode) || osNode.Kind != yaml.ScalarNode || osNode.Value != "linux" {
		return nil, fmt.Errorf("appspec: appspec.yml file contains unknown os: %s (this agent supports: linux)", scalarText(osNode))
	}
	s.OS = "linux"

	var err error
	if s.Hooks, err = parseHooks(keys["hooks"]); err != nil {
		return nil, err
	}
	if s.Files, err = parseFiles(keys["files"]); err != nil {
		return nil, err
	}
	if s.Permissions, err = parsePermissions(keys["permissions"]); err != nil {
		return nil, err
	}
	if n := keys["file_exists_behavior"]; n != nil && !isNull(n) {
		v := scalarText(n)
		if n.Kind != yaml.ScalarNode || (v != Disallow && v != Overwrite && v != Retain) {
			return nil, fmt.Errorf("appspec: file_exists_behavior %q is not one of DISALLOW, OVERWRITE, RETAIN (case-sensitive)", v)
		}
		s.FileExistsBehavior = v
	}
	return s, nil
}

// Load reads and parses the appspec of an unpacked revision. appSpecFilename is the
// deployment's AppSpecFilename ("" means appspec.yml).
//
// With fallback (what Install does) the lookup order is <appSpecFilename>,
// appspec.yaml, appspec.yml, and when none exists the error is about the last one.
// Without fallback (what the official 1.8.1 hooks do) exactly <appSpecFilename> is read.
// It returns the path it read.
func Load(archiveDir, appSpecFilename string, fallback bool) (*Spec, string, error) {
	name := appSpecFilename
	if name == "" {
		name = "appspec.yml"
	}
	path := filepath.Join(archiveDir, name)
	if fallback {
		for _, c := range []string{name, "appspec.yaml", "appspec.yml"} {
			path = filepath.Join(archiveDir, c)
			if _, err := os.Stat(path); err == nil {
				break
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("appspec: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	return s, path, nil
}

// defaultLifecycleEvents are the 11 events the official agent knows by default.
var defaultLifecycleEvents = []string{
	"ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
	"ApplicationStart", "ValidateService", "BeforeBlockTraffic", "AfterBlockTraffic",
	"BeforeAllowTraffic", "AfterAllowTraffic",
}

// mappedHooks are the agent's 9 hook commands (§7.2).
var mappedHooks = []string{
	"BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall",
	"AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic",
}

// ValidateLifecycleEvents applies the AllPossibleLifecycleEvents check of the
// deployment specification (§7.2). Call it only when the specification has that key.
func (s *Spec) ValidateLifecycleEvents(all []string) error {
	in := map[string]bool{}
	for _, e := range all {
		in[e] = true
	}
	var unknown []string
	for e := range s.Hooks {
		if !in[e] {
			unknown = append(unknown, e)
		}
	}
	for _, e := range mappedHooks {
		if !in[e] {
			unknown = append(unknown, e)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("appspec: appspec.yml file contains unknown lifecycle events: %v", unknown)
	}
	def := map[string]bool{}
	for _, e := range defaultLifecycleEvents {
		def[e] = true
	}
	var missing []string
	for _, e := range all {
		if _, ok := s.Hooks[e]; !def[e] && !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("appspec: custom lifecycle events are not in the appspec hooks: %v", missing)
	}
	return nil
}

func parseVersion(n *yaml.Node) error {
	// Ruby compares the parsed value with the Float 0.0, so the integer 0 passes and
	// the string "0.0" does not (verified against the official agent).
	if n != nil && n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		if f, ok := yaml11Number(n.Value); ok && f == 0 {
			return nil
		}
	}
	v := scalarText(n)
	if n != nil && n.Tag == "!!str" {
		v = strconv.Quote(v)
	}
	return fmt.Errorf("appspec: appspec.yml file contains unknown version: %s (use the number 0.0, unquoted)", v)
}

func parseHooks(n *yaml.Node) (map[string][]Script, error) {
	hooks := map[string][]Script{}
	if n == nil || isNull(n) {
		return hooks, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("appspec: hooks must be a mapping of lifecycle event names to lists of scripts")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		event, list := n.Content[i].Value, n.Content[i+1]
		scripts := []Script{}
		if !isNull(list) {
			if list.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("appspec: hook %s must be a list of scripts", event)
			}
			for j, item := range list.Content {
				sc, err := parseScript(item)
				if err != nil {
					return nil, fmt.Errorf("appspec: hook %s, script %d: %w", event, j+1, err)
				}
				scripts = append(scripts, sc)
			}
		}
		hooks[event] = scripts
	}
	return hooks, nil
}

func parseScript(n *yaml.Node) (Script, error) {
	if n.Kind != yaml.MappingNode {
		return Script{}, errors.New("a script must be a mapping with a location key")
	}
	k := mapping(n)
	loc, ok := k["location"]
	if !ok {
		return Script{}, errors.New("script provided without a location value")
	}
	sc := Script{Location: strings.TrimSpace(scalarText(loc)), Timeout: DefaultTimeout}
	if isNull(loc) || sc.Location == "" {
		return Script{}, errors.New("scripts need a location value")
	}
	if r := k["runas"]; r != nil && !isNull(r) {
		sc.RunAs = strings.TrimSpace(scalarText(r))
	}
	if s := k["sudo"]; s != nil {
		// Ruby truthiness: everything except nil and false is true.
		b, isBool := yaml11Bool(s)
		sc.Sudo = !isNull(s) && (!isBool || b)
	}
	if t := k["timeout"]; t != nil && !isNull(t) {
		secs, err := rubyToI(t)
		if err != nil {
			return Script{}, err
		}
		if secs <= 0 {
			return Script{}, fmt.Errorf("timeout needs to be an integer greater than 0 (got %s)", scalarText(t))
		}
		// No maximum, like the official agent; clamp only to what a Duration holds.
		if secs > int64(math.MaxInt64/time.Second) {
			secs = int64(math.MaxInt64 / time.Second)
		}
		sc.Timeout = time.Duration(secs) * time.Second
	}
	return sc, nil
}

func parseFiles(n *yaml.Node) ([]File, error) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("appspec: files must be a list of {source, destination} mappings")
	}
	var files []File
	for i, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("appspec: files entry %d must be a mapping with source and destination", i+1)
		}
		k := mapping(item)
		src, dst := k["source"], k["destination"]
		if src == nil || isNull(src) {
			return nil, fmt.Errorf("appspec: files entry %d: file needs to have a source", i+1)
		}
		if dst == nil || isNull(dst) {
			return nil, fmt.Errorf("appspec: files entry %d: file %s needs to have a destination", i+1, scalarText(src))
		}
		files = append(files, File{Source: scalarText(src), Destination: scalarText(dst)})
	}
	return files, nil
}

func parsePermissions(n *yaml.Node) ([]Permission, error) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("appspec: permissions must be a list")
	}
	var perms []Permission
	for i, item := range n.Content {
		p, err := parsePermission(item)
		if err != nil {
			return nil, fmt.Errorf("appspec: permissions entry %d: %w", i+1, err)
		}
		perms = append(perms, p)
	}
	return perms, nil
}

func parsePermission(n *yaml.Node) (Permission, error) {
	if n.Kind != yaml.MappingNode {
		return Permission{}, errors.New("must be a mapping with an object key")
	}
	k := mapping(n)
	obj := k["object"]
	if obj == nil || isNull(obj) {
		return Permission{}, errors.New("permission provided without a object value")
	}
	p := Permission{Object: strings.TrimSpace(scalarText(obj)), Pattern: "**"}
	if v := k["pattern"]; v != nil && !isNull(v) {
		p.Pattern = scalarText(v)
	}
	var err error
	if p.Except, err = stringList(k["except"], "except"); err != nil {
		return Permission{}, err
	}
	if v := k["owner"]; v != nil && !isNull(v) {
		p.Owner = scalarText(v)
	}
	if v := k["group"]; v != nil && !isNull(v) {
		p.Group = scalarText(v)
	}
	if v := k["mode"]; v != nil && !isNull(v) {
		if p.Mode, err = parseMode(v); err != nil {
			return Permission{}, err
		}
	}
	if p.ACLs, err = stringList(k["acls"], "acls"); err != nil {
		return Permission{}, err
	}
	for _, a := range p.ACLs {
		if err := validateACE(a); err != nil {
			return Permission{}, err
		}
	}
	if v := k["context"]; v != nil && !isNull(v) {
		c, err := parseContext(v)
		if err != nil {
			return Permission{}, err
		}
		p.Context = c
	}
	types, err := stringList(k["type"], "type")
	if err != nil {
		return Permission{}, err
	}
	if len(types) == 0 {
		types = []string{"file", "directory"}
	}
	for _, t := range types {
		if t != "file" && t != "directory" {
			return Permission{}, fmt.Errorf("assigning permissions to objects of type %s not supported (use file or directory)", t)
		}
	}
	p.Type = types
	return p, nil
}

// parseMode mirrors the official ModeInfo: the value as a string (YAML 1.1 integers
// first converted to decimal, which is why 0644 becomes 420), left-padded to 3
// characters, at most 4 characters, octal digits only.
func parseMode(n *yaml.Node) (string, error) {
	m := scalarText(n)
	if n.Tag == "!!int" {
		if v, err := strconv.ParseInt(strings.ReplaceAll(m, "_", ""), 0, 64); err == nil && !strings.HasPrefix(strings.ToLower(m), "0o") {
			m = strconv.FormatInt(v, 10)
		}
	}
	for len(m) < 3 {
		m = "0" + m
	}
	if len(m) > 4 {
		return "", fmt.Errorf("permission mode length incorrect: %s", m)
	}
	for _, c := range m {
		if c < '0' || c > '7' {
			return "", fmt.Errorf("invalid character %c in permission mode %s", c, m)
		}
	}
	return m, nil
}

// validateACE checks one acls entry: [d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perm.
func validateACE(ace string) error {
	parts := strings.Split(ace, ":")
	if len(parts) == 4 && (parts[0] == "d" || parts[0] == "default") {
		parts = parts[1:]
	}
	if len(parts) != 3 {
		return fmt.Errorf("invalid acl entry %q: want [d[efault]:]u[ser]|g[roup]|m[ask]|o[ther]:[name]:perm", ace)
	}
	kind, name, perm := parts[0], parts[1], parts[2]
	switch kind {
	case "u", "user", "g", "group", "o", "other":
		if name == "" {
			return fmt.Errorf("invalid acl entry %q: use mode to set the base user, group and other entries", ace)
		}
		if kind == "o" || kind == "other" {
			return fmt.Errorf("invalid acl entry %q: other entries cannot be named", ace)
		}
	case "m", "mask":
		if name != "" {
			return fmt.Errorf("invalid acl entry %q: mask entries cannot be named", ace)
		}
	default:
		return fmt.Errorf("invalid acl entry %q: unknown type %q", ace, kind)
	}
	if len(perm) == 1 && perm[0] >= '0' && perm[0] <= '7' {
		return nil
	}
	if perm == "" || len(perm) > 3 || strings.Trim(perm, "rwx-") != "" {
		return fmt.Errorf("invalid acl entry %q: permission must be rwx- letters or one octal digit", ace)
	}
	return nil
}

func parseContext(n *yaml.Node) (*SELinuxContext, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("context must be a mapping with name, type and range keys")
	}
	k := mapping(n)
	if _, ok := k["role"]; ok {
		return nil, errors.New("invalid context: role is not supported")
	}
	c := &SELinuxContext{}
	if v := k["name"]; v != nil && !isNull(v) {
		c.User = scalarText(v)
	}
	if v := k["type"]; v != nil && !isNull(v) {
		c.Type = scalarText(v)
	}
	if c.Type == "" {
		return nil, errors.New("invalid context: type is required")
	}
	if v := k["range"]; v != nil && !isNull(v) {
		c.Range = scalarText(v)
	}
	return c, nil
}

func stringList(n *yaml.Node, key string) ([]string, error) {
	if n == nil || isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s must be a list", key)
	}
	var out []string
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s entries must be strings", key)
		}
		out = append(out, c.Value)
	}
	return out, nil
}

// mapping returns a mapping node's keys; a repeated key keeps its last value, as Ruby does.
func mapping(n *yaml.Node) map[string]*yaml.Node {
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		m[n.Content[i].Value] = n.Content[i+1]
	}
	return m
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func scalarText(n *yaml.Node) string {
	if n == nil || isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		b, _ := yaml.Marshal(n)
		return strings.TrimSpace(string(b))
	}
	return n.Value
}

// yaml11Bool reports the YAML 1.1 boolean value of an unquoted scalar (Psych treats
// yes/no/on/off as booleans; yaml.v3 does not).
func yaml11Bool(n *yaml.Node) (value, ok bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!bool" && n.Style != 0) {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func yaml11Number(s string) (float64, bool) {
	s = strings.ReplaceAll(s, "_", "")
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		return float64(v), true
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// rubyToI mimics Ruby's to_i on a YAML scalar: integers as they are, floats
// truncated, strings by their leading integer ("10s" is 10, "abc" is 0).
func rubyToI(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, errors.New("timeout must be a number")
	}
	switch n.Tag {
	case "!!int", "!!float":
		f, ok := yaml11Number(n.Value)
		if !ok {
			return 0, fmt.Errorf("timeout %q is not a number", n.Value)
		}
		if f >= math.MaxInt64 {
			return math.MaxInt64, nil
		}
		return int64(f), nil
	case "!!bool":
		return 0, fmt.Errorf("timeout %q is not a number", n.Value)
	}
	s := strings.TrimLeft(n.Value, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '_' && end > 0) {
		end++
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s[:end], "_", ""), 10, 64)
	if err != nil {
		return 0, nil
	}
	return v, nil
}
