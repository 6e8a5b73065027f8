// Package keys manages access keys: the credentials callers sign requests
// with. Each key belongs to an account and an IAM-user-like principal
// (arn:aws:iam::<account>:user/<name>) and declares its powers (an
// access.Grant: role, optional application and region limits, or the
// instance a host key is bound to). Secrets are sealed with the server key
// before they reach the store.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/store"
)

// DefaultAccount is the account of keys created without --account.
const DefaultAccount = "000000000000"

const kind = "accesskey"

// ErrNotFound is returned for unknown or revoked keys.
var ErrNotFound = errors.New("keys: access key not found")

// ErrRevoked is the ErrNotFound of a key that exists and was revoked.
var ErrRevoked = fmt.Errorf("%w (revoked)", ErrNotFound)

// ErrUnopenable is returned by Lookup for a key whose stored secret this
// server's key cannot open: it was sealed under another server key (a
// `cutover keys create` run without the server's CUTOVER_SERVER_KEY, before
// the CLI refused that) or the record was damaged. It is the server's
// fault, not the caller's, but no request can be verified with the key.
var ErrUnopenable = errors.New("keys: stored secret cannot be opened with this server key")

// Sealer seals secrets at rest; internal/secretbox provides it.
type Sealer interface {
	Seal(plaintext []byte, context string) (string, error)
	Open(sealed string, context string) ([]byte, error)
}

// Key is an access key as stored, secret excluded.
type Key struct {
	AccessKeyID string    `json:"AccessKeyId"`
	Account     string    `json:"Account"`
	UserName    string    `json:"UserName"`
	Arn         string    `json:"Arn"`
	Created     time.Time `json:"Created"`
	Revoked     bool      `json:"Revoked,omitempty"`
	RevokedAt   time.Time `json:"RevokedAt,omitzero"`
	Sealed      string    `json:"SealedSecret"`
	// Grant is what the key may do. Keys stored before roles existed have
	// none until Migrate gives them one; until then they may do nothing.
	access.Grant
}

// Spec describes a key to create.
type Spec struct {
	User    string
	Account string // DefaultAccount when empty
	Grant   access.Grant
	// SessionArn makes a host key sign as an IAM role session
	// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) instead of as user
	// User: the key of an instance registered with an IAM session ARN.
	SessionArn string
}

// Created is what a new key shows once: the only time its secret is seen.
type Created struct {
	AccessKeyID     string      `json:"AccessKeyId"`
	SecretAccessKey string      `json:"SecretAccessKey"`
	Arn             string      `json:"Arn"`
	Role            access.Role `json:"Role"`
}

// Manager creates, finds and revokes keys.
type Manager struct {
	Store  store.Store
	Sealer Sealer
	Now    func() time.Time
	// CacheFor, when positive, lets Lookup answer from memory for that
	// long; the owner must call Forget for every change of a key record.
	CacheFor time.Duration
	// Version, when set, is read before every cached answer, and an entry
	// read under another version is not used: on SQLite it is PRAGMA
	// data_version, which moves with every commit of any other connection,
	// `cutover keys revoke` in another process included, so that no write
	// needs to be reported through Forget.
	Version func(ctx context.Context) (int64, error)
	cache   lookupCache
}

