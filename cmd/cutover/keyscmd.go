package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/store"
)

// grantOptions are the flags declaring a new key's powers.
type grantOptions struct {
	role, applications, regions, instance, region *string
}

func grantFlags(fs *flag.FlagSet) grantOptions {
	return grantOptions{
		role:         fs.String("role", "", "admin, deployer, read-only or host (required)"),
		applications: fs.String("applications", "", "limit the key to these applications or APPLICATION/GROUP (comma-separated, * and ? allowed)"),
		regions:      fs.String("regions", "", "limit the key to these regions (comma-separated)"),
		instance:     fs.String("instance", "", "--role host: the on-premises instance the key is bound to"),
		region:       fs.String("region", "", "--role host: the region of that instance"),
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (o grantOptions) grant() (access.Grant, error) {
	if *o.role == "" {
		return access.Grant{}, fmt.Errorf("keys create: --role is required (admin, deployer, read-only or host)")
	}
	role, err := access.ParseRole(*o.role)
	if err != nil {
		return access.Grant{}, err
	}
	g := access.Grant{Role: role, Applications: splitList(*o.applications), Regions: splitList(*o.regions), Instance: *o.instance, Region: *o.region}
	return g, g.Validate()
}

func listKeys(w io.Writer, list []keys.Key) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY ID\tACCOUNT\tARN\tROLE\tSCOPE\tCREATED\tSTATUS")
	for _, k := range list {
		status := "active"
		if k.Revoked {
			status = "revoked"
		}
		role, scope := string(k.Role), k.Grant.String()
		if role == "" {
			role, scope = "none", "(given at the next server start)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Account, k.Arn, role, scope, k.Created.UTC().Format(time.RFC3339), status)
	}
	return tw.Flush()
}

// auditLocal records a change made with the offline tools, which sign
// nothing: the operator is the local user.
func auditLocal(ctx context.Context, st store.Store, op string, resources []string, opErr error) {
	who := "local"
	if u, err := user.Current(); err == nil {
		who = "local:" + u.Username
	}
	e := audit.Entry{Principal: who, Operation: "cutover-admin:" + op, Resources: resources, Source: "cli", Outcome: audit.Success}
	if opErr != nil {
		e.Outcome, e.Message = "Error", opErr.Error()
	}
	if err := audit.Record(ctx, st, e); err != nil {
		fmt.Fprintln(os.Stderr, "cutover: audit record lost:", err)
	}
}
