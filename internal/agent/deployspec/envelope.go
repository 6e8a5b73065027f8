// Package deployspec decodes the deployment specification that the server
// returns from GetDeploymentSpecification: the signed envelope and the JSON
// document inside it.
package deployspec

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/smallstep/pkcs7"
)

// Envelope formats the agent accepts.
const (
	FormatPKCS7JSON = "PKCS7/JSON"
	FormatTextJSON  = "TEXT/JSON"
)

// ErrUnsupportedFormat is returned for any envelope format other than
// PKCS7/JSON and TEXT/JSON.
var ErrUnsupportedFormat = errors.New("unsupported DeploymentSpecification format")

// OpenEnvelope returns the JSON document carried by a GenericEnvelope.
//
// PKCS7/JSON payloads must be PEM-encoded SignedData with attached content and
// an embedded signer certificate, as the official agents require. Unlike Ruby
// 1.8.1, which ignores the verification result, the signature is checked (as
// the v2 agent does); the signer chain is not, because the Cutover server signs
// with a self-signed certificate. If pinned is non-nil the signer certificate
// must be exactly that certificate, which is what gives the check its value.
//
// TEXT/JSON is accepted unsigned; pinned must then be nil, because accepting
// an unsigned spec while a signer is pinned would defeat the pin.
func OpenEnvelope(format, payload string, pinned *x509.Certificate) ([]byte, error) {
	switch format {
	case FormatTextJSON:
		if pinned != nil {
			return nil, fmt.Errorf("%w: %s (a spec-signing certificate is pinned, unsigned specs are refused)", ErrUnsupportedFormat, format)
		}
		return []byte(payload), nil
	case FormatPKCS7JSON:
		return openPKCS7(payload, pinned)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedFormat, format)
	}
}

func openPKCS7(payload string, pinned *x509.Certificate) ([]byte, error) {
	block, _ := pem.Decode([]byte(payload))
	if block == nil {
		return nil, errors.New("PKCS7/JSON payload is not PEM encoded")
	}
	if block.Type != "PKCS7" && block.Type != "CMS" {
		return nil, fmt.Errorf("PKCS7/JSON payload has PEM type %q, want PKCS7", block.Type)
	}
	p7, err := pkcs7.Parse(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#7: %w", err)
	}
	if len(p7.Content) == 0 {
		// Detached signatures carry no content; the agent has nothing to read.
		return nil, errors.New("PKCS#7 SignedData has no attached content")
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, errors.New("PKCS#7 SignedData must have exactly one signer with an embedded certificate")
	}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("verify deployment specification signature: %w", err)
	}
	if pinned != nil && !bytes.Equal(signer.Raw, pinned.Raw) {
		return nil, fmt.Errorf("deployment specification signed by %q, which is not the pinned certificate", signer.Subject.String())
	}
	if !utf8.Valid(p7.Content) {
		return nil, errors.New("deployment specification is not valid UTF-8")
	}
	return p7.Content, nil
}

// LoadCertificate reads a PEM certificate file, for pinning the spec signer.
func LoadCertificate(path string) (*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return cert, nil
		}
	}
}
