// Package tlsca keeps a server's own certificate authority in its data
// directory and issues the server's TLS certificate from it, so that a
// server serves HTTPS from its first start. Clients pin the authority by
// the SHA-256 fingerprint the server prints (trust on first use, checked).
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/atomicfile"
)

// File names in the data directory.
const (
	CertFile = "ca.pem"
	keyFile  = "ca.key"
)

const (
	caValidity     = 20 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour
	// renewBefore reissues the server certificate this long before it
	// expires, while the server runs.
	renewBefore = 30 * 24 * time.Hour
)

// Authority is a certificate authority whose key never leaves the data
// directory.
type Authority struct {
	Cert *x509.Certificate
	PEM  []byte // the certificate, PEM-encoded, as clients fetch it
	Path string // where PEM is stored
	key  *ecdsa.PrivateKey
}

// LoadOrCreate loads the authority kept in dir, creating it on first use.
func LoadOrCreate(dir string, now time.Time) (*Authority, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, keyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		if a, err := parse(certPath, certPEM, keyPEM); err == nil {
			return a, nil
		}
		// Perhaps still being written by another process sharing the
		// directory.
		return awaitOther(certPath, keyPath)
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return nil, fmt.Errorf("tls ca: %w", cerr)
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return nil, fmt.Errorf("tls ca: %w", kerr)
	default:
		return awaitOther(certPath, keyPath)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Cutover CA " + host, Organization: []string{"Cutover"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	// The key first: a certificate without its key would block restarts.
	if err := writeNew(keyPath, keyPEM, 0o600); errors.Is(err, os.ErrExist) {
		// Another process sharing the directory made its CA first: use it.
		return awaitOther(certPath, keyPath)
	} else if err != nil {
		return nil, err
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return parse(certPath, certPEM, keyPEM)
}

// awaitOther loads the CA another process sharing the directory is
// writing (key first, then certificate). If it never completes, one file
// is missing or broken for good.
func awaitOther(certPath, keyPath string) (*Authority, error) {
	var err error
	for range 30 {
		var certPEM, keyPEM []byte
		if certPEM, err = os.ReadFile(certPath); err == nil {
			if keyPEM, err = os.ReadFile(keyPath); err == nil {
				var a *Authority
				if a, err = parse(certPath, certPEM, keyPEM); err == nil {
					return a, nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("tls ca: %s and %s do not make a CA (%w); restore them, or remove both to create a new CA (agents must then be registered again)", certPath, keyPath, err)
}

// writeNew writes a file that must not exist yet, so two servers starting
// on one directory cannot each keep a different CA.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("tls ca: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tls ca: write %s: %w", path, err)
	}
	return nil
}

// KeyPEM is the authority's private key, PKCS#8 in PEM, for keeping it
// (sealed) where other replicas find it.
func (a *Authority) KeyPEM() ([]byte, error) {
	kb, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// Install makes the authority given as PEM the one kept in dir, replacing
// the files there when they hold another (replicas share one authority
// kept in their database; each data directory keeps a copy so that
// operators find ca.pem where a single server keeps it). replaced reports
// whether dir held a different authority.
func Install(dir string, certPEM, keyPEM []byte) (a *Authority, replaced bool, err error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, keyFile)
	if a, err = parse(certPath, certPEM, keyPEM); err != nil {
		return nil, false, err
	}
	oldCert, cerr := os.ReadFile(certPath)
	oldKey, kerr := os.ReadFile(keyPath)
	if cerr == nil && kerr == nil && string(oldCert) == string(certPEM) && string(oldKey) == string(keyPEM) {
		return a, false, nil
	}
	replaced = cerr == nil && string(oldCert) != string(certPEM)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("tls ca: %w", err)
	}
	// The key first, as LoadOrCreate does; each file is replaced whole.
	if err := atomicfile.WriteSync(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, fmt.Errorf("tls ca: %w", err)
	}
	if err := atomicfile.WriteSync(certPath, certPEM, 0o644); err != nil {
		return nil, false, fmt.Errorf("tls ca: %w", err)
	}
	return a, replaced, nil
}

func parse(certPath string, certPEM, keyPEM []byte) (*Authority, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("tls ca: no PEM key next to %s", certPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tls ca: key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("tls ca: the key does not belong to %s", certPath)
	}
	return &Authority{Cert: cert, PEM: certPEM, Path: certPath, key: key}, nil
}

// ParseCertificate parses the first certificate of a PEM text and checks
// that it is a certificate authority.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("not a CA certificate")
	}
	return cert, nil
}

// Fingerprint is the SHA-256 digest of the authority's certificate, in the
// form `openssl x509 -noout -fingerprint -sha256` prints.
func (a *Authority) Fingerprint() string { return Fingerprint(a.Cert) }

// Fingerprint is the SHA-256 digest of cert's DER encoding as upper-case
// hex pairs joined by colons.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

// MatchFingerprint reports whether want, in any case, with or without
// colons, and with or without a "sha256:"-style prefix, is cert's SHA-256
// fingerprint.
func MatchFingerprint(want string, cert *x509.Certificate) bool {
	norm := func(s string) string {
		if i := strings.LastIndexByte(s, '='); i >= 0 { // "SHA256 Fingerprint=…"
			s = s[i+1:]
		}
		s = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
		return strings.NewReplacer(":", "", " ", "").Replace(s)
	}
	w := norm(want)
	return len(w) == 2*sha256.Size && w == norm(Fingerprint(cert))
}

// Hosts returns the names a certificate for a server listening on listen
// must carry: the listen host, or for a wildcard address the loopback
// names, the host name and every interface address; plus advertise (host
// names or IP addresses under which clients reach the server).
func Hosts(listen string, advertise []string) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	var hosts []string
	ip := net.ParseIP(host)
	switch {
	case host == "" || ip != nil && ip.IsUnspecified():
		hosts = append(hosts, "localhost", "127.0.0.1", "::1")
		if h, err := os.Hostname(); err == nil && h != "" {
			hosts = append(hosts, h)
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
					hosts = append(hosts, n.IP.String())
				}
			}
		}
	case ip != nil && ip.IsLoopback(), host == "localhost":
		hosts = append(hosts, "localhost", "127.0.0.1", "::1")
	default:
		hosts = append(hosts, host)
	}
	for _, a := range advertise {
		if a = strings.TrimSpace(a); a != "" {
			if h, _, err := net.SplitHostPort(a); err == nil {
				a = h
			}
			hosts = append(hosts, a)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// Issuer hands out the server certificate for hosts, issued by the
// authority and reissued before it expires. Its GetCertificate fits
// tls.Config.
type Issuer struct {
	CA    *Authority
	Hosts []string
	Now   func() time.Time // nil: time.Now

	mu   sync.Mutex
	cert *tls.Certificate
}

// GetCertificate returns the current server certificate.
func (s *Issuer) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil && t.Before(s.cert.Leaf.NotAfter.Add(-renewBefore)) {
		return s.cert, nil
	}
	c, err := s.CA.issue(s.Hosts, t)
	if err != nil {
		return nil, err
	}
	s.cert = c
	return c, nil
}

func (a *Authority) issue(hosts []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	notAfter := now.Add(serverValidity)
	if notAfter.After(a.Cert.NotAfter) {
		notAfter = a.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Cutover server", Organization: []string{"Cutover"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("tls ca: issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// The chain includes the CA so that clients given only the server's
	// certificate chain (not the CA file) can still show what to pin.
	return &tls.Certificate{Certificate: [][]byte{der, a.Cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
