package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/background"
	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/secretbox"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/tlsca"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// Several replicas share one PostgreSQL database. What they must agree on
// lives in it: runtime state (package deploy), leases, the spec-signing
// certificate and the TLS CA (keys sealed); the one secret that cannot be in the database is
// the key sealing the others, given to every replica as CUTOVER_SERVER_KEY.

// defaultReplicaID names this process in lease records: CUTOVER_REPLICA_ID,
// else the host name and a random suffix (unique per run: a restarted
// replica takes over its own deployments after their leases expire).
func defaultReplicaID() string {
	if id := os.Getenv("CUTOVER_REPLICA_ID"); id != "" {
		return id
	}
	h, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = randRead(b)
	return fmt.Sprintf("%s-%x", h, b)
}

// isPostgres reports whether database names PostgreSQL.
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// watchedKinds are the store kinds whose changes replicas follow.
func watchedKinds() []string {
	return append(append([]string{}, deploy.WatchedKinds...), keys.Kind, api.CallerKind, hooklog.Kind, trigger.DeliveryKind)
}

// openFeed connects the store's change notifications to a feed: in process
// on SQLite, through a LISTEN connection on PostgreSQL.
func (s *Server) openFeed(ctx context.Context) error {
	s.Changes = &changefeed.Feed{}
	if n, ok := s.Store.(store.Notifier); ok {
		n.NotifyChanges(watchedKinds(), s.Changes.Publish)
	}
	if isPostgres(s.cfg.Database) {
		l := changefeed.Listen(ctx, s.cfg.Database, s.Changes, s.log)
		s.closers = append(s.closers, l.Close)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := l.WaitUp(wctx); err != nil {
			return fmt.Errorf("change feed: LISTEN on the database: %w", err)
		}
	}
	return nil
}

// followCaches keeps the access-key and caller caches in step with the
// store on every replica.
func (s *Server) followCaches() {
	sub := s.Changes.Subscribe(keys.Kind, api.CallerKind)
	var task background.Task
	task.Start(context.Background(), func(ctx context.Context) {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Ready():
			}
			changes, reset := sub.Take()
			if reset {
				s.Keys.Forget("")
				s.API.CallerChanged("")
				continue
			}
			for _, c := range changes {
				switch c.Topic {
				case keys.Kind:
					s.Keys.Forget(c.ID)
				case api.CallerKind:
					s.API.CallerChanged(c.ID)
				}
			}
		}
	})
	s.closers = append(s.closers, func() error {
		task.Close()
		sub.Close()
		return nil
	})
}

// keyCacheFor is how long a looked-up access key is trusted. On PostgreSQL
// every write, the CLI's included, reaches every replica's feed, and a
// lost notification resets the cache: the age only bounds the damage of a
// bug. On SQLite the CLI writes from another process, which the
// in-process feed never hears of: there every cached answer is checked
// against PRAGMA data_version (keyVersion), which any commit moves.
const keyCacheFor = time.Minute

// keyVersion is the keys.Manager Version of a store: nil where the change
// feed reports every write (PostgreSQL).
func keyVersion(st store.Store) func(context.Context) (int64, error) {
	if v, ok := st.(interface {
		DataVersion(context.Context) (int64, error)
	}); ok {
		return v.DataVersion
	}
	return nil
}

// sealCheckKey is a meta record sealed with the server key, so that a
// replica started with another CUTOVER_SERVER_KEY refuses to start instead
// of failing requests later.
const sealCheckKey = "seal-check"

func checkSealer(ctx context.Context, st store.Store, box *secretbox.Box) error {
	const plain = "cutover"
	return st.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, "meta", sealCheckKey)
		if errors.Is(err, store.ErrNotFound) {
			sealed, err := box.Seal([]byte(plain), "meta:"+sealCheckKey)
			if err != nil {
				return err
			}
			return tx.Put(ctx, "meta", sealCheckKey, []byte(sealed))
		}
		if err != nil {
			return err
		}
		if got, err := box.Open(string(b), "meta:"+sealCheckKey); err != nil || string(got) != plain {
			return errors.New("the server key does not open this database's secrets: every replica on one database, and every `cutover keys` or `cutover github-token` run against it, needs the server's key (set CUTOVER_SERVER_KEY to the hex key of the first server, the contents of its data directory's server.key)")
		}
		return nil
	})
}

