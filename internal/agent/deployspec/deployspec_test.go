package deployspec

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func selfSigned(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func sign(t *testing.T, content []byte, cert *x509.Certificate, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemPKCS7(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der}))
}

const specJSON = `{"DeploymentId":"d-ABCDEF123","DeploymentGroupId":"dg-1","DeploymentGroupName":"web","ApplicationName":"app","Revision":{"RevisionType":"String","StringRevision":{"Content":"version: 0.0\nos: linux\n"}}}`

func TestOpenEnvelope(t *testing.T) {
	cert, key := selfSigned(t, "cutover spec signer")
	other, _ := selfSigned(t, "someone else")
	good := sign(t, []byte(specJSON), cert, key)

	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, []byte("d-ABCDEF123"))
	if i < 0 {
		t.Fatal("content not found in DER")
	}
	tampered[i+2] = 'X'

	sd, _ := pkcs7.NewSignedData([]byte(specJSON))
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	detached, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		format  string
		payload string
		pinned  *x509.Certificate
		wantErr string
	}{
		{"pkcs7 ok", FormatPKCS7JSON, pemPKCS7(good), nil, ""},
		{"pkcs7 pinned ok", FormatPKCS7JSON, pemPKCS7(good), cert, ""},
		{"pkcs7 pinned other", FormatPKCS7JSON, pemPKCS7(good), other, "not the pinned certificate"},
		{"pkcs7 tampered", FormatPKCS7JSON, pemPKCS7(tampered), nil, "verify"},
		{"pkcs7 detached", FormatPKCS7JSON, pemPKCS7(detached), nil, "no attached content"},
		{"pkcs7 not pem", FormatPKCS7JSON, "MIIB", nil, "not PEM"},
		{"text ok", FormatTextJSON, specJSON, nil, ""},
		{"text refused when pinned", FormatTextJSON, specJSON, cert, "pinned"},
		{"unknown", "JSON", specJSON, nil, "unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OpenEnvelope(tt.format, tt.payload, tt.pinned)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != specJSON {
				t.Fatalf("content = %q", got)
			}
		})
	}
	if _, err := OpenEnvelope("JSON", "", nil); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("want ErrUnsupportedFormat, got %v", err)
	}
}

func TestLoadCertificate(t *testing.T) {
	cert, _ := selfSigned(t, "pin")
	path := filepath.Join(t.TempDir(), "cert.pem")
	data := append([]byte("junk\n"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCertificate(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(cert) {
		t.Fatal("certificate mismatch")
	}
}

func TestParse(t *testing.T) {
	base := `"DeploymentGroupId":"dg-1","DeploymentGroupName":"web","ApplicationName":"app"`
	tests := []struct {
		name    string
		json    string
		wantErr string
		check   func(t *testing.T, s *Spec)
	}{
		{
			name: "s3 with defaults",
			json: `{"DeploymentId":"d-1",` + base + `,"Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k.zip","BundleType":"zip","ETag":"\"abc\""}},"AgentActionOverrides":{"AgentOverrides":{"FileExistsBehavior":"overwrite"}}}`,
			check: func(t *testing.T, s *Spec) {
				if s.AppSpecFilename != "appspec.yml" || s.DeploymentType != "IN_PLACE" || s.DeploymentCreator != "user" {
					t.Errorf("defaults: %+v", s)
				}
				if s.FileExistsBehavior != "OVERWRITE" {
					t.Errorf("FileExistsBehavior = %q", s.FileExistsBehavior)
				}
				if s.Revision.S3 == nil || s.Revision.S3.ETag != `"abc"` || s.Revision.S3.Bucket != "b" {
					t.Errorf("S3 = %+v", s.Revision.S3)
				}
			},
		},
		{
			name: "arn deployment id",
			json: `{"DeploymentId":"arn:aws:codedeploy:us-east-1:1234:deployment/d-XYZ",` + base + `,"Revision":{"RevisionType":"String","StringRevision":{"Content":"x"}}}`,
			check: func(t *testing.T, s *Spec) {
				if s.DeploymentID != "d-XYZ" {
					t.Errorf("DeploymentID = %q", s.DeploymentID)
				}
			},
		},
		{
			name: "github default bundle type",
			json: `{"DeploymentId":"d-1",` + base + `,"GitHubAccessToken":"tok","DeploymentCreator":"codeDeployRollback","DeploymentType":"BLUE_GREEN","Revision":{"RevisionType":"GitHub","GitHubRevision":{"Account":"a","Repository":"r","CommitId":"c0ffee"}}}`,
			check: func(t *testing.T, s *Spec) {
				if s.Revision.GitHub.BundleType != "tar" || s.GitHubAccessToken != "tok" || !s.IsBlueGreenRollback() {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{
			name: "appspec content",
			json: `{"DeploymentId":"d-1",` + base + `,"AppSpecFilename":"deploy/appspec.yaml","Revision":{"RevisionType":"AppSpecContent","AppSpecContent":{"Content":"c","Sha256":"ABC"}}}`,
			check: func(t *testing.T, s *Spec) {
				if s.Revision.Content.Sha256 != "abc" || s.AppSpecFilename != "deploy/appspec.yaml" {
					t.Errorf("spec = %+v", s)
				}
			},
		},
		{name: "missing group name", json: `{"DeploymentId":"d-1","DeploymentGroupId":"g","ApplicationName":"a","Revision":{"RevisionType":"String","StringRevision":{"Content":"x"}}}`, wantErr: "DeploymentGroupName"},
		{name: "unsafe group id", json: `{"DeploymentId":"d-1","DeploymentGroupId":"../etc","DeploymentGroupName":"w","ApplicationName":"a","Revision":{"RevisionType":"String","StringRevision":{"Content":"x"}}}`, wantErr: "safe file name"},
		{name: "s3 missing bundle type", json: `{"DeploymentId":"d-1",` + base + `,"Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k"}}}`, wantErr: "BundleType"},
		{name: "s3 bad bundle type", json: `{"DeploymentId":"d-1",` + base + `,"Revision":{"RevisionType":"S3","S3Revision":{"Bucket":"b","Key":"k","BundleType":"rar"}}}`, wantErr: "rar"},
		{name: "local file refused", json: `{"DeploymentId":"d-1",` + base + `,"Revision":{"RevisionType":"Local File"}}`, wantErr: "unsupported RevisionType"},
		{name: "appspec escapes", json: `{"DeploymentId":"d-1",` + base + `,"AppSpecFilename":"../x.yml","Revision":{"RevisionType":"String","StringRevision":{"Content":"x"}}}`, wantErr: "leaves"},
		{name: "bad file exists behavior", json: `{"DeploymentId":"d-1",` + base + `,"AgentActionOverrides":{"AgentOverrides":{"FileExistsBehavior":"MERGE"}},"Revision":{"RevisionType":"String","StringRevision":{"Content":"x"}}}`, wantErr: "FileExistsBehavior"},
		{name: "not json", json: `{`, wantErr: "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.json))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}
