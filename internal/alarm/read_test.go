package alarm

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestReadHTTPAndQueryShapes(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	// A Prometheus-shaped endpoint answering a scalar, which cannot say "no alarm".
	scalar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`))
	}))
	defer scalar.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	f := File{PrometheusURL: scalar.URL, PollInterval: time.Second, Alarms: []Definition{
		{Name: "ok", HTTP: ok.URL}, {Name: "bad", HTTP: bad.URL}, {Name: "down", HTTP: closed}, {Name: "scalar", Prometheus: "1"},
	}}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	m := New(Config{File: f})
	for _, tc := range []struct {
		name           string
		firing, unread bool
	}{
		{"ok", false, false},
		{"bad", true, false},
		{"down", false, true},
		{"scalar", false, true},
		{"undefined", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := m.read(context.Background(), tc.name)
			if st.firing != tc.firing || (st.err != nil) != tc.unread {
				t.Fatalf("firing %v err %v", st.firing, st.err)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    File
		ok   bool
	}{
		{"defaults", File{Alarms: []Definition{{Name: "a", HTTP: "http://h/"}}}, true},
		{"both kinds", File{PrometheusURL: "http://p", Alarms: []Definition{{Name: "a", HTTP: "http://h/", Prometheus: "up"}}}, false},
		{"neither", File{Alarms: []Definition{{Name: "a"}}}, false},
		{"query without prometheus", File{Alarms: []Definition{{Name: "a", Prometheus: "up"}}}, false},
		{"twice", File{Alarms: []Definition{{Name: "a", HTTP: "http://h/"}, {Name: "a", HTTP: "http://h/"}}}, false},
		{"bad url", File{Alarms: []Definition{{Name: "a", HTTP: "file:///etc/passwd"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Check()
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if err == nil && (tc.f.PollInterval != 10*time.Second || tc.f.Timeout != 5*time.Second) {
				t.Fatalf("defaults %v %v", tc.f.PollInterval, tc.f.Timeout)
			}
		})
	}
}
