package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/store/sqlite"
)

// BatchGetDeploymentGroups keeps decoded groups between requests: a
// change through the API, and one written by a second store handle (as
// the CLI writes, from another process), must show on the next BatchGet.
func TestBatchGetDeploymentGroupsSeesWrites(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	var names []string
	for i := range 6 { // enough for the range-scan path
		name := fmt.Sprintf("g%02d", i)
		names = append(names, name)
		if _, err := c.CreateDeploymentGroup(ctx, groupInput("web", name)); err != nil {
			t.Fatal(err)
		}
	}
	role := func(name string) string {
		t.Helper()
		out, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String("web"), DeploymentGroupNames: names})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.DeploymentGroupsInfo {
			if aws.ToString(g.DeploymentGroupName) == name {
				return aws.ToString(g.ServiceRoleArn)
			}
		}
		t.Fatalf("group %s not returned", name)
		return ""
	}
	first := role("g02") // fills the cache
	const viaAPI = "arn:aws:iam::000000000000:role/changed-by-api"
	if _, err := c.UpdateDeploymentGroup(ctx, &codedeploy.UpdateDeploymentGroupInput{
		ApplicationName: aws.String("web"), CurrentDeploymentGroupName: aws.String("g02"), ServiceRoleArn: aws.String(viaAPI),
	}); err != nil {
		t.Fatal(err)
	}
	if got := role("g02"); got != viaAPI || got == first {
		t.Fatalf("after UpdateDeploymentGroup: service role %q, want %q", got, viaAPI)
	}

	other, err := sqlite.Open(ctx, filepath.Join(env.Config.DataDir, "cutover.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const viaOther = "arn:aws:iam::000000000000:role/changed-by-other-handle"
	err = other.Update(ctx, func(tx store.Tx) error {
		g, err := api.LoadGroup(ctx, tx, "000000000000", env.Region, "web", "g04")
		if err != nil {
			return err
		}
		g.ServiceRoleArn = aws.String(viaOther)
		return api.SaveGroup(ctx, tx, "000000000000", env.Region, g)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := role("g04"); got != viaOther {
		t.Fatalf("after a write by another store handle: service role %q, want %q", got, viaOther)
	}
}

// GetApplication reuses results while nothing was committed: a rename,
// and a record written by a second store handle, show at once.
func TestGetApplicationSeesWrites(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	get := func(name string) (*codedeploy.GetApplicationOutput, error) {
		return c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String(name)})
	}
	if _, err := get("web"); err != nil { // fills the cache
		t.Fatal(err)
	}
	if _, err := c.UpdateApplication(ctx, &codedeploy.UpdateApplicationInput{ApplicationName: aws.String("web"), NewApplicationName: aws.String("site")}); err != nil {
		t.Fatal(err)
	}
	if _, err := get("web"); err == nil || !strings.Contains(err.Error(), "ApplicationDoesNotExistException") {
		t.Fatalf("renamed application still served: %v", err)
	}
	if out, err := get("site"); err != nil || aws.ToString(out.Application.ApplicationName) != "site" {
		t.Fatalf("new name: %v", err)
	}

	other, err := sqlite.Open(ctx, filepath.Join(env.Config.DataDir, "cutover.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Update(ctx, func(tx store.Tx) error {
		ok, err := tx.Delete(ctx, "app", "000000000000/"+env.Region+"/site")
		if err == nil && !ok {
			err = fmt.Errorf("application record not found")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := get("site"); err == nil || !strings.Contains(err.Error(), "ApplicationDoesNotExistException") {
		t.Fatalf("application deleted by another handle still served: %v", err)
	}
}