var (
	userName = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,64}$`)
	account  = regexp.MustCompile(`^[0-9]{12}$`)
	keyID    = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
)

// ValidAccount reports whether acct is a 12-digit account id.
func ValidAccount(acct string) error {
	if !account.MatchString(acct) {
		return fmt.Errorf("invalid account id %q: 12 digits", acct)
	}
	return nil
}

// UserArn is the principal ARN of a user in an account.
func UserArn(account, user string) string {
	return fmt.Sprintf("arn:aws:iam::%s:user/%s", account, user)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
const secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		// The alphabets are 36 and 64 characters; the modulo bias on 36 is
		// irrelevant for identifiers (the secret uses 64, bias-free).
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Create makes a new admin key for user in acct (DefaultAccount when
// empty).
func (m *Manager) Create(ctx context.Context, user, acct string) (Created, error) {
	return m.CreateKey(ctx, Spec{User: user, Account: acct, Grant: access.Grant{Role: access.Admin}})
}

// CreateKey makes a new key as spec declares.
func (m *Manager) CreateKey(ctx context.Context, spec Spec) (Created, error) {
	id := "AKIA" + randomString(16, alnum)
	k, secret, err := m.newKey(spec, id, randomString(40, secretChars))
	if err != nil {
		return Created{}, err
	}
	if err := m.Store.Update(ctx, func(tx store.Tx) error { return insertKey(ctx, tx, k) }); err != nil {
		return Created{}, fmt.Errorf("store key: %w", err)
	}
	return Created{AccessKeyID: id, SecretAccessKey: secret, Arn: k.Arn, Role: k.Role}, nil
}

func (m *Manager) newKey(spec Spec, id, secret string) (Key, string, error) {
	acct := spec.Account
	if acct == "" {
		acct = DefaultAccount
	}
	if !userName.MatchString(spec.User) {
		return Key{}, "", fmt.Errorf("invalid user name %q: 1-64 of A-Z a-z 0-9 +=,.@_-", spec.User)
	}
	if err := ValidAccount(acct); err != nil {
		return Key{}, "", err
	}
	if !keyID.MatchString(id) {
		return Key{}, "", fmt.Errorf("invalid access key id %q: 16-128 of A-Z 0-9", id)
	}
	if len(secret) < 8 {
		return Key{}, "", errors.New("secret access key too short")
	}
	if err := spec.Grant.Validate(); err != nil {
		return Key{}, "", err
	}
	arn := UserArn(acct, spec.User)
	if spec.SessionArn != "" {
		switch {
		case spec.Grant.Role != access.Host:
			return Key{}, "", errors.New("only host keys sign as an IAM session")
		case !access.IsIAMSessionArn(spec.SessionArn):
			return Key{}, "", fmt.Errorf("invalid IAM session ARN %q: arn:aws:sts::<account>:assumed-role/<role>/<session>", spec.SessionArn)
		case access.ArnAccount(spec.SessionArn) != acct:
			return Key{}, "", fmt.Errorf("the IAM session ARN belongs to account %s, the key to %s", access.ArnAccount(spec.SessionArn), acct)
		}
		arn = spec.SessionArn
	}
	sealed, err := m.Sealer.Seal([]byte(secret), kind+":"+id)
	if err != nil {
		return Key{}, "", fmt.Errorf("seal secret: %w", err)
	}
	return Key{AccessKeyID: id, Account: acct, UserName: spec.User, Arn: arn, Created: m.now(), Sealed: sealed, Grant: spec.Grant}, secret, nil
}

func insertKey(ctx context.Context, tx store.Tx, k Key) error {
	b, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return tx.Insert(ctx, kind, k.AccessKeyID, b)
}

// RootState is what EnsureRoot found.
type RootState struct {
	Created bool // the key did not exist and was made
	Revoked bool // the key exists and is revoked: it stays so
	// SecretMismatch: the stored key has another secret than the one
	// given, which is ignored (the stored key is authoritative).
	SecretMismatch bool
}

// EnsureRoot creates the environment's root key (an admin of acct) only
// when no key of that id exists. An existing key is left as
// it is: a revoked root key stays revoked, whatever the environment says.
func (m *Manager) EnsureRoot(ctx context.Context, acct, id, secret string) (RootState, error) {
	k, sec, err := m.newKey(Spec{User: "root", Account: acct, Grant: access.Grant{Role: access.Admin}}, id, secret)
	if err != nil {
		return RootState{}, err
	}
	var st RootState
	update := func(tx store.Tx) error {
		st = RootState{}
		b, err := tx.Get(ctx, kind, id)
		if errors.Is(err, store.ErrNotFound) {
			st.Created = true
			return insertKey(ctx, tx, k)
		}
		if err != nil {
			return err
		}
		var old Key
		if err := json.Unmarshal(b, &old); err != nil {
			return fmt.Errorf("decode key %s: %w", id, err)
		}
		st.Revoked = old.Revoked
		stored, err := m.Sealer.Open(old.Sealed, kind+":"+id)
		if err != nil {
			return fmt.Errorf("open secret of %s: %w", id, err)
		}
		st.SecretMismatch = string(stored) != sec
		return nil
	}
	err = m.Store.Update(ctx, update)
	if errors.Is(err, store.ErrExists) {
		// Another replica sharing the database made it meanwhile.
		err = m.Store.Update(ctx, update)
	}
	if err != nil {
		return RootState{}, fmt.Errorf("root key: %w", err)
	}
	return st, nil
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Get returns a live key, secret excluded, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (Key, error) {
	var k Key
	b, err := store.Get(ctx, m.Store, kind, id)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.Revoked) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("read key: %w", err)
	}
	k.Sealed = ""
	return k, nil
}

// Lookup returns a live key and its secret.
func (m *Manager) Lookup(ctx context.Context, id string) (Key, string, error) {
	if m.CacheFor <= 0 {
		return m.lookup(ctx, id)
	}
	var version int64
	if m.Version != nil {
		v, err := m.Version(ctx)
		if err != nil {
			// Changes may have gone unseen: read the record itself.
			return m.lookup(ctx, id)
		}
		version = v
	}
	if e, ok := m.cache.get(id, m.now(), m.CacheFor); ok && e.version == version {
		return e.key, e.secret, nil
	}
	// Both read before the record: a change committed after them leaves
	// an entry that the next version or generation check discards.
	gen := m.cache.generation()
	k, secret, err := m.lookup(ctx, id)
	if err == nil {
		m.cache.put(id, cachedKey{key: k, secret: secret, at: m.now(), version: version}, gen)
	}
	return k, secret, err
}

func (m *Manager) lookup(ctx context.Context, id string) (Key, string, error) {
	var k Key
	b, err := store.Get(ctx, m.Store, kind, id)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, "", ErrNotFound
	}
	if err == nil && k.Revoked {
		return Key{}, "", ErrRevoked
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("read key: %w", err)
	}
	secret, err := m.Sealer.Open(k.Sealed, kind+":"+id)
	if err != nil {
		return Key{}, "", fmt.Errorf("%w: %s: %w", ErrUnopenable, id, err)
	}
	return k, string(secret), nil
}

// List returns every key, revoked ones included, secrets excluded.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	var out []Key
	err := m.Store.View(ctx, func(tx store.Tx) error {
		items, err := tx.Scan(ctx, kind, "", "", 0)
		if err != nil {
			return err
		}
		for _, it := range items {
			var k Key
			if err := json.Unmarshal(it.Value, &k); err != nil {
				return fmt.Errorf("decode key %s: %w", it.Key, err)
			}
			k.Sealed = ""
			out = append(out, k)
		}
		return nil
	})
	return out, err
}

// Revoke disables a key at once; the record is kept for the audit trail.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	defer m.cache.forget(id)
	return m.Store.Update(ctx, func(tx store.Tx) error {
		b, err := tx.Get(ctx, kind, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var k Key
		if err := json.Unmarshal(b, &k); err != nil {
			return err
		}
		if k.Revoked {
			return nil
		}
		k.Revoked, k.RevokedAt = true, m.now().UTC()
		nb, err := json.Marshal(k)
		if err != nil {
			return err
		}
		return tx.Put(ctx, kind, id, nb)
	})
}

// Migrate gives every key stored without a role the grant classify
// decides (keys made before roles existed), in one transaction, and
// returns the keys it changed. Revoked keys are migrated too and stay
// revoked.
func (m *Manager) Migrate(ctx context.Context, classify func(ctx context.Context, tx store.Tx, k Key) (access.Grant, error)) ([]Key, error) {
	var changed []Key
	err := m.Store.Update(ctx, func(tx store.Tx) error {
		changed = nil
		items, err := tx.Scan(ctx, kind, "", "", 0)
		if err != nil {
			return err
		}
		for _, it := range items {
			var k Key
			if err := json.Unmarshal(it.Value, &k); err != nil {
				return fmt.Errorf("decode key %s: %w", it.Key, err)
			}
			if k.Role != "" {
				continue
			}
			if k.Grant, err = classify(ctx, tx, k); err != nil {
				return err
			}
			if err := k.Grant.Validate(); err != nil {
				return fmt.Errorf("migrate key %s: %w", k.AccessKeyID, err)
			}
			b, err := json.Marshal(k)
			if err != nil {
				return err
			}
			if err := tx.Put(ctx, kind, it.Key, b); err != nil {
				return err
			}
			k.Sealed = ""
			changed = append(changed, k)
		}
		return nil
	})
	return changed, err
}
