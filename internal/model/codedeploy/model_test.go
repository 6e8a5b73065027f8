package codedeploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/model/modelcheck"
	"github.com/cutoverhq/cutover/internal/model/modeltest"
)

const getDeploymentOutput = `{
  "deploymentInfo": {
    "applicationName": "WordPress_App",
    "deploymentGroupName": "WordPress_DG",
    "deploymentConfigName": "CodeDeployDefault.OneAtATime",
    "deploymentId": "d-A1B2C3123",
    "revision": {
      "revisionType": "S3",
      "s3Location": {"bucket": "amzn-s3-demo-bucket", "key": "WordPressApp.zip", "bundleType": "zip", "eTag": "7c5b1a"}
    },
    "status": "Succeeded",
    "createTime": 1.446744188711E9,
    "startTime": 1446744189.5,
    "completeTime": 1446744190,
    "deploymentOverview": {"Pending": 0, "InProgress": 0, "Succeeded": 1, "Failed": 0, "Skipped": 0, "Ready": 0},
    "creator": "user",
    "ignoreApplicationStopFailures": false,
    "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE"]},
    "updateOutdatedInstancesOnly": false,
    "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
    "targetInstances": {"tagFilters": [{"Key": "Name", "Value": "web", "Type": "KEY_AND_VALUE"}]},
    "instanceTerminationWaitTimeStarted": false,
    "fileExistsBehavior": "DISALLOW",
    "deploymentStatusMessages": [],
    "computePlatform": "Server"
  }
}`

