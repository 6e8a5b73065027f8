package clitest

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/servertest"
)

// A boto3 client whose request body is replaced just before botocore signs
// it: SDKs cannot send a wrongly cased member, so this is the closest a
// real client gets to what a hand-written one sends.
const jsonCaseScript = `
import json, sys, boto3, botocore

cd = boto3.client("codedeploy")
cd.create_application(applicationName="py-case")

def call(body):
    def swap(request, **kwargs):
        request.data = body.encode()
    cd.meta.events.register_first("before-sign.codedeploy.GetApplication", swap)
    try:
        r = cd.get_application(applicationName="placeholder")
        return {"name": r["application"]["applicationName"]}
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
    finally:
        cd.meta.events.unregister("before-sign.codedeploy.GetApplication", swap)

out = {}
for name, body in json.load(sys.stdin).items():
    out[name] = call(body)
json.dump(out, sys.stdout)
`

func TestBoto3JSONMemberCase(t *testing.T) {
	py := python3WithBoto3(t)
	type result struct{ Name, Code, Message string }
	cases := []struct {
		name, body string
		want       result
	}{
		{"exact", `{"applicationName":"py-case"}`, result{Name: "py-case"}},
		{"wrong case is unknown", `{"ApplicationName":"py-case"}`, result{Code: "ApplicationNameRequiredException"}},
		{"right after wrong", `{"ApplicationName":"nope","applicationName":"py-case"}`, result{Name: "py-case"}},
		{"wrong after right", `{"applicationName":"py-case","APPLICATIONNAME":"nope"}`, result{Name: "py-case"}},
		{"wrong type", `{"applicationName":42}`, result{Code: "SerializationException",
			Message: "Invalid value for member 'applicationName': expected a string, found the number 42"}},
		{"not an object", `["py-case"]`, result{Code: "SerializationException",
			Message: "Malformed request body: expected a structure (JSON object), found a list"}},
	}
	bodies := map[string]string{}
	for _, c := range cases {
		bodies[c.name] = c.body
	}
	in, _ := json.Marshal(bodies)

	env := servertest.Start(t)
	cmd := exec.Command(py, "-c", jsonCaseScript)
	cmd.Env = toolEnv(t, env)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3: %v\n%s", err, stderr.String())
	}
	var got map[string]result
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", stdout.String(), err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := got[c.name]
			if c.want.Message == "" {
				g.Message = ""
			}
			if g != c.want {
				t.Errorf("body %s: got %+v, want %+v", c.body, got[c.name], c.want)
			}
			if strings.Contains(got[c.name].Message, "Go ") || strings.Contains(got[c.name].Message, "struct field") {
				t.Errorf("message exposes Go internals: %q", got[c.name].Message)
			}
		})
	}
}
