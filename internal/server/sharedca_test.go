package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/servertest"
	"github.com/cutoverhq/cutover/internal/tlsca"
)

// Replicas on one database serve HTTPS from one CA, so that a client or
// agent that pinned the fingerprint one replica printed talks to any of
// them. The first replica brings the CA an earlier single server made;
// a replica whose data directory had another CA takes the shared one.
func TestReplicasShareTheCA(t *testing.T) {
	url := pgtest.Start(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_SERVER_KEY", hex.EncodeToString(key))

	// dirA held a single server's CA before it joined the database; dirB
	// held another one.
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	first, err := tlsca.LoadOrCreate(dirs[0], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlsca.LoadOrCreate(dirs[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	envA := servertest.Start(t, servertest.WithTLS(), servertest.WithDatabase(url), servertest.WithDataDir(dirs[0]))
	if pem, _ := envA.Server.CA(); !bytes.Equal(pem, first.PEM) {
		t.Fatalf("the first replica serves another CA than its data directory's")
	}

	// Two more start at once: both end on the stored CA.
	envs := make([]*servertest.Env, 2)
	var wg sync.WaitGroup
	for i := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs[i] = servertest.Start(t, servertest.WithTLS(), servertest.WithDatabase(url), servertest.WithDataDir(dirs[i+1]))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, env := range envs {
		pem, _ := env.Server.CA()
		if !bytes.Equal(pem, first.PEM) {
			t.Errorf("replica %d serves its own CA", i+1)
		}
		onDisk, err := os.ReadFile(filepath.Join(dirs[i+1], tlsca.CertFile))
		if err != nil || !bytes.Equal(onDisk, first.PEM) {
			t.Errorf("replica %d data directory's ca.pem is not the shared CA (%v)", i+1, err)
		}
	}
	if onDisk, _ := os.ReadFile(filepath.Join(dirs[1], tlsca.CertFile)); bytes.Equal(onDisk, other.PEM) {
		t.Errorf("the other CA is still in its data directory")
	}

	// A client that trusts only the CA it got from replica A (its
	// HTTPClient) calls replica B and C over verified TLS.
	ctx := context.Background()
	if _, err := envA.Client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("shared-ca")}); err != nil {
		t.Fatal(err)
	}
	for i, env := range envs {
		c := *envA
		c.URL = env.URL
		client := c.NewClient(envA.AccessKey, envA.SecretKey, envA.Region)
		out, err := client.ListApplications(ctx, &codedeploy.ListApplicationsInput{})
		if err != nil {
			t.Fatalf("replica %d with replica A's CA: %v", i+1, err)
		}
		if len(out.Applications) != 1 || out.Applications[0] != "shared-ca" {
			t.Errorf("replica %d applications %v", i+1, out.Applications)
		}
	}

	// A restart keeps it (read from the store, files unchanged).
	envs[0].Stop()
	again := servertest.Start(t, servertest.WithTLS(), servertest.WithDatabase(url), servertest.WithDataDir(dirs[1]))
	if pem, _ := again.Server.CA(); !bytes.Equal(pem, first.PEM) {
		t.Errorf("restarted replica serves another CA")
	}
}
