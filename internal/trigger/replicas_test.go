package trigger_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// TestTriggersReplicasDeliverOnceAndPrune: three replicas on one
// PostgreSQL all run the delivery worker; each notification reaches the
// receiver once (a worker claims a delivery in the store before posting
// it), including those retried after the receiver was down. Deliveries
// that ended are pruned after their retention; pending ones are kept.
func TestTriggersReplicasDeliverOnceAndPrune(t *testing.T) {
	rcv := newReceiver(t)
	rcv.setDown(true)
	cfg := writeConfig(t, rcv.srv.URL)
	url := pgtest.Start(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_SERVER_KEY", hex.EncodeToString(key))
	var envs []*servertest.Env
	for i := range 3 {
		envs = append(envs, servertest.Start(t, withTriggers(cfg), servertest.WithDatabase(url),
			func(c *server.Config) { c.ReplicaID = fmt.Sprint("replica-", i) }))
	}
	env := envs[0]
	s3 := servertest.StartS3(t, "bundles")
	env.StartAgent(t, "web-1", map[string]string{"role": "web"}, s3.URL)
	env.SetupGroup(t, "app", "web", "CodeDeployDefault.AllAtOnce", "role", "web", func(in *codedeploy.CreateDeploymentGroupInput) {
		in.TriggerConfigurations = triggers()
	})
	id := deployOnce(t, env, s3)
	// Every replica's worker sees the deliveries fail at least once.
	ctx := context.Background()
	time.Sleep(500 * time.Millisecond)
	rcv.setDown(false)
	rcv.waitFor(t, 5)
	time.Sleep(time.Second) // a duplicate would arrive meanwhile
	if got := rcv.received(); len(got) != 5 {
		t.Fatalf("received %d notifications from three replicas, want exactly 5", len(got))
	}
	waitDelivered(t, env, id, 5)

	// A second deployment while the receiver is down: its deliveries stay
	// pending, and pruning leaves them.
	rcv.setDown(true)
	id2 := deployOnce(t, env, s3)
	n, err := trigger.Prune(ctx, env.Server.Store, time.Now().Add(time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("pruned %d deliveries (%v), want the 5 delivered ones", n, err)
	}
	if log, _ := trigger.Deliveries(ctx, env.Server.Store, id, 0); len(log) != 0 {
		t.Errorf("%d deliveries of the first deployment left after pruning", len(log))
	}
	log2, err := trigger.Deliveries(ctx, env.Server.Store, id2, 0)
	if err != nil || len(log2) != 5 {
		t.Fatalf("pending deliveries after pruning: %d %v", len(log2), err)
	}
	for _, d := range log2 {
		if d.Status != trigger.StatusPending {
			t.Errorf("delivery %s %s, want Pending", d.Event, d.Status)
		}
	}
	if n, _ := trigger.Prune(ctx, env.Server.Store, time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("pruned %d deliveries younger than the cutoff", n)
	}

	// Once delivered, a server started with a short retention prunes them
	// at start (and hourly after).
	rcv.setDown(false)
	rcv.waitFor(t, 10)
	waitDelivered(t, env, id2, 5)
	servertest.Start(t, withTriggers(cfg), servertest.WithDatabase(url), func(c *server.Config) {
		c.ReplicaID = "replica-short"
		c.DeliveryRetention = time.Millisecond
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		log2, err := trigger.Deliveries(ctx, env.Server.Store, id2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(log2) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries left 10 s after a server with 1 ms retention started", len(log2))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDelivered waits until a deployment's n deliveries are all recorded
// Delivered (the receiver has them a moment before the record says so).
func waitDelivered(t *testing.T, env *servertest.Env, id string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		log, err := trigger.Deliveries(context.Background(), env.Server.Store, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) == n && !slices.ContainsFunc(log, func(d trigger.Delivery) bool { return d.Status != trigger.StatusDelivered }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s not all recorded Delivered: %+v", id, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
