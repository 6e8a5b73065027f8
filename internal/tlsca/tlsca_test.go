package tlsca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuthorityPersistsAndIssues(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != ca.Fingerprint() {
		t.Fatal("a restart made a new CA")
	}
	if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}

	iss := &Issuer{CA: ca, Hosts: Hosts("0.0.0.0:8443", []string{"cutover.example", "203.0.113.7"})}
	cert, err := iss.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, host := range []string{"cutover.example", "203.0.113.7", "127.0.0.1", "localhost"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: roots}); err == nil {
		t.Error("certificate valid for a host not asked for")
	}
	// Reissued only near expiry.
	if c2, _ := iss.GetCertificate(nil); c2 != cert {
		t.Error("certificate reissued while fresh")
	}
	iss.Now = func() time.Time { return cert.Leaf.NotAfter.Add(-time.Hour) }
	if c3, _ := iss.GetCertificate(nil); c3 == cert {
		t.Error("certificate not renewed before expiry")
	}
}

func TestHalfAuthorityRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, keyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir, time.Now()); err == nil || !strings.Contains(err.Error(), "do not make a CA") {
		t.Fatalf("a CA without its key was accepted or replaced: %v", err)
	}
}

func TestMatchFingerprint(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fp := ca.Fingerprint()
	plain := strings.ReplaceAll(fp, ":", "")
	tests := []struct {
		in   string
		want bool
	}{
		{fp, true},
		{strings.ToLower(fp), true},
		{plain, true},
		{"sha256:" + strings.ToLower(plain), true},
		{"sha256 Fingerprint=" + fp, true},
		{fp[:len(fp)-3], false},
		{strings.Replace(fp, fp[:2], "00", 1), fp[:2] == "00"},
		{"", false},
	}
	for _, tt := range tests {
		if got := MatchFingerprint(tt.in, ca.Cert); got != tt.want {
			t.Errorf("MatchFingerprint(%q) = %v", tt.in, got)
		}
	}
}

func TestHosts(t *testing.T) {
	tests := []struct {
		listen    string
		advertise []string
		want      []string // must all be present
		not       []string
	}{
		{"127.0.0.1:8443", nil, []string{"127.0.0.1", "localhost"}, []string{"0.0.0.0"}},
		{"10.1.2.3:8443", []string{"cutover.internal:8443", " "}, []string{"10.1.2.3", "cutover.internal"}, []string{"127.0.0.1", ""}},
		{":8443", nil, []string{"127.0.0.1", "localhost", "::1"}, nil},
	}
	for _, tt := range tests {
		got := Hosts(tt.listen, tt.advertise)
		for _, h := range tt.want {
			if !slices.Contains(got, h) {
				t.Errorf("Hosts(%q, %q) = %q lacks %q", tt.listen, tt.advertise, got, h)
			}
		}
		for _, h := range tt.not {
			if slices.Contains(got, h) {
				t.Errorf("Hosts(%q, %q) = %q has %q", tt.listen, tt.advertise, got, h)
			}
		}
	}
}

// TestConcurrentCreate: servers starting together on one directory end up
// with one CA.
func TestConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	fps := make([]string, 4)
	errs := make([]error, len(fps))
	var wg sync.WaitGroup
	for i := range fps {
		wg.Go(func() {
			ca, err := LoadOrCreate(dir, time.Now())
			if err == nil {
				fps[i] = ca.Fingerprint()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range fps {
		if errs[i] != nil || fps[i] != fps[0] {
			t.Fatalf("creator %d: %s %v (first: %s)", i, fps[i], errs[i], fps[0])
		}
	}
}

func TestInstall(t *testing.T) {
	now := time.Now()
	shared, err := LoadOrCreate(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	sharedKey, err := shared.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	own, err := LoadOrCreate(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	ownKey, _ := own.KeyPEM()
	for _, tc := range []struct {
		name         string
		before       func(dir string) // what the directory holds
		wantReplaced bool
	}{
		{"empty directory", func(string) {}, false},
		{"the same CA", func(dir string) { mustWrite(t, dir, shared.PEM, sharedKey) }, false},
		{"another CA", func(dir string) { mustWrite(t, dir, own.PEM, ownKey) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.before(dir)
			a, replaced, err := Install(dir, shared.PEM, sharedKey)
			if err != nil {
				t.Fatal(err)
			}
			if replaced != tc.wantReplaced {
				t.Errorf("replaced %v, want %v", replaced, tc.wantReplaced)
			}
			if a.Fingerprint() != shared.Fingerprint() {
				t.Error("installed another CA")
			}
			loaded, err := LoadOrCreate(dir, now)
			if err != nil || loaded.Fingerprint() != shared.Fingerprint() {
				t.Fatalf("the directory does not hold the installed CA: %v", err)
			}
			if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", st, err)
			}
		})
	}
	if _, _, err := Install(t.TempDir(), shared.PEM, ownKey); err == nil {
		t.Error("a key of another CA was installed")
	}
}

func mustWrite(t *testing.T, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}
