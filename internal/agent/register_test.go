package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestRegister(t *testing.T) {
	var mu sync.Mutex
	var targets []string
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, "Credential=AKIDADMIN/") || !strings.Contains(auth, "/us-east-1/codedeploy/aws4_request") {
			t.Errorf("%s: Authorization = %q", target, auth)
		}
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		mu.Lock()
		targets, bodies = append(targets, target), append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if target == "CodeDeploy_20141006.GetOnPremisesInstance" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"InstanceNotRegisteredException","message":"not registered"}`)
			return
		}
		if target == "CutoverAdmin_20261122.CreateAccessKey" {
			io.WriteString(w, `{"AccessKeyId":"AKIDHOST","SecretAccessKey":"hostsecret","Arn":"arn:aws:iam::111122223333:user/web-01"}`)
			return
		}
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)

	got, err := Register(context.Background(), RegisterRequest{
		Endpoint:         srv.URL,
		Region:           "us-east-1",
		AdminCredentials: credentials.NewStaticCredentialsProvider("AKIDADMIN", "adminsecret", ""),
		InstanceName:     "web-01",
		Tags:             map[string]string{"role": "web", "env": "prod"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := OnPremConfig{IAMUserARN: "arn:aws:iam::111122223333:user/web-01", AWSAccessKeyID: "AKIDHOST", AWSSecretAccessKey: "hostsecret", Region: "us-east-1", CutoverEndpoint: srv.URL}
	if got != want {
		t.Fatalf("config = %+v, want %+v", got, want)
	}
	wantTargets := []string{"CodeDeploy_20141006.GetOnPremisesInstance", "CutoverAdmin_20261122.CreateAccessKey", "CodeDeploy_20141006.RegisterOnPremisesInstance", "CodeDeploy_20141006.AddTagsToOnPremisesInstances"}
	if strings.Join(targets, ",") != strings.Join(wantTargets, ",") {
		t.Fatalf("targets = %v", targets)
	}
	if bodies[1]["UserName"] != "web-01" || bodies[1]["Role"] != "host" || bodies[1]["InstanceName"] != "web-01" {
		t.Errorf("CreateAccessKey body = %v", bodies[1])
	}
	if bodies[2]["instanceName"] != "web-01" || bodies[2]["iamUserArn"] != want.IAMUserARN {
		t.Errorf("RegisterOnPremisesInstance body = %v", bodies[2])
	}
	tags, _ := json.Marshal(bodies[3]["tags"])
	if string(tags) != `[{"Key":"env","Value":"prod"},{"Key":"role","Value":"web"}]` {
		t.Errorf("tags = %s", tags)
	}
}
