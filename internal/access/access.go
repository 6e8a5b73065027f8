// Package access decides what an access key may do. Every key declares a
// role (admin, deployer, read-only or host) and, optionally, the
// applications or deployment groups and the regions it is limited to.
// Nothing is inferred from what else exists in the store: a key's powers
// are exactly those it was created with.
//
// The decision covers the three services of the listener: the CodeDeploy
// API, Cutover's admin API (access keys) and the agent command protocol.
package access

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Role is what a key is for.
type Role string

// The roles. Their powers:
//
//   - Admin: the whole CodeDeploy API and Cutover's admin API (keys).
//   - Deployer: the whole CodeDeploy API, no key management.
//   - ReadOnly: the CodeDeploy Get, List and BatchGet operations.
//   - Host: the agent command protocol, for the one on-premises instance
//     the key is bound to, in the key's account and the bound region.
const (
	Admin    Role = "admin"
	Deployer Role = "deployer"
	ReadOnly Role = "read-only"
	Host     Role = "host"
)

// Roles lists the roles in order of power.
var Roles = []Role{Admin, Deployer, ReadOnly, Host}

// Service is a family of operations served on the listener.
type Service int

// The services.
const (
	CodeDeploy Service = iota // CodeDeploy_20141006
	AdminAPI                  // CutoverAdmin_20261122
	Agent                     // CodeDeployCommandService(_v20141006)
)

// Grant is the declared scope of a key.
type Grant struct {
	Role Role `json:"Role,omitempty"`
	// Applications narrows a non-host key to these applications ("web")
	// or deployment groups ("web/prod"). Names may use the * and ?
	// wildcards of path.Match. Empty: every application.
	Applications []string `json:"Applications,omitempty"`
	// Regions narrows a non-host key to these regions. Empty: every region.
	Regions []string `json:"Regions,omitempty"`
	// Region and Instance bind a host key to one on-premises instance.
	Region   string `json:"Region,omitempty"`
	Instance string `json:"Instance,omitempty"`
}

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9.\-_+=,@*?]{1,100}$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	instanceName  = regexp.MustCompile(`^[A-Za-z0-9.\-_+=,@]{1,100}$`)
)

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: use admin, deployer, read-only or host", s)
}

// Validate checks that a grant is complete and well formed.
func (g Grant) Validate() error {
	if _, err := ParseRole(string(g.Role)); err != nil {
		return err
	}
	if g.Role == Host {
		if len(g.Applications) > 0 || len(g.Regions) > 0 {
			return errors.New("a host key is bound to one instance: it takes no applications or regions")
		}
		if !instanceName.MatchString(g.Instance) {
			return fmt.Errorf("a host key needs a valid instance name, not %q", g.Instance)
		}
		if !regionPattern.MatchString(g.Region) {
			return fmt.Errorf("a host key needs a valid region, not %q", g.Region)
		}
		return nil
	}
	if g.Instance != "" || g.Region != "" {
		return fmt.Errorf("only host keys are bound to an instance (role %s)", g.Role)
	}
	for _, a := range g.Applications {
		app, group, hasGroup := strings.Cut(a, "/")
		if !namePattern.MatchString(app) || (hasGroup && !namePattern.MatchString(group)) {
			return fmt.Errorf("invalid application scope %q: use APPLICATION or APPLICATION/GROUP (names may use * and ?)", a)
		}
	}
	for _, r := range g.Regions {
		if !regionPattern.MatchString(r) {
			return fmt.Errorf("invalid region %q", r)
		}
	}
	return nil
}

// Narrowed reports whether the key is limited to some applications or
// regions.
func (g Grant) Narrowed() bool { return len(g.Applications) > 0 || len(g.Regions) > 0 }

// String describes the grant for listings.
func (g Grant) String() string {
	var parts []string
	if g.Role == Host {
		return fmt.Sprintf("instance %s in %s", g.Instance, g.Region)
	}
	if len(g.Applications) > 0 {
		parts = append(parts, "applications "+strings.Join(g.Applications, ","))
	}
	if len(g.Regions) > 0 {
		parts = append(parts, "regions "+strings.Join(g.Regions, ","))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, "; ")
}

// Resource is what a CodeDeploy operation acts on, for narrowing: an
// application (Group empty), a deployment group, or a deployment config.
type Resource struct {
	App, Group, Config string
}

// ARN is the resource's ARN in an account and region (deployment groups
// and applications as AWS writes them).
func (r Resource) ARN(account, region string) string {
	base := "arn:aws:codedeploy:" + region + ":" + account + ":"
	switch {
	case r.Config != "":
		return base + "deploymentconfig:" + r.Config
	case r.Group != "":
		return base + "deploymentgroup:" + r.App + "/" + r.Group
	case r.App != "":
		return base + "application:" + r.App
	}
	return base + "*"
}

