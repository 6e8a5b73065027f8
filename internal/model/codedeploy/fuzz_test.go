package codedeploy

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
)

func FuzzDispatch(f *testing.F) {
	for _, op := range slices.Sorted(maps.Keys(Operations)) {
		body, err := minimalInput(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(op, body)
	}
	f.Add("CreateDeployment", []byte(`{"applicationName":"a","revision":{"s3Location":{"bundleType":"tar"}},"fileExistsBehavior":"RETAIN"}`))
	f.Add("ListDeploymentTargets", []byte(`{"deploymentId":"d","targetFilters":{"TargetStatus":["Failed"]}}`))
	f.Add("GetDeployment", []byte(`[]`))
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		_, err := Dispatch(context.Background(), newFake(), op, body)
		var de *DecodeError
		var vf *ValidationFailure
		switch {
		case err == nil, errors.Is(err, errFake):
		case errors.Is(err, ErrUnknownOperation):
			if _, ok := Operations[op]; ok {
				t.Fatalf("known op %q reported unknown", op)
			}
		case errors.As(err, &de):
		case errors.As(err, &vf):
			if vf.Op != op || vf.Violation.Message == "" {
				t.Fatalf("bad ValidationFailure %+v", vf)
			}
			if ex := ExceptionFor(op, vf.Violation); ex != "ValidationException" && !slices.Contains(Operations[op].Errors, ex) {
				t.Fatalf("ExceptionFor = %s, not in %s errors", ex, op)
			}
		default:
			t.Fatalf("Dispatch(%q, %q): undocumented error %T %v", op, body, err, err)
		}
	})
}
