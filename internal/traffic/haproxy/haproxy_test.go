package haproxy_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy/haproxytest"
	"github.com/cutoverhq/cutover/internal/traffic/traffictest"
)

func newRouter(t *testing.T, cfg traffic.TargetGroupConfig) (traffic.Router, string) {
	cfg.Listen = haproxytest.FreeAddr(t)
	cfg.Driver = traffic.DriverHAProxy
	cfg.HAProxy.Socket = haproxytest.StartHAProxy(t, []traffic.TargetGroupConfig{cfg})
	r, err := haproxy.New([]traffic.TargetGroupConfig{cfg}, haproxy.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, cfg.Listen
}

func TestConformance(t *testing.T) { traffictest.Run(t, newRouter) }

func TestServerName(t *testing.T) {
	tests := []struct{ id, want string }{
		{"i-0abc", "i-0abc"},
		{"web_1.prod", "web_1.prod"},
		{"host name/1", "host_name_1-"},
	}
	for _, tt := range tests {
		if got := haproxy.ServerName(tt.id); !strings.HasPrefix(got, tt.want) || (tt.want[len(tt.want)-1] != '-' && got != tt.want) {
			t.Errorf("ServerName(%q) = %q, want %q...", tt.id, got, tt.want)
		}
	}
	if haproxy.ServerName("a b") == haproxy.ServerName("a/b") {
		t.Error("sanitised names collide")
	}
}

func TestWriteConfig(t *testing.T) {
	cfg := traffictest.Config()
	cfg.Listen = "127.0.0.1:8080"
	var b strings.Builder
	if err := haproxy.WriteConfig(&b, "/run/h.sock", []traffic.TargetGroupConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"stats socket /run/h.sock mode 600 level admin expose-fd listeners",
		"bind 127.0.0.1:8080",
		"backend web",
		"balance roundrobin",
		"option httpchk GET /healthz",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("config lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSticky(t *testing.T) { traffictest.RunSticky(t, newRouter, false) }

func TestStats(t *testing.T) { traffictest.RunStats(t, newRouter, false) }

func TestWriteConfigSticky(t *testing.T) {
	cfg := traffictest.Config()
	cfg.Listen = "127.0.0.1:8080"
	cfg.StickyCookie = "SERVERID"
	var b strings.Builder
	if err := haproxy.WriteConfig(&b, "/run/h.sock", []traffic.TargetGroupConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cookie SERVERID insert indirect nocache httponly dynamic", "dynamic-cookie-key "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("config lacks %q:\n%s", want, b.String())
		}
	}
}
