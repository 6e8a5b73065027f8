package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
	"github.com/cutoverhq/cutover/internal/tlsca"
)

// fetchCA downloads the server's CA certificate from endpoint/ca.pem and
// accepts it only if its SHA-256 fingerprint is the one the operator read
// off the server, and if the server's own certificate chains to it. The
// download itself cannot verify the server (the CA is what is being
// fetched); the fingerprint is what makes it safe.
func fetchCA(ctx context.Context, endpoint, fingerprint string) ([]byte, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--ca-fingerprint needs an https:// endpoint, not %q", endpoint)
	}
	var peer []*x509.Certificate
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, // checked below against the pinned fingerprint
			VerifyConnection: func(cs tls.ConnectionState) error {
				peer = cs.PeerCertificates
				return nil
			},
		},
		ResponseHeaderTimeout: 30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.JoinPath("/ca.pem").String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the server's CA: %w", err)
	}
	defer resp.Body.Close()
	pem, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetch the server's CA: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the server's CA: GET /ca.pem answered %s (does the server use its own CA, not --tls-cert?)", resp.Status)
	}
	ca, err := tlsca.ParseCertificate(pem)
	if err != nil {
		return nil, fmt.Errorf("the server's /ca.pem: %w", err)
	}
	if !tlsca.MatchFingerprint(fingerprint, ca) {
		return nil, fmt.Errorf("the server's CA has fingerprint %s, not the %s given: refusing to trust it", tlsca.Fingerprint(ca), fingerprint)
	}
	if len(peer) == 0 {
		return nil, errors.New("the server presented no certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: u.Hostname()}); err != nil {
		return nil, fmt.Errorf("the server's certificate is not valid for %s under its CA (add the name to the server's --advertise): %w", u.Hostname(), err)
	}
	return pem, nil
}

// httpClient trusts caFile (PEM) for the Cutover endpoint, and nothing
// else there: a pinned CA must not be bypassable through the system store.
// Other hosts (S3, GitHub) are verified against the system roots plus
// caFile. The standard AWS_CA_BUNDLE variable is honoured when caFile is
// empty; without either the client is nil (the system roots everywhere).
func httpClient(caFile, endpoint string) (*http.Client, error) {
	if caFile == "" {
		caFile = os.Getenv("AWS_CA_BUNDLE")
	}
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pinned := x509.NewCertPool()
	if !pinned.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificates in %s", caFile)
	}
	wide, err := x509.SystemCertPool()
	if err != nil {
		wide = x509.NewCertPool()
	}
	wide.AppendCertsFromPEM(pem)
	transport := func(roots *x509.CertPool) *http.Transport {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		tr.ResponseHeaderTimeout = protocol.ReadTimeout
		return tr
	}
	rt := &pinnedTransport{pinned: transport(pinned), other: transport(wide)}
	if u, err := url.Parse(endpoint); err == nil {
		rt.host = endpointHostPort(u)
	}
	return &http.Client{Transport: rt}, nil
}

// pinnedTransport sends requests for host through pinned, others through
// other.
type pinnedTransport struct {
	host          string
	pinned, other http.RoundTripper
}

func (t *pinnedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if endpointHostPort(r.URL) == t.host {
		return t.pinned.RoundTrip(r)
	}
	return t.other.RoundTrip(r)
}

func endpointHostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
