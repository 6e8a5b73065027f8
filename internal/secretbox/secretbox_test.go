package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustBox(t *testing.T, fill byte) *Box {
	t.Helper()
	b, err := NewBox(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	box := mustBox(t, 1)
	const ctx = "accesskey/AKIAALICE/secret"
	plain := []byte("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	sealed, err := box.Seal(plain, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, "v1:") || bytes.Contains([]byte(sealed), plain) {
		t.Fatalf("sealed = %q", sealed)
	}
	if again, _ := box.Seal(plain, ctx); again == sealed {
		t.Error("sealing twice gave the same value; nonces are not random")
	}

	// tamper flips one bit of the decoded payload at index i.
	tamper := func(i int) string {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1:"))
		if err != nil {
			t.Fatal(err)
		}
		raw[i] ^= 1
		return "v1:" + base64.RawURLEncoding.EncodeToString(raw)
	}

	tests := []struct {
		name    string
		box     *Box
		sealed  string
		context string
		wantErr error
	}{
		{name: "round trip", box: box, sealed: sealed, context: ctx},
		{name: "wrong context", box: box, sealed: sealed, context: "accesskey/AKIABOB/secret", wantErr: ErrOpen},
		{name: "wrong key", box: mustBox(t, 2), sealed: sealed, context: ctx, wantErr: ErrOpen},
		{name: "tampered nonce", box: box, sealed: tamper(0), context: ctx, wantErr: ErrOpen},
		{name: "tampered ciphertext", box: box, sealed: tamper(14), context: ctx, wantErr: ErrOpen},
		{name: "tampered tag", box: box, sealed: tamper(12 + len(plain) + 15), context: ctx, wantErr: ErrOpen},
		{name: "truncated", box: box, sealed: sealed[:len(sealed)-4], context: ctx, wantErr: ErrOpen},
		{name: "too short", box: box, sealed: "v1:AAAA", context: ctx, wantErr: ErrMalformed},
		{name: "unknown version", box: box, sealed: "v2:" + strings.TrimPrefix(sealed, "v1:"), context: ctx, wantErr: ErrMalformed},
		{name: "not base64", box: box, sealed: "v1:!!!", context: ctx, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, tt.context)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open: err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !bytes.Equal(got, plain) {
				t.Errorf("Open = %q, want %q", got, plain)
			}
		})
	}
}

func TestSealEmpty(t *testing.T) {
	box := mustBox(t, 3)
	sealed, err := box.Seal(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := box.Open(sealed, "")
	if err != nil || len(got) != 0 {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestNewBoxKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox accepted a %d-byte key", n)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "server.key")
	first, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %04o, want 0600", perm)
	}
	sealed, err := first.Seal([]byte("ghp_token"), "repo/1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := second.Open(sealed, "repo/1"); err != nil || string(got) != "ghp_token" {
		t.Fatalf("second load did not reuse the key: %q, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadKeyFile(t *testing.T) {
	key := bytes.Repeat([]byte{0x20}, KeySize) // raw key made of "whitespace"
	hexKey := hex.EncodeToString(bytes.Repeat([]byte{0xab}, KeySize))
	tests := []struct {
		name    string
		content []byte
		perm    os.FileMode
		ok      bool
	}{
		{name: "hex with newline", content: []byte(hexKey + "\n"), perm: 0o600, ok: true},
		{name: "raw", content: key, perm: 0o400, ok: true},
		{name: "short hex", content: []byte(hexKey[:62]), perm: 0o600},
		{name: "too long", content: bytes.Repeat([]byte("a"), 500), perm: 0o600},
		{name: "group readable", content: []byte(hexKey), perm: 0o640},
		{name: "world readable", content: []byte(hexKey), perm: 0o604},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "server.key")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.perm); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if (err == nil) != tt.ok {
				t.Fatalf("LoadOrCreateKey: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKeyFromEnv(t *testing.T) {
	const name = "CUTOVER_TEST_SECRETBOX_KEY"
	good := hex.EncodeToString(bytes.Repeat([]byte{7}, KeySize))
	tests := []struct {
		name, value string
		found, err  bool
	}{
		{name: "unset"},
		{name: "hex", value: good, found: true},
		{name: "hex with whitespace", value: " " + good + "\n", found: true},
		{name: "not hex", value: strings.Repeat("zz", KeySize), err: true},
		{name: "wrong length", value: good[:32], err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(name, tt.value)
			key, found, err := KeyFromEnv(name)
			if found != tt.found || (err != nil) != tt.err {
				t.Fatalf("KeyFromEnv = %x, %v, %v", key, found, err)
			}
			if found {
				if _, err := NewBox(key); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
