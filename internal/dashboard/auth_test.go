package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/audit"
	"github.com/cutoverhq/cutover/internal/servertest"
)

// uiClient is a browser-like HTTP client: a cookie jar, and the CSRF
// token the sign-in answered.
type uiClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newUIClient(t *testing.T, base string) *uiClient {
	jar, _ := cookiejar.New(nil)
	return &uiClient{t: t, base: base, hc: &http.Client{Jar: jar}}
}

func (c *uiClient) do(method, path, body string, hdr map[string]string) (int, map[string]any, *http.Response) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp
}

func (c *uiClient) login(key, secret string) int {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"accessKeyId": key, "secretAccessKey": secret})
	st, m, _ := c.do("POST", "/ui/login", string(b), nil)
	if st == http.StatusOK {
		c.csrf, _ = m["csrf"].(string)
	}
	return st
}

// TestSessionAndCSRF: actions need a session and its CSRF token; the
// cookie is HttpOnly and SameSite=Strict; signing out ends the session.
func TestSessionAndCSRF(t *testing.T) {
	env := servertest.Start(t)
	c := newUIClient(t, env.URL)
	if st, m, _ := c.do("POST", "/ui/api/ListApplications", "{}", nil); st != http.StatusUnauthorized {
		t.Fatalf("without a session: %d %v", st, m)
	}
	form := `{"accessKeyId":"` + env.AccessKey + `","secretAccessKey":"` + env.SecretKey + `"}`
	if st, _, _ := c.do("POST", "/ui/login", form, map[string]string{"Content-Type": "text/plain"}); st != http.StatusUnsupportedMediaType {
		t.Fatalf("sign-in as a cross-site form could post it: %d", st)
	}
	if st := c.login(env.AccessKey, "not the secret"); st != http.StatusForbidden {
		t.Fatalf("wrong secret: %d", st)
	}
	if st := c.login("AKIANOSUCHKEY0000000", env.SecretKey); st != http.StatusForbidden {
		t.Fatalf("unknown key: %d", st)
	}
	b, _ := json.Marshal(map[string]string{"accessKeyId": env.AccessKey, "secretAccessKey": env.SecretKey})
	st, _, resp := c.do("POST", "/ui/login", string(b), nil)
	if st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "cutover_session" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", cookie)
	}
	c.login(env.AccessKey, env.SecretKey)
	for _, tc := range []struct {
		name string
		csrf string
		want int
	}{{"no token", "", http.StatusForbidden}, {"wrong token", "x" + c.csrf, http.StatusForbidden}, {"token", c.csrf, http.StatusOK}} {
		st, m, _ := c.do("POST", "/ui/api/ListApplications", "{}", map[string]string{"X-Cutover-Csrf": tc.csrf})
		if st != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, st, m, tc.want)
		}
	}
	hdr := map[string]string{"X-Cutover-Csrf": c.csrf}
	if st, m, _ := c.do("POST", "/ui/api/DeleteApplication", `{"applicationName":"x"}`, hdr); st != http.StatusBadRequest || m["__type"] != "UnknownOperationException" {
		t.Errorf("an operation the dashboard does not call: %d %v", st, m)
	}
	if st, m, _ := c.do("POST", "/ui/api/GetDeployment", `{"deploymentId":"d-NOSUCH000"}`, hdr); st != http.StatusBadRequest || m["__type"] != "DeploymentDoesNotExistException" {
		t.Errorf("API errors pass through: %d %v", st, m)
	}
	if st, m, _ := c.do("POST", "/ui/api/GetDeployment", `{"deploymentId":`, hdr); st != http.StatusBadRequest {
		t.Errorf("malformed input: %d %v", st, m)
	}
	if st, _, _ := c.do("POST", "/ui/logout", "", hdr); st != http.StatusOK {
		t.Fatalf("sign out: %d", st)
	}
	if st, _, _ := c.do("GET", "/ui/session", "", nil); st != http.StatusUnauthorized {
		t.Errorf("session after sign-out: %d", st)
	}
	if st, _, _ := c.do("GET", "/ui/events", "", nil); st != http.StatusUnauthorized {
		t.Errorf("event stream without a session: %d", st)
	}
}

