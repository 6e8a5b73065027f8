// Package keys manages access keys: the credentials callers sign requests
// with. Each key belongs to an account and an IAM-user-like principal
// (arn:aws:iam::<account>:user/<name>). Secrets are sealed with the server
// key before they reach the store.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/cutoverhq/cutover/internal/store"
)

// DefaultAccount is the account of keys created without --account.
const DefaultAccount = "000000000000"

const kind = "accesskey"

// ErrNotFound is returned for unknown or revoked keys.
var ErrNotFound = errors.New("keys: access key not found")

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
	Sealed      string    `json:"SealedSecret"`
}

// Created is what a new key shows once: the only time its secret is seen.
type Created struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Arn             string `json:"Arn"`
}

// Manager creates, finds and revokes keys.
type Manager struct {
	Store  store.Store
	Sealer Sealer
	Now    func() time.Time
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

// Create makes a new key for user in acct (DefaultAccount when empty).
func (m *Manager) Create(ctx context.Context, user, acct string) (Created, error) {
	id := "AKIA" + randomString(16, alnum)
	return m.Import(ctx, user, acct, id, randomString(40, secretChars))
}

// Import stores a key with a caller-chosen id and secret (used for the root
// key from the environment). Importing an existing id with the same secret
// and owner is a no-op; with a different one it replaces it.
func (m *Manager) Import(ctx context.Context, user, acct, id, secret string) (Created, error) {
	if acct == "" {
		acct = DefaultAccount
	}
	if !userName.MatchString(user) {
		return Created{}, fmt.Errorf("invalid user name %q: 1-64 of A-Z a-z 0-9 +=,.@_-", user)
	}
	if err := ValidAccount(acct); err != nil {
		return Created{}, err
	}
	if !keyID.MatchString(id) {
		return Created{}, fmt.Errorf("invalid access key id %q: 16-128 of A-Z 0-9", id)
	}
	if len(secret) < 8 {
		return Created{}, errors.New("secret access key too short")
	}
	sealed, err := m.Sealer.Seal([]byte(secret), kind+":"+id)
	if err != nil {
		return Created{}, fmt.Errorf("seal secret: %w", err)
	}
	k := Key{AccessKeyID: id, Account: acct, UserName: user, Arn: UserArn(acct, user), Created: m.now(), Sealed: sealed}
	b, err := json.Marshal(k)
	if err != nil {
		return Created{}, err
	}
	err = m.Store.Update(ctx, func(tx store.Tx) error {
		return tx.Put(ctx, kind, id, b)
	})
	if err != nil {
		return Created{}, fmt.Errorf("store key: %w", err)
	}
	return Created{AccessKeyID: id, SecretAccessKey: secret, Arn: k.Arn}, nil
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Lookup returns a live key and its secret.
func (m *Manager) Lookup(ctx context.Context, id string) (Key, string, error) {
	var k Key
	b, err := store.Get(ctx, m.Store, kind, id)
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.Revoked) {
		return Key{}, "", ErrNotFound
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("read key: %w", err)
	}
	secret, err := m.Sealer.Open(k.Sealed, kind+":"+id)
	if err != nil {
		return Key{}, "", fmt.Errorf("open secret of %s: %w", id, err)
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
		k.Revoked = true
		nb, err := json.Marshal(k)
		if err != nil {
			return err
		}
		return tx.Put(ctx, kind, id, nb)
	})
}
