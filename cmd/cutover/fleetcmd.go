package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/server"
)

// runFleet prints the instances a deployment group deploys to now. After a
// blue/green deployment that is the replacement fleet, which
// GetDeploymentGroup does not show (its tag filters stay as written, as on
// AWS): see deploy.GroupFleet.
func runFleet(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("fleet")
	endpoint := s.fs.String("endpoint", os.Getenv("AWS_ENDPOINT_URL"), "Cutover server URL")
	caFile := s.fs.String("ca-file", "", "PEM CA certificate to trust for the server")
	asJSON := s.fs.Bool("json", false, "print the answer as JSON")
	s.args = "APPLICATION/DEPLOYMENT_GROUP"
	if err := s.parse(args); err != nil {
		return err
	}
	if len(s.pos) != 1 {
		return errors.New("fleet needs one APPLICATION/DEPLOYMENT_GROUP")
	}
	app, group, ok := strings.Cut(s.pos[0], "/")
	if !ok || app == "" || group == "" {
		return fmt.Errorf("fleet: %q is not APPLICATION/DEPLOYMENT_GROUP", s.pos[0])
	}
	if *endpoint == "" {
		return errors.New("fleet needs --endpoint (or AWS_ENDPOINT_URL)")
	}
	creds, ok := envCredentials()
	if !ok {
		return errors.New("fleet needs credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	hc, err := httpClient(*caFile, *endpoint)
	if err != nil {
		return err
	}
	c := &protocol.Client{Endpoint: *endpoint, Region: envRegion(), Credentials: creds, HTTPClient: hc,
		TargetPrefix: server.PrefixAdmin, SigningName: server.SigningCodeDeploy}
	in := map[string]string{"applicationName": app, "deploymentGroupName": group}
	var f deploy.GroupFleet
	if err := c.Call(ctx, "GetDeploymentGroupFleet", in, &f); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "DEPLOYMENT GROUP\t%s/%s\n", f.ApplicationName, f.DeploymentGroupName)
	switch f.Source {
	case deploy.FleetFromBlueGreen:
		fmt.Fprintf(w, "SELECTED BY\tthe last successful blue/green deployment (its replacement instances; the group's tag filters no longer apply)\n")
	default:
		fmt.Fprintf(w, "SELECTED BY\tthe group's on-premises tag filters or tag set\n")
	}
	fmt.Fprintf(w, "INSTANCES\t%s\n", listOrNone(f.Instances))
	if len(f.Retired) > 0 {
		fmt.Fprintf(w, "RETIRED\t%s\n", strings.Join(f.Retired, " "))
	}
	return w.Flush()
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, " ")
}
