package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/model/modelcheck"
	"github.com/cutoverhq/cutover/internal/model/modeltest"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// FuzzServe sends arbitrary (operation, body) pairs, correctly signed,
// through the server's full HTTP handler and checks the protocol invariants:
// never a 5xx, always a request ID, every error a JSON object with a
// __type, and no request taking more than 5 seconds.
func FuzzServe(f *testing.F) {
	for _, op := range slices.Sorted(maps.Keys(cd.Operations)) {
		body, err := minimalInput(op)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(op, body)
	}
	for _, seed := range []struct{ op, body string }{
		{"CreateApplication", `{"applicationName":"fuzz","computePlatform":"Lambda","tags":[{"Key":"k","Value":"v"}]}`},
		{"CreateDeploymentConfig", `{"deploymentConfigName":"c","computePlatform":"ECS","trafficRoutingConfig":{"type":"TimeBasedLinear","timeBasedLinear":{"linearPercentage":10,"linearInterval":1}}}`},
		{"CreateDeploymentConfig", `{"deploymentConfigName":"z","minimumHealthyHosts":{"type":"HOST_COUNT","value":1},"zonalConfig":{"minimumHealthyHostsPerZone":{"type":"FLEET_PERCENT"}}}`},
		{"CreateDeploymentGroup", `{"applicationName":"fuzz","deploymentGroupName":"g","serviceRoleArn":"arn:aws:iam::000000000000:role/r","onPremisesTagSet":{"onPremisesTagSetList":[[{"Key":"k","Type":"KEY_ONLY"}]]}}`},
		{"TagResource", `{"ResourceArn":"arn:aws:codedeploy:us-east-1:000000000000:application:fuzz","Tags":[{"Key":"a"}]}`},
		{"ListApplications", `{"nextToken":"eyJvIjoiTGlzdEFwcGxpY2F0aW9ucyIsImEiOiJ6In0.AAAAAAAAAAAAAAAAAAAAAA"}`},
		{"ListDeployments", `{"createTimeRange":{"start":1e300,"end":-1e300}}`},
		{"RegisterOnPremisesInstance", `{"instanceName":"h","iamSessionArn":"arn:aws:sts::000000000000:assumed-role/r/s"}`},
		{"GetApplication", `{"applicationName":"\u0000\ud800"}`},
		{"GetApplication", `[]`},
		{"GetApplication", `null`},
		{"GetApplication", `{"applicationName":1}`},
		{"GetApplication", `{`},
		{"GetApplication", "\xff\xfe"},
		{"BatchGetApplications", `{"applicationNames":[` + strings.Repeat(`"a",`, 200) + `"a"]}`},
		{"NoSuchOperation", `{}`},
		{"", ``},
		{"List.Applications", `{}`},
	} {
		f.Add(seed.op, []byte(seed.body))
	}

	env := servertest.Start(f)
	h := env.Server.Handler()
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: env.AccessKey, SecretAccessKey: env.SecretKey}

	f.Fuzz(func(t *testing.T, op string, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://cutover.test/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "CodeDeploy_20141006."+op)
		sum := sha256.Sum256(body)
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "codedeploy", env.Region, time.Now()); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s %q: took %v", op, body, d)
		}
		res := w.Result()
		out := w.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %q: status %d: %s", op, body, res.StatusCode, out)
		}
		if id := res.Header.Get("x-amzn-RequestId"); id == "" {
			t.Fatalf("%s %q: no x-amzn-RequestId", op, body)
		}
		if res.StatusCode == http.StatusOK {
			if len(out) > 0 && !json.Valid(out) {
				t.Fatalf("%s %q: 200 with a body that is not JSON: %q", op, body, out)
			}
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(out, &e); err != nil || e.Type == "" {
			t.Fatalf("%s %q: status %d with error body %q", op, body, res.StatusCode, out)
		}
	})
}

// minimalInput builds the smallest body that passes the model's validation
// for op.
func minimalInput(op string) ([]byte, error) {
	return modeltest.MinimalInput(reflect.TypeOf(cd.NewInput(op)), func(body []byte) *modelcheck.Violation {
		_, err := cd.Dispatch(context.Background(), cd.Unimplemented{Err: func(string) error { return nil }}, op, body)
		var vf *modelcheck.ValidationFailure
		if errors.As(err, &vf) {
			return &vf.Violation
		}
		return nil
	})
}
