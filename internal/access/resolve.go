package access

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
)

// fields are the values of the members of a CodeDeploy input that name
// resources, keyed by lower-cased member name. Every occurrence counts:
// were a body to carry "applicationName" twice, or also as
// "ApplicationName", each value is checked, whichever one the operation's
// decoder ends up using.
type fields map[string][]string

// resourceMembers are the members read, lower-cased.
var resourceMembers = map[string]bool{
	"applicationname": true, "newapplicationname": true, "applicationnames": true,
	"deploymentgroupname": true, "currentdeploymentgroupname": true, "newdeploymentgroupname": true, "deploymentgroupnames": true,
	"deploymentid": true, "deploymentids": true, "deploymentconfigname": true, "resourcearn": true,
	"instancename": true, "instancenames": true, "tokenname": true, "externalid": true, "username": true, "accesskeyid": true,
}

// maxResolved bounds the names one request may make Resolve look up; no
// CodeDeploy batch takes more than 100.
const maxResolved = 100

// decodeFields reads the top-level resource members of a JSON object;
// ok is false when the body is not one.
func decodeFields(body []byte) (f fields, ok bool) {
	f = fields{}
	if len(bytes.TrimSpace(body)) == 0 {
		return f, true
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, false
	}
	// A map keeps the last of duplicate keys; walk the tokens to see all.
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		k := strings.ToLower(key)
		if !resourceMembers[k] {
			continue
		}
		var one string
		var many []string
		switch {
		case json.Unmarshal(raw, &one) == nil:
			f[k] = append(f[k], one)
		case json.Unmarshal(raw, &many) == nil:
			f[k] = append(f[k], many...)
		}
	}
	return f, true
}

// all returns the non-empty values of the members.
func (f fields) all(members ...string) []string {
	var out []string
	for _, m := range members {
		for _, v := range f[m] {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// DeploymentGroupOf finds the application and group of a deployment of the
// caller's account and region (ok false if there is none).
type DeploymentGroupOf func(ctx context.Context, id string) (app, group string, ok bool, err error)

// isConfigOp reports the operations on deployment configs themselves (other
// operations name a config only to use it).
func isConfigOp(op string) bool {
	switch op {
	case "CreateDeploymentConfig", "DeleteDeploymentConfig", "GetDeploymentConfig", "ListDeploymentConfigs":
		return true
	}
	return false
}

// Resolve returns the resources a CodeDeploy call acts on, for keys
// narrowed to applications. An operation that names no application,
// deployment group, deployment or config (ListApplications, the
// on-premises instance and GitHub token operations, ListDeployments without
// an application) acts on the whole account and gets none. A body that does
// not decode gets none either; the operation refuses it anyway.
func Resolve(ctx context.Context, op string, body []byte, deployment DeploymentGroupOf) ([]Resource, error) {
	f, ok := decodeFields(body)
	if !ok {
		return nil, nil
	}
	if isConfigOp(op) {
		names := f.all("deploymentconfigname")
		if len(names) == 0 {
			names = []string{"*"}
		}
		var out []Resource
		for _, n := range names {
			out = append(out, Resource{Config: n})
		}
		return out, nil
	}
	var out []Resource
	groups := f.all("deploymentgroupname", "currentdeploymentgroupname", "newdeploymentgroupname", "deploymentgroupnames")
	for _, app := range f.all("applicationname") {
		switch {
		case len(groups) == 0 && op == "ListDeployments":
			// The deployments of every group of the application: only
			// an entry reaching all of its groups may list them.
			out = append(out, Resource{App: app, Group: "*"})
		case len(groups) == 0:
			out = append(out, Resource{App: app})
		}
		for _, g := range groups {
			out = append(out, Resource{App: app, Group: g})
		}
	}
	for _, app := range f.all("newapplicationname", "applicationnames") {
		out = append(out, Resource{App: app})
	}
	for _, arn := range f.all("resourcearn") {
		if r, ok := arnResource(arn); ok {
			out = append(out, r)
		}
	}
	ids := f.all("deploymentid", "deploymentids")
	if len(out)+len(ids) > maxResolved {
		return nil, nil
	}
	for _, id := range ids {
		app, group, ok, err := deployment(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Resource{App: app, Group: group})
		}
	}
	return out, nil
}

// arnResource reads an application, deployment group or deployment config
// ARN (the tagging operations' ResourceArn).
func arnResource(arn string) (Resource, bool) {
	head := strings.SplitN(arn, ":", 6)
	if len(head) != 6 || head[0] != "arn" || head[2] != "codedeploy" {
		return Resource{}, false
	}
	typ, name, ok := strings.Cut(head[5], ":")
	if !ok || name == "" {
		return Resource{}, false
	}
	switch typ {
	case "application":
		return Resource{App: name}, true
	case "deploymentgroup":
		app, group, ok := strings.Cut(name, "/")
		return Resource{App: app, Group: group}, ok && app != "" && group != ""
	case "deploymentconfig":
		return Resource{Config: name}, true
	}
	return Resource{}, false
}

// maxNames bounds the names an audit entry keeps of one request.
const maxNames = 20

// Names returns the main resource names of a call, for the audit log:
// applications, groups ("app/group"), deployment ids, configs, instances,
// ARNs, tokens and user names, at most a few and each cut short.
func Names(body []byte) []string {
	f, ok := decodeFields(body)
	if !ok {
		return nil
	}
	var out []string
	add := func(prefix string, vs ...string) {
		for _, v := range vs {
			if v == "" || len(out) >= maxNames {
				continue
			}
			if len(v) > 256 {
				v = v[:256]
			}
			out = append(out, prefix+v)
		}
	}
	add("application:", f.all("applicationname", "newapplicationname", "applicationnames")...)
	for _, app := range f.all("applicationname") {
		for _, g := range f.all("deploymentgroupname", "currentdeploymentgroupname", "newdeploymentgroupname", "deploymentgroupnames") {
			add("deploymentgroup:", app+"/"+g)
		}
	}
	add("deployment:", f.all("deploymentid", "deploymentids")...)
	add("deploymentconfig:", f.all("deploymentconfigname")...)
	add("instance:", f.all("instancename", "instancenames")...)
	add("", f.all("resourcearn")...)
	add("token:", f.all("tokenname")...)
	add("externalId:", f.all("externalid")...)
	add("user:", f.all("username")...)
	add("key:", f.all("accesskeyid")...)
	return out
}
