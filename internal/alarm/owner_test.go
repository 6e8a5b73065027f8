package alarm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/store"
)

// TestAlarmPolledByOwnerOnly: two replicas on one PostgreSQL define the
// same alarm name as HTTP checks of different URLs, so each poll shows
// which replica made it; replica B's check always fires. While replica A
// drives the deployment only A polls (had B polled even once, the
// deployment would have stopped). A stops; B takes the deployment over,
// polls, and its firing alarm stops the deployment with ALARM_ACTIVE.
// Before that, A's lease is passed to a replica that then vanishes (as
// when A stalls past its expiry): A stops polling at once.
func TestAlarmPolledByOwnerOnly(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	checks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			hitsA.Add(1) // quiet
		case "/b":
			hitsB.Add(1)
			w.WriteHeader(http.StatusInternalServerError) // firing
		}
	}))
	t.Cleanup(checks.Close)
	const interval = 100 * time.Millisecond
	alarmsOf := func(path string) string {
		p := filepath.Join(t.TempDir(), "alarms.yaml")
		cfg := fmt.Sprintf("pollInterval: %s\nalarms:\n  - name: probe\n    http: %s%s\n", interval, checks.URL, path)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	url := pgtest.Start(t)
	dir := t.TempDir() // one server key for both replicas
	replica := func(id, alarms string) *servertest.Env {
		return servertest.Start(t, servertest.WithDatabase(url), servertest.WithDataDir(dir), func(c *server.Config) {
			c.ReplicaID, c.AlarmsConfig = id, alarms
		})
	}
	a := replica("replica-a", alarmsOf("/a"))
	b := replica("replica-b", alarmsOf("/b"))

	f := &fixture{env: a, s3: servertest.StartS3(t, "bundles"), release: t.TempDir()}
	b.StartAgent(t, "web-1", map[string]string{"role": "web"}, f.s3.URL, servertest.WithEnviron("RELEASE="+f.release))
	a.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", alarmGroup([]string{"probe"}, false, false))
	t.Cleanup(func() { touch(t, filepath.Join(f.release, "v1")) })
	id := f.deploy(t, "web", map[string]string{"BeforeInstall": waitHook("v1")})
	waitFile(t, filepath.Join(f.release, "v1.started"))
	owner := func() string {
		v, err := store.Get(context.Background(), b.Server.Store, "lease", "deployment/"+id)
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if o := owner(); !strings.Contains(o, `"owner":"replica-a"`) {
		t.Fatalf("lease %s: want replica-a, which created the deployment", o)
	}
	// Twenty poll intervals with both replicas polling their alarms.
	base := hitsA.Load()
	time.Sleep(20 * interval)
	if n := hitsA.Load() - base; n < 5 {
		t.Errorf("the owner polled its alarm %d times in %v (interval %v)", n, 20*interval, interval)
	}
	if n := hitsB.Load(); n != 0 {
		t.Fatalf("replica-b polled the alarm of a deployment it does not drive %d times", n)
	}
	if info := b.WaitStatus(t, id, time.Second, cdtypes.DeploymentStatusInProgress); info.Status != cdtypes.DeploymentStatusInProgress {
		t.Fatalf("deployment %s while A drives it, want InProgress", info.Status)
	}

	// Replica A stalls and another replica takes the lease over (as after
	// A's lease expired): A's loop notices only at its next renewal, but
	// A stops polling at once, since it no longer holds the lease.
	var rec struct {
		Owner   string    `json:"owner"`
		Epoch   int64     `json:"epoch"`
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal([]byte(owner()), &rec); err != nil {
		t.Fatal(err)
	}
	rec.Owner, rec.Epoch, rec.Expires = "replica-gone", rec.Epoch+1, time.Now().Add(1500*time.Millisecond)
	ghost, _ := json.Marshal(rec)
	if err := b.Server.Store.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(context.Background(), "lease", "deployment/"+id, ghost)
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * interval) // a poll in flight ends
	base = hitsA.Load()
	time.Sleep(8 * interval)
	if n := hitsA.Load() - base; n != 0 {
		t.Errorf("replica-a polled %d times after its lease passed to another replica", n)
	}
	if n := hitsB.Load(); n != 0 {
		t.Fatalf("replica-b polled the alarm of a deployment it does not drive %d times", n)
	}
	// The other replica never comes back: its lease expires and A or B
	// takes the deployment; B, if it wins, stops it at its first poll.

	stopped := time.Now()
	a.Stop()
	aAfterStop := hitsA.Load()
	for !strings.Contains(owner(), `"owner":"replica-b"`) {
		if time.Since(stopped) > 15*time.Second {
			t.Fatalf("replica-b never took the deployment over: %s", owner())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitAlarmActive(t, b, id)
	t.Logf("after replica-a stopped: takeover and ALARM_ACTIVE by replica-b within %v (%d polls of B's alarm)", time.Since(stopped).Round(time.Millisecond), hitsB.Load())
	touch(t, filepath.Join(f.release, "v1"))
	info := b.WaitStatus(t, id, 30*time.Second, cdtypes.DeploymentStatusSucceeded, cdtypes.DeploymentStatusFailed, cdtypes.DeploymentStatusStopped)
	if info.Status != cdtypes.DeploymentStatusStopped || info.ErrorInformation == nil || info.ErrorInformation.Code != cdtypes.ErrorCodeAlarmActive ||
		!strings.Contains(aws.ToString(info.ErrorInformation.Message), "probe") {
		t.Fatalf("deployment %s %+v, want Stopped by the probe alarm (ALARM_ACTIVE)", info.Status, info.ErrorInformation)
	}
	if n := hitsA.Load() - aAfterStop; n != 0 {
		t.Errorf("the stopped replica polled %d more times", n)
	}
	// Nothing active any more: B stops polling.
	time.Sleep(2 * interval)
	quiet := hitsB.Load()
	time.Sleep(5 * interval)
	if n := hitsB.Load() - quiet; n != 0 {
		t.Errorf("replica-b polled %d times with no deployment active", n)
	}
}