// TestKeyMayDoWhatTheAPIAllows: an on-premises instance's key, which the
// API refuses for CodeDeploy operations, can sign in but reads nothing:
// the dashboard goes through the API's own checks.
func TestKeyMayDoWhatTheAPIAllows(t *testing.T) {
	env := servertest.Start(t)
	reg, err := agent.Register(context.Background(), agent.RegisterRequest{Endpoint: env.URL, Region: env.Region,
		AdminCredentials: credentials.NewStaticCredentialsProvider(env.AccessKey, env.SecretKey, ""), InstanceName: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	c := newUIClient(t, env.URL)
	if st := c.login(reg.AWSAccessKeyID, reg.AWSSecretAccessKey); st != http.StatusOK {
		t.Fatalf("sign-in with the host key: %d", st)
	}
	hdr := map[string]string{"X-Cutover-Csrf": c.csrf}
	if st, m, _ := c.do("POST", "/ui/api/ListApplications", "{}", hdr); st != http.StatusBadRequest || m["__type"] != "AccessDeniedException" {
		t.Errorf("host key listing applications: %d %v, want AccessDeniedException", st, m)
	}
	if st, m, _ := c.do("GET", "/ui/events", "", nil); st != http.StatusBadRequest || m["__type"] != "AccessDeniedException" {
		t.Errorf("host key's event stream: %d %v", st, m)
	}
	if st, m, _ := c.do("POST", "/ui/api/GetDeploymentGroupFleet", `{"applicationName":"a","deploymentGroupName":"g"}`, hdr); st != http.StatusBadRequest || m["__type"] != "AccessDeniedException" {
		t.Errorf("host key reading a group's fleet: %d %v", st, m)
	}
	if st, m, _ := c.do("GET", "/ui/logs?deployment=d-NOSUCH000", "", nil); st != http.StatusBadRequest || m["__type"] != "AccessDeniedException" {
		t.Errorf("host key reading logs: %d %v", st, m)
	}
	if st, m, _ := c.do("GET", "/ui/triggers?deployment=d-NOSUCH000", "", nil); st != http.StatusBadRequest || m["__type"] != "AccessDeniedException" {
		t.Errorf("host key reading trigger deliveries: %d %v", st, m)
	}
	// Revoking the key ends its sessions.
	if err := env.Server.Keys.Revoke(context.Background(), reg.AWSAccessKeyID); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := c.do("GET", "/ui/session", "", nil); st != http.StatusUnauthorized {
		t.Errorf("session of a revoked key: %d", st)
	}
	if st := c.login(reg.AWSAccessKeyID, reg.AWSSecretAccessKey); st != http.StatusForbidden {
		t.Errorf("sign-in with a revoked key: %d", st)
	}
}

// TestSecureCookieOverTLS: over TLS the session cookie is also Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	env := servertest.Start(t)
	ts := httptest.NewTLSServer(env.Server.Handler())
	t.Cleanup(ts.Close)
	c := newUIClient(t, ts.URL)
	c.hc = ts.Client()
	b, _ := json.Marshal(map[string]string{"accessKeyId": env.AccessKey, "secretAccessKey": env.SecretKey})
	st, _, resp := c.do("POST", "/ui/login", string(b), nil)
	if st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "cutover_session" && ck.Secure && ck.HttpOnly && ck.SameSite == http.SameSiteStrictMode {
			return
		}
	}
	t.Fatalf("cookies %v: want a Secure, HttpOnly, SameSite=Strict session cookie", resp.Cookies())
}

// TestActionsAuditedWithSource: an action sent through the dashboard is
// audited with the address the browser connected from, as an API call is.
func TestActionsAuditedWithSource(t *testing.T) {
	env := servertest.Start(t)
	c := newUIClient(t, env.URL)
	if st := c.login(env.AccessKey, env.SecretKey); st != http.StatusOK {
		t.Fatalf("sign-in: %d", st)
	}
	st, m, _ := c.do("POST", "/ui/api/StopDeployment", `{"deploymentId":"d-AAAAAAAAA"}`, map[string]string{"X-Cutover-Csrf": c.csrf})
	if st != http.StatusBadRequest || m["__type"] != "DeploymentDoesNotExistException" {
		t.Fatalf("StopDeployment of a missing deployment: %d %v", st, m)
	}
	entries, err := audit.List(context.Background(), env.Server.Store, audit.Filter{Operation: "codedeploy:StopDeployment"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v %v", entries, err)
	}
	if src := entries[0].Source; !strings.HasPrefix(src, "127.0.0.1:") {
		t.Errorf("dashboard action audited with source %q, want the browser's address", src)
	}
}
