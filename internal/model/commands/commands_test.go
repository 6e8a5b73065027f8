package commands

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

func TestValidate(t *testing.T) {
	const id = "us-east-1/d-ABC/i-1/Install"
	tests := []struct {
		name                string
		in                  *PostHostCommandUpdateInput
		path, member, shape string
		kind                modelcheck.ViolationKind
	}{
		{"required", &PostHostCommandUpdateInput{}, "HostCommandIdentifier", "HostCommandIdentifier", "HostCommandIdentifier", modelcheck.Required},
		{"payload too long", &PostHostCommandUpdateInput{HostCommandIdentifier: new("h"), Diagnostics: &Envelope{Payload: new(strings.Repeat("x", 8193))}},
			"Diagnostics.Payload", "Payload", "Payload", modelcheck.Length},
		{"format empty", &PostHostCommandUpdateInput{HostCommandIdentifier: new("h"), Diagnostics: &Envelope{Format: new("")}},
			"Diagnostics.Format", "Format", "Format", modelcheck.Length},
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
	// Payload limits count code points, and the 8192 limit is inclusive.
	ok := &PostHostCommandUpdateInput{HostCommandIdentifier: new("h"), Diagnostics: &Envelope{Format: new("JSON"), Payload: new(strings.Repeat("é", 8192))}}
	if v := ok.Validate(""); v != nil {
		t.Errorf("8192 code points: %+v", v)
	}

	for _, good := range []string{id, "a/b/c/d/e"} {
		if v := (&GetDeploymentSpecificationInput{DeploymentExecutionId: new(good), HostIdentifier: new("h")}).Validate(""); v != nil {
			t.Errorf("%q: %+v", good, v)
		}
	}
	for _, bad := range []string{"a/b/c", "a//c/d", "no-slashes"} {
		v := (&GetDeploymentSpecificationInput{DeploymentExecutionId: new(bad), HostIdentifier: new("h")}).Validate("")
		if v == nil || v.Kind != modelcheck.Pattern || v.Path != "DeploymentExecutionId" {
			t.Errorf("%q: got %+v, want pattern violation", bad, v)
		}
	}
	v := (&GetDeploymentSpecificationInput{DeploymentExecutionId: new(strings.Repeat("a/", 65)), HostIdentifier: new("h")}).Validate("")
	if v == nil || v.Kind != modelcheck.Length {
		t.Errorf("130 chars: got %+v, want length violation", v)
	}
	v = (&PutHostCommandCompleteInput{HostCommandIdentifier: new("h"), CommandStatus: new("Done")}).Validate("")
	if v == nil || v.Kind != modelcheck.Enum || ExceptionFor("PutHostCommandComplete", *v) != "ValidationException" {
		t.Errorf("bad status: got %+v", v)
	}
}

var errFake = errors.New("fake")

type fake struct{ Unimplemented }

func (fake) PollHostCommand(_ context.Context, in *PollHostCommandInput) (*PollHostCommandOutput, error) {
	return &PollHostCommandOutput{HostCommand: &HostCommandInstance{HostIdentifier: in.HostIdentifier, Nonce: new(int64(7))}}, nil
}

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	svc := fake{Unimplemented{Err: func(string) error { return errFake }}}
	var de *DecodeError
	var vf *ValidationFailure
	if _, err := Dispatch(ctx, svc, "Nope", nil); !errors.Is(err, ErrUnknownOperation) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := Dispatch(ctx, svc, "PollHostCommand", []byte(`{`)); !errors.As(err, &de) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := Dispatch(ctx, svc, "PostHostCommandUpdate", []byte(`{"HostCommandIdentifier":"h","EstimatedCompletionTime":"soon"}`)); !errors.As(err, &de) {
		t.Errorf("string timestamp: %v", err)
	}
	if _, err := Dispatch(ctx, svc, "PollHostCommand", []byte(`{}`)); !errors.As(err, &vf) {
		t.Errorf("required: %v", err)
	}
	// Member names match exactly, as the official agent's SDK sends them.
	if _, err := Dispatch(ctx, svc, "PollHostCommand", []byte(`{"hostIdentifier":"arn:aws:ec2:i-1"}`)); !errors.As(err, &vf) {
		t.Errorf("wrong case: %v", err)
	}
	out, err := Dispatch(ctx, svc, "PollHostCommand", []byte(`{"HOSTIDENTIFIER":"wrong","HostIdentifier":"arn:aws:ec2:i-1","hostidentifier":"wrong"}`))
	if o, ok := out.(*PollHostCommandOutput); err != nil || !ok || *o.HostCommand.HostIdentifier != "arn:aws:ec2:i-1" {
		t.Errorf("both spellings: %#v, %v", out, err)
	}
	out, err = Dispatch(ctx, svc, "PollHostCommand", []byte(`{"HostIdentifier":"arn:aws:ec2:i-1"}`))
	if o, ok := out.(*PollHostCommandOutput); err != nil || !ok || *o.HostCommand.Nonce != 7 {
		t.Errorf("success: %#v, %v", out, err)
	}
	if _, err := Dispatch(ctx, svc, "PutHostCommandComplete", []byte(`{"HostCommandIdentifier":"h","CommandStatus":"Succeeded","EstimatedCompletionTime":1.5E9}`)); !errors.Is(err, errFake) {
		t.Errorf("unimplemented: %v", err)
	}
	if !IsFault("ServerException") || IsFault("ClientException") {
		t.Error("IsFault")
	}
}
