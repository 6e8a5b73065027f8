package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// BatchGetDeploymentGroups reads larger batches with one range scan of
// the application's groups, bounded, and reads names beyond the scan one
// by one: every path must answer the same as GetDeploymentGroup.
func TestBatchGetDeploymentGroupsPaths(t *testing.T) {
	env := servertest.Start(t)
	c := env.Client
	ctx := context.Background()
	createApp(t, c, "web", "")
	createApp(t, c, "web-2", "") // its keys sort next to web's
	createApp(t, c, "small", "")
	ids := map[string]string{}
	for app, n := range map[string]int{"web": 40, "web-2": 3, "small": 5} {
		for i := range n {
			name := fmt.Sprintf("g%02d", i)
			out, err := c.CreateDeploymentGroup(ctx, groupInput(app, name))
			if err != nil {
				t.Fatal(err)
			}
			ids[app+"/"+name] = aws.ToString(out.DeploymentGroupId)
		}
	}
	for _, tc := range []struct {
		name, app string
		names     []string
		missing   []string
	}{
		{"few, by reads", "web", []string{"g01", "nope"}, []string{"nope"}},
		{"scan covers all", "web", []string{"g03", "g00", "g03", "g07", "g02"}, nil},
		{"beyond the scan", "web", []string{"g39", "g00", "g35", "zz", "g38"}, []string{"zz"}},
		{"complete scan, missing", "small", []string{"g04", "x1", "g00", "x2"}, []string{"x1", "x2"}},
		{"neighbour app not mixed in", "web-2", []string{"g00", "g01", "g02", "g05"}, []string{"g05"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String(tc.app), DeploymentGroupNames: tc.names})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, n := range tc.names {
				if !slices.Contains(tc.missing, n) && !slices.Contains(want, n) {
					want = append(want, n)
				}
			}
			var got []string
			for _, g := range out.DeploymentGroupsInfo {
				n := aws.ToString(g.DeploymentGroupName)
				got = append(got, n)
				if aws.ToString(g.ApplicationName) != tc.app || aws.ToString(g.DeploymentGroupId) != ids[tc.app+"/"+n] {
					t.Errorf("group %s: application %s id %s, want %s %s", n, aws.ToString(g.ApplicationName), aws.ToString(g.DeploymentGroupId), tc.app, ids[tc.app+"/"+n])
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("groups %v, want %v", got, want)
			}
			msg := aws.ToString(out.ErrorMessage)
			if len(tc.missing) == 0 && msg != "" {
				t.Errorf("error message %q with nothing missing", msg)
			}
			for _, m := range tc.missing {
				if !strings.Contains(msg, m) {
					t.Errorf("error message %q does not name %s", msg, m)
				}
			}
		})
	}
}
