package access

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		g    Grant
		ok   bool
	}{
		{"admin", Grant{Role: Admin}, true},
		{"no role", Grant{}, false},
		{"unknown role", Grant{Role: "root"}, false},
		{"deployer narrowed", Grant{Role: Deployer, Applications: []string{"web", "api/prod", "svc-*"}, Regions: []string{"eu-west-1"}}, true},
		{"three-part scope", Grant{Role: Deployer, Applications: []string{"a/b/c"}}, false},
		{"empty application", Grant{Role: ReadOnly, Applications: []string{"/prod"}}, false},
		{"bad region", Grant{Role: ReadOnly, Regions: []string{"moon"}}, false},
		{"host", Grant{Role: Host, Region: "us-east-1", Instance: "web-1"}, true},
		{"host without region", Grant{Role: Host, Instance: "web-1"}, false},
		{"host with applications", Grant{Role: Host, Region: "us-east-1", Instance: "web-1", Applications: []string{"web"}}, false},
		{"admin bound to an instance", Grant{Role: Admin, Instance: "web-1"}, false},
	}
	for _, tc := range cases {
		if err := tc.g.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestAuthorizeScopes(t *testing.T) {
	deps := map[string][2]string{"d-WEB": {"web", "prod"}, "d-API": {"api", "prod"}}
	lookup := func(_ context.Context, id string) (string, string, bool, error) {
		d, ok := deps[id]
		return d[0], d[1], ok, nil
	}
	cases := []struct {
		name    string
		g       Grant
		op      string
		region  string
		body    string
		allowed bool
	}{
		{"wildcard app", Grant{Role: Deployer, Applications: []string{"w*"}}, "DeleteApplication", "us-east-1", `{"applicationName":"web"}`, true},
		{"wildcard misses", Grant{Role: Deployer, Applications: []string{"w*"}}, "DeleteApplication", "us-east-1", `{"applicationName":"api"}`, false},
		{"group entry, group write", Grant{Role: Deployer, Applications: []string{"web/prod"}}, "UpdateDeploymentGroup", "us-east-1", `{"applicationName":"web","currentDeploymentGroupName":"prod"}`, true},
		{"group entry, rename out", Grant{Role: Deployer, Applications: []string{"web/prod"}}, "UpdateDeploymentGroup", "us-east-1", `{"applicationName":"web","currentDeploymentGroupName":"prod","newDeploymentGroupName":"dev"}`, false},
		{"group entry lists its group's deployments", Grant{Role: ReadOnly, Applications: []string{"web/prod"}}, "ListDeployments", "us-east-1", `{"applicationName":"web","deploymentGroupName":"prod"}`, true},
		{"group entry lists the app's deployments", Grant{Role: ReadOnly, Applications: []string{"web/prod"}}, "ListDeployments", "us-east-1", `{"applicationName":"web"}`, false},
		{"group wildcard lists the app's deployments", Grant{Role: ReadOnly, Applications: []string{"web/*"}}, "ListDeployments", "us-east-1", `{"applicationName":"web"}`, true},
		{"app entry lists the app's deployments", Grant{Role: ReadOnly, Applications: []string{"web"}}, "ListDeployments", "us-east-1", `{"applicationName":"web"}`, true},
		{"deployment of the app", Grant{Role: ReadOnly, Applications: []string{"web"}}, "BatchGetDeployments", "us-east-1", `{"deploymentIds":["d-WEB"]}`, true},
		{"one deployment outside", Grant{Role: ReadOnly, Applications: []string{"web"}}, "BatchGetDeployments", "us-east-1", `{"deploymentIds":["d-WEB","d-API"]}`, false},
		{"duplicate member, other spelling", Grant{Role: ReadOnly, Applications: []string{"web"}}, "GetApplication", "us-east-1", `{"applicationName":"api","ApplicationName":"web"}`, false},
		{"config read", Grant{Role: Deployer, Applications: []string{"web"}}, "GetDeploymentConfig", "us-east-1", `{"deploymentConfigName":"CodeDeployDefault.AllAtOnce"}`, true},
		{"config write", Grant{Role: Deployer, Applications: []string{"web"}}, "DeleteDeploymentConfig", "us-east-1", `{"deploymentConfigName":"mine"}`, false},
		{"account-wide op", Grant{Role: Deployer, Applications: []string{"*"}}, "ListOnPremisesInstances", "us-east-1", `{}`, false},
		{"region allowed", Grant{Role: Admin, Regions: []string{"eu-west-1"}}, "ListApplications", "eu-west-1", `{}`, true},
		{"region outside", Grant{Role: Admin, Regions: []string{"eu-west-1"}}, "ListApplications", "us-east-1", `{}`, false},
		{"not JSON", Grant{Role: Deployer, Applications: []string{"web"}}, "GetApplication", "us-east-1", `{"applicationName":`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Resolve(context.Background(), tc.op, []byte(tc.body), lookup)
			if err != nil {
				t.Fatal(err)
			}
			err = Authorize(tc.g, Request{Service: CodeDeploy, Op: tc.op, Principal: "arn:aws:iam::000000000000:user/u", Account: "000000000000", Region: tc.region, Resources: res})
			var d *Denied
			if err != nil && !errors.As(err, &d) {
				t.Fatal(err)
			}
			if (err == nil) != tc.allowed {
				t.Fatalf("allowed %v, want %v (%v)", err == nil, tc.allowed, err)
			}
			if d != nil && !strings.HasPrefix(d.Error(), "User: arn:aws:iam::000000000000:user/u is not authorized to perform: codedeploy:"+tc.op+" on resource: arn:aws:codedeploy:"+tc.region+":000000000000:") {
				t.Errorf("message %q", d.Error())
			}
		})
	}
}