// specSignerKey is the meta record holding the spec-signing certificate
// and its sealed key, shared by every replica.
const specSignerKey = "spec-signing"

type storedSigner struct {
	Cert      string `json:"cert"`
	SealedKey string `json:"sealedKey"`
}

// readSealedPair reads a certificate and its sealed key kept in meta
// record name.
func readSealedPair(ctx context.Context, st store.Store, box *secretbox.Box, name string) (certPEM, keyPEM []byte, err error) {
	b, err := store.Get(ctx, st, "meta", name)
	if err != nil {
		return nil, nil, err
	}
	var ss storedSigner
	if err := json.Unmarshal(b, &ss); err != nil {
		return nil, nil, fmt.Errorf("stored %s certificate: %w", name, err)
	}
	keyPEM, err = box.Open(ss.SealedKey, "meta:"+name)
	if err != nil {
		return nil, nil, fmt.Errorf("stored %s key: %w", name, err)
	}
	return []byte(ss.Cert), keyPEM, nil
}

// insertSealedPair keeps a certificate and its key, sealed, in meta record
// name unless one is there already (another replica won the race: the
// caller reads back whichever is stored).
func insertSealedPair(ctx context.Context, st store.Store, box *secretbox.Box, name string, certPEM, keyPEM []byte) error {
	sealed, err := box.Seal(keyPEM, "meta:"+name)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(storedSigner{Cert: string(certPEM), SealedKey: sealed})
	err = st.Update(ctx, func(tx store.Tx) error { return tx.Insert(ctx, "meta", name, b) })
	if err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	return nil
}

// sharedSpecSigner returns the spec-signing certificate of the database,
// creating it once: from the data directory's files when an earlier
// single server made them, else new.
func sharedSpecSigner(ctx context.Context, st store.Store, box *secretbox.Box, dataDir string) (*deploy.PKCS7Signer, error) {
	read := func() (*deploy.PKCS7Signer, error) {
		certPEM, keyPEM, err := readSealedPair(ctx, st, box, specSignerKey)
		if err != nil {
			return nil, err
		}
		return deploy.ParseSpecSigner(certPEM, keyPEM)
	}
	if p, err := read(); !errors.Is(err, store.ErrNotFound) {
		return p, err
	}
	certPEM, err1 := os.ReadFile(filepath.Join(dataDir, "spec-signing.crt"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dataDir, "spec-signing.key"))
	if err1 != nil || err2 != nil {
		var err error
		if certPEM, keyPEM, err = deploy.NewSpecCertPEM(); err != nil {
			return nil, err
		}
	}
	if _, err := deploy.ParseSpecSigner(certPEM, keyPEM); err != nil {
		return nil, err
	}
	if err := insertSealedPair(ctx, st, box, specSignerKey, certPEM, keyPEM); err != nil {
		return nil, err
	}
	// Another replica may have won the race: everyone uses the stored one.
	return read()
}

// tlsCAKey is the meta record holding the TLS certificate authority and
// its sealed key, shared by every replica: agents pin one fingerprint and
// may poll any replica.
const tlsCAKey = "tls-ca"

// sharedCA returns the database's certificate authority, creating it once
// (from the data directory's CA when an earlier single server made one),
// and keeps a copy in the data directory.
func (s *Server) sharedCA(ctx context.Context) (*tlsca.Authority, error) {
	st, box, dir := s.Store, s.sealer, s.cfg.DataDir
	read := func() (*tlsca.Authority, error) {
		certPEM, keyPEM, err := readSealedPair(ctx, st, box, tlsCAKey)
		if err != nil {
			return nil, err
		}
		a, replaced, err := tlsca.Install(dir, certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		if replaced {
			s.log.Warn("this data directory's TLS CA was replaced by the one the replicas share in the database; agents that pinned the old one must be registered again",
				"ca_file", a.Path, "ca_sha256", a.Fingerprint())
		}
		return a, nil
	}
	if a, err := read(); !errors.Is(err, store.ErrNotFound) {
		return a, err
	}
	local, err := tlsca.LoadOrCreate(dir, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	keyPEM, err := local.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := insertSealedPair(ctx, st, box, tlsCAKey, local.PEM, keyPEM); err != nil {
		return nil, err
	}
	// Another replica may have won the race: everyone uses the stored one.
	return read()
}

// readyz answers 200 when this replica can work: the store answers and it
// can take leases.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain")
	if err := s.Runner.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
