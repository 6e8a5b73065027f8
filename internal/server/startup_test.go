package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
)

// TestStartupWithEveryBackendDown: a server whose target group's stored
// membership has only dead backends opens its API at once (start-up used
// to wait for their health checks, with no deadline) and keeps applying
// the membership in the background.
func TestStartupWithEveryBackendDown(t *testing.T) {
	dir := t.TempDir()
	dead := deadAddr(t)
	st, err := server.OpenStore(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	// The membership a blue/green deployment left registered before the
	// server stopped (the runner's desired-membership record).
	b, _ := json.Marshal([]traffic.Backend{{ID: "web-1", Addr: dead, Weight: 1}, {ID: "web-2", Addr: dead, Weight: 1}})
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Put(context.Background(), "tgmember", "web", b) }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg := server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, InsecureHTTP: true,
		RootAccessKeyID: "AKIATESTROOT00000001", RootSecretAccessKey: "test-root-secret-key-0000000000000000000",
		TargetGroups: []traffic.TargetGroupConfig{{Name: "web", Listen: "127.0.0.1:0", Port: 80,
			HealthCheck: traffic.HealthCheck{Path: "/", Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond}}},
	}
	start := time.Now()
	done := make(chan *servertest.Env, 1)
	go func() { done <- servertest.StartConfig(t, cfg) }()
	var env *servertest.Env
	select {
	case env = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not start within 5 s with every backend of a target group down")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("/healthz answered %s after start-up began", d)
	}
	resp, err := http.Get(env.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d", resp.StatusCode)
	}
	// The router was given the membership all the same: the members are
	// registered, unhealthy.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ms, err := env.Server.Traffic.Members(context.Background(), "web")
		if err == nil && len(ms) == 2 && !ms[0].Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %+v %v", ms, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
