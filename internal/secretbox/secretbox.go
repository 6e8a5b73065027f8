// Package secretbox seals secrets at rest (access-key secrets, GitHub tokens)
// under a server key with AES-256-GCM.
//
// Every sealed value is bound to a context string (for example
// "accesskey/AKIA.../secret") used as GCM additional data, so a sealed value
// copied from one record into another fails to open instead of silently
// handing out the wrong secret.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the server key length in bytes (AES-256).
const KeySize = 32

// version1 prefixes values sealed with AES-256-GCM, a random 96-bit nonce and
// the context as additional data. The prefix leaves room for a later scheme
// or key rotation without guessing at the format of stored values.
const version1 = "v1:"

// aadPrefix separates this package's additional data from any other use of
// the same key; the NUL keeps prefix and context unambiguous.
const aadPrefix = "cutover/secretbox/v1\x00"

var (
	// ErrMalformed is returned by Open for values that are not a sealed box.
	ErrMalformed = errors.New("secretbox: malformed sealed value")
	// ErrOpen is returned by Open when authentication fails: the value was
	// tampered with, sealed under another key, or sealed for another context.
	ErrOpen = errors.New("secretbox: cannot open sealed value (wrong key, wrong context, or tampered)")
)

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a Box using key, which must be KeySize bytes.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext for context and returns a printable value of the
// form "v1:" + base64url(nonce || ciphertext || tag).
//
// Nonces are random: with 96 bits the collision risk stays negligible far
// beyond the number of secrets this service will ever seal under one key.
func (b *Box) Seal(plaintext []byte, context string) (string, error) {
	ns := b.aead.NonceSize()
	buf := make([]byte, ns, ns+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("secretbox: reading nonce: %w", err)
	}
	buf = b.aead.Seal(buf, buf[:ns], plaintext, aad(context))
	return version1 + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts a value produced by Seal with the same key and context.
func (b *Box) Open(sealed string, context string) ([]byte, error) {
	enc, ok := strings.CutPrefix(sealed, version1)
	if !ok {
		return nil, fmt.Errorf("%w: unknown version", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	ns := b.aead.NonceSize()
	if len(raw) < ns+b.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	plain, err := b.aead.Open(nil, raw[:ns], raw[ns:], aad(context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func aad(context string) []byte {
	return []byte(aadPrefix + context)
}

// LoadOrCreateKey returns a Box using the key stored at path, creating the
// file with a fresh random key (hex, mode 0600) if it does not exist.
//
// An existing file may hold the key as 64 hex digits (surrounding whitespace
// ignored) or as 32 raw bytes. Because the file decrypts every stored secret,
// it is refused if group or others have any access to it, as ssh does for
// private keys; supply the key through the environment (KeyFromEnv) where
// file modes cannot be controlled.
func LoadOrCreateKey(path string) (*Box, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	return NewBox(key)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: opening key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secretbox: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secretbox: key file %s has mode %04o, readable or writable by group or others; chmod 600 it", path, perm)
	}
	// Bounded read: a valid file is at most hex plus some whitespace, and
	// anything longer is reported by parseKey rather than read whole.
	data, err := io.ReadAll(io.LimitReader(f, 2*KeySize+64))
	if err != nil {
		return nil, fmt.Errorf("secretbox: reading key file %s: %w", path, err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
	}
	return key, nil
}

// parseKey accepts exactly KeySize raw bytes, or hex for KeySize bytes.
// Raw is checked first and untrimmed: a raw key may begin or end with bytes
// that look like whitespace.
func parseKey(data []byte) ([]byte, error) {
	if len(data) == KeySize {
		return append([]byte(nil), data...), nil
	}
	s := strings.TrimSpace(string(data))
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("holds neither %d raw bytes nor %d hex digits", KeySize, 2*KeySize)
	}
	return key, nil
}

// createKeyFile writes a new random key to path. The key is written to a
// private temporary file and linked into place, so a crash never leaves a
// partial key behind and two processes starting together agree on one key:
// the loser of the link race reads the winner's file.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secretbox: creating key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secretbox: generating key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secretbox-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("secretbox: creating key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("secretbox: writing key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKeyFile(path)
		}
		return nil, fmt.Errorf("secretbox: installing key file: %w", err)
	}
	return key, nil
}

// KeyFromEnv reads a hex-encoded key from the environment variable name. It
// reports false, with no error, when the variable is unset or empty, so
// callers can fall back to LoadOrCreateKey.
func KeyFromEnv(name string) ([]byte, bool, error) {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return nil, false, nil
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, false, fmt.Errorf("secretbox: %s is not hex: %w", name, err)
	}
	if len(key) != KeySize {
		return nil, false, fmt.Errorf("secretbox: %s holds %d bytes, want %d (%d hex digits)", name, len(key), KeySize, 2*KeySize)
	}
	return key, true, nil
}