// Request is one call to authorize.
type Request struct {
	Service   Service
	Op        string
	Principal string // the key's ARN
	Account   string // the key's account
	Region    string // the signed region
	// Resources are what a CodeDeploy operation acts on (Resolve). An
	// operation with none acts on the account as a whole.
	Resources []Resource
	// Target is the admin operation's resource ARN (an IAM user).
	Target string
	// Instance is the registered on-premises instance whose IAM ARN is the
	// caller's principal in (Account, Region), "" if none (Agent only).
	Instance string
}

// Denied is a refusal, worded as AWS words AccessDeniedException.
type Denied struct {
	Principal, Action, Resource, Reason string
}

func (d *Denied) Error() string {
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s because %s",
		d.Principal, d.Action, d.Resource, d.Reason)
}

// action is the IAM-style action name of an operation.
func (r Request) action() string {
	switch r.Service {
	case AdminAPI:
		return "iam:" + r.Op
	case Agent:
		return "codedeploy-commands-secure:" + r.Op
	}
	return "codedeploy:" + r.Op
}

func (r Request) deny(resource, reason string) *Denied {
	return &Denied{Principal: r.Principal, Action: r.action(), Resource: resource, Reason: reason}
}

// IsRead reports whether a CodeDeploy operation only reads.
func IsRead(op string) bool {
	return strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") || strings.HasPrefix(op, "BatchGet")
}

// Authorize returns nil when g allows req, else a *Denied.
func Authorize(g Grant, req Request) error {
	noPolicy := "no identity-based policy allows the " + req.action() + " action"
	acctARN := "arn:aws:codedeploy:" + req.Region + ":" + req.Account + ":*"
	switch req.Service {
	case Agent:
		res := "arn:aws:codedeploy:" + req.Region + ":" + req.Account + ":instance/" + g.Instance
		switch {
		case g.Role != Host:
			return req.deny("*", noPolicy+" (role "+string(g.Role)+"; the agent protocol takes a host key)")
		case req.Region != g.Region:
			return req.deny(res, "the key is bound to region "+g.Region)
		case req.Instance != g.Instance:
			return req.deny(res, "the instance is not registered with this key")
		}
		return nil
	case AdminAPI:
		target := req.Target
		if target == "" {
			target = "*"
		}
		if g.Role != Admin || g.Narrowed() {
			return req.deny(target, noPolicy+" (access keys need an admin key without application or region limits)")
		}
		return nil
	}
	switch g.Role {
	case Admin, Deployer:
	case ReadOnly:
		if !IsRead(req.Op) {
			return req.deny(firstARN(req), noPolicy+" (role read-only)")
		}
	default:
		return req.deny(firstARN(req), noPolicy+" (role "+string(g.Role)+")")
	}
	if len(g.Regions) > 0 && !slices.Contains(g.Regions, req.Region) {
		return req.deny(acctARN, "the key is limited to regions "+strings.Join(g.Regions, ","))
	}
	if len(g.Applications) == 0 {
		return nil
	}
	if len(req.Resources) == 0 {
		return req.deny(acctARN, "the key is limited to applications "+strings.Join(g.Applications, ","))
	}
	for _, r := range req.Resources {
		if !g.allows(r, IsRead(req.Op)) {
			return req.deny(r.ARN(req.Account, req.Region), "the key is limited to applications "+strings.Join(g.Applications, ","))
		}
	}
	return nil
}

func firstARN(req Request) string {
	if len(req.Resources) > 0 {
		return req.Resources[0].ARN(req.Account, req.Region)
	}
	return "arn:aws:codedeploy:" + req.Region + ":" + req.Account + ":*"
}

// allows reports whether an application-narrowed grant reaches r. An
// application entry reaches the application, its groups and deployments;
// a group entry reaches the group and its deployments, and lets the
// application be read. Deployment configs are shared by the account: a
// narrowed key reads them but cannot change them.
func (g Grant) allows(r Resource, read bool) bool {
	if r.Config != "" {
		return read
	}
	for _, pat := range g.Applications {
		pa, pg, hasGroup := strings.Cut(pat, "/")
		if ok, _ := path.Match(pa, r.App); !ok {
			continue
		}
		if !hasGroup {
			return true
		}
		if r.Group == "" {
			if read {
				return true
			}
			continue
		}
		if ok, _ := path.Match(pg, r.Group); ok {
			return true
		}
	}
	return false
}