func TestRoundTrip(t *testing.T) {
	var out GetDeploymentOutput
	dec := json.NewDecoder(strings.NewReader(getDeploymentOutput))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if got := *out.DeploymentInfo.Revision.S3Location.BundleType; got != BundleTypeZip {
		t.Errorf("bundleType = %q", got)
	}
	if got := out.DeploymentInfo.CreateTime.UnixMilli(); got != 1446744188711 {
		t.Errorf("createTime = %d ms", got)
	}
	b, err := json.Marshal(&out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(b, "eE") && bytes.Contains(b, []byte("E9")) {
		t.Errorf("re-encoded timestamp uses exponent: %s", b)
	}
	var want, got any
	if err := json.Unmarshal([]byte(getDeploymentOutput), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// An empty list survives the round trip as [] (omitzero), as AWS sends it.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip mismatch:\n got %s\nwant %s", b, getDeploymentOutput)
	}
}

func TestEnums(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{DeploymentStatusInProgress, "InProgress"},
		{BundleTypeYAML, "YAML"},
		{ComputePlatformECS, "ECS"},
		{ComputePlatformServer, "Server"},
		{FileExistsBehaviorOVERWRITE, "OVERWRITE"}, {DeploymentReadyActionCONTINUEDEPLOYMENT, "CONTINUE_DEPLOYMENT"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if !ValidDeploymentStatus("Baking") || ValidDeploymentStatus("baking") {
		t.Error("ValidDeploymentStatus is wrong")
	}
}

func TestTables(t *testing.T) {
	if len(Operations) != 47 {
		t.Errorf("len(Operations) = %d, want 47", len(Operations))
	}
	op := Operations["ListDeployments"]
	if !op.Paginated || op.InputToken != "nextToken" || op.OutputToken != "nextToken" || op.ResultKey != "deployments" {
		t.Errorf("ListDeployments pagination = %+v", op)
	}
	if !Operations["GetDeploymentInstance"].Deprecated || Operations["GetDeployment"].Deprecated {
		t.Error("Deprecated flags are wrong")
	}
	if Operations["DeleteApplication"].Output != "" {
		t.Error("DeleteApplication has no output")
	}
	if !slicesSorted(ExceptionNames) || len(ExceptionNames) == 0 {
		t.Error("ExceptionNames not sorted")
	}
	for name, op := range Operations {
		if name != op.Name || NewInput(name) == nil {
			t.Errorf("%s: bad entry %+v", name, op)
		}
		for _, e := range op.Errors {
			if !contains(ExceptionNames, e) {
				t.Errorf("%s: error %s is not an exception shape", name, e)
			}
		}
	}
	if IsFault("ThrottlingException") {
		t.Error("ThrottlingException is not a fault")
	}
}

func slicesSorted(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   interface {
			Validate(string) *modelcheck.Violation
		}
		path, member, shape string
		kind                modelcheck.ViolationKind
	}{
		{"required", &CreateApplicationInput{}, "applicationName", "applicationName", "ApplicationName", modelcheck.Required},
		{"empty below min", &CreateApplicationInput{ApplicationName: new("")}, "applicationName", "applicationName", "ApplicationName", modelcheck.Length},
		{"too long", &CreateApplicationInput{ApplicationName: new(strings.Repeat("é", 101))}, "applicationName", "applicationName", "ApplicationName", modelcheck.Length},
		{"list element enum", &ListDeploymentsInput{IncludeOnlyStatuses: []string{"Created", "Bogus"}}, "includeOnlyStatuses[1]", "includeOnlyStatuses", "DeploymentStatus", modelcheck.Enum},
		{"nested enum", &CreateDeploymentInput{ApplicationName: new("a"), Revision: &RevisionLocation{S3Location: &S3Location{BundleType: new("Foo")}}},
			"revision.s3Location.bundleType", "bundleType", "BundleType", modelcheck.Enum},
		{"struct in list", &CreateDeploymentGroupInput{ApplicationName: new("a"), DeploymentGroupName: new("g"), ServiceRoleArn: new("r"),
			Ec2TagFilters: []EC2TagFilter{{Type: new("KEY_ONLY")}, {}, {Type: new("nope")}}}, "ec2TagFilters[2].Type", "Type", "EC2TagFilterType", modelcheck.Enum},
		{"map key enum", &ListDeploymentTargetsInput{DeploymentId: new("d"), TargetFilters: map[string][]string{"TargetStatus": nil, "Bogus": nil}},
			"targetFilters", "targetFilters", "TargetFilterName", modelcheck.Enum},
	}
	for _, tt := range tests {
		v := tt.in.Validate("")
		if v == nil {
			t.Errorf("%s: no violation", tt.name)
			continue
		}
		if v.Path != tt.path || v.Member != tt.member || v.Shape != tt.shape || v.Kind != tt.kind {
			t.Errorf("%s: got %+v", tt.name, *v)
		}
	}
	// The first violation in member order wins.
	v := (&CreateDeploymentInput{FileExistsBehavior: new("x")}).Validate("")
	if v == nil || v.Member != "applicationName" {
		t.Errorf("order: got %+v", v)
	}
	want := "1 validation error detected: Value 'Foo' at 'revision.s3Location.bundleType' failed to satisfy constraint: Member must satisfy enum value set: [tar, tgz, zip, YAML, JSON]"
	v = (&CreateDeploymentInput{ApplicationName: new("a"), Revision: &RevisionLocation{S3Location: &S3Location{BundleType: new("Foo")}}}).Validate("")
	if v == nil || v.Message != want {
		t.Errorf("message: got %+v", v)
	}
	if v := (&CreateDeploymentInput{ApplicationName: new("a")}).Validate(""); v != nil {
		t.Errorf("valid input: %+v", v)
	}
}

func TestExceptionFor(t *testing.T) {
	tests := []struct {
		op, body, want string
	}{
		{"CreateApplication", `{}`, "ApplicationNameRequiredException"},
		{"ListDeployments", `{"includeOnlyStatuses":["Bogus"]}`, "InvalidDeploymentStatusException"},
		{"ContinueDeployment", `{"deploymentWaitType":"Forever"}`, "InvalidDeploymentWaitTypeException"},
		{"CreateDeployment", `{"applicationName":"a","fileExistsBehavior":"CLOBBER"}`, "InvalidFileExistsBehaviorException"},
		{"CreateApplication", `{"applicationName":"a","computePlatform":"Mainframe"}`, "InvalidComputePlatformException"},
		// Neither Type, Ec2TagFilters nor EC2TagFilterType has an exception.
		{"CreateDeploymentGroup", `{"applicationName":"a","deploymentGroupName":"g","serviceRoleArn":"r","ec2TagFilters":[{"Type":"x"}]}`, "ValidationException"},
	}
	for _, tt := range tests {
		_, err := Dispatch(context.Background(), fake{}, tt.op, []byte(tt.body))
		var vf *ValidationFailure
		if !errors.As(err, &vf) {
			t.Errorf("%s %s: err = %v, want ValidationFailure", tt.op, tt.body, err)
			continue
		}
		if got := ExceptionFor(tt.op, vf.Violation); got != tt.want {
			t.Errorf("%s %s: ExceptionFor(%+v) = %s, want %s", tt.op, tt.body, vf.Violation, got, tt.want)
		}
	}
}

var errFake = errors.New("fake: not implemented")

type fake struct{ Unimplemented }

func (fake) GetApplication(_ context.Context, in *GetApplicationInput) (*GetApplicationOutput, error) {
	return &GetApplicationOutput{Application: &ApplicationInfo{ApplicationName: in.ApplicationName}}, nil
}

func (fake) DeleteApplication(context.Context, *DeleteApplicationInput) error { return nil }

func newFake() fake { return fake{Unimplemented{Err: func(string) error { return errFake }}} }

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	svc := newFake()

	if _, err := Dispatch(ctx, svc, "LaunchRockets", nil); !errors.Is(err, ErrUnknownOperation) {
		t.Errorf("unknown op: err = %v", err)
	}
	var de *DecodeError
	if _, err := Dispatch(ctx, svc, "GetApplication", []byte(`{"applicationName":`)); !errors.As(err, &de) {
		t.Errorf("malformed: err = %v", err)
	}
	if _, err := Dispatch(ctx, svc, "GetApplication", []byte(`{"applicationName":42}`)); !errors.As(err, &de) {
		t.Errorf("type mismatch: err = %v", err)
	}
	// Unknown members are ignored, as AWS does.
	if _, err := Dispatch(ctx, svc, "GetDeployment", []byte(`{"deploymentId":"d","x":{"createTime":"now"}}`)); !errors.Is(err, errFake) {
		t.Errorf("unknown member: err = %v", err)
	}
	if _, err := Dispatch(ctx, svc, "RegisterApplicationRevision", []byte(`{"applicationName":"a","revision":{"revisionType":"S3","s3Location":{"bundleType":1}}}`)); !errors.As(err, &de) {
		t.Errorf("nested type mismatch: err = %v", err)
	}
	var vf *ValidationFailure
	if _, err := Dispatch(ctx, svc, "GetApplication", nil); !errors.As(err, &vf) || vf.Op != "GetApplication" || vf.Violation.Kind != modelcheck.Required {
		t.Errorf("empty body: err = %v", err)
	}
	out, err := Dispatch(ctx, svc, "GetApplication", []byte(` {"applicationName":"app"} `))
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := out.(*GetApplicationOutput); !ok || *o.Application.ApplicationName != "app" {
		t.Errorf("out = %#v", out)
	}
	out, err = Dispatch(ctx, svc, "DeleteApplication", []byte(`{"applicationName":"app"}`))
	if out != nil || err != nil {
		t.Errorf("no-output op: out = %v, err = %v", out, err)
	}
	if _, err := Dispatch(ctx, svc, "ListApplications", nil); !errors.Is(err, errFake) {
		t.Errorf("unimplemented: err = %v", err)
	}
}

// minimalInput builds the smallest body that passes validation for op.
func minimalInput(op string) ([]byte, error) {
	body, err := modeltest.MinimalInput(reflect.TypeOf(NewInput(op)), func(body []byte) *modelcheck.Violation {
		_, err := Dispatch(context.Background(), newFake(), op, body)
		var vf *ValidationFailure
		if errors.As(err, &vf) {
			return &vf.Violation
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return body, nil
}

func TestMinimalInputs(t *testing.T) {
	for op := range Operations {
		body, err := minimalInput(op)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Dispatch(context.Background(), newFake(), op, body); err != nil && !errors.Is(err, errFake) {
			t.Errorf("%s %s: %v", op, body, err)
		}
	}
}
