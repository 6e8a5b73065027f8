package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/cutoverhq/cutover/internal/api"
	cd "github.com/cutoverhq/cutover/internal/model/codedeploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// SpecSigner wraps a deployment specification in an envelope.
type SpecSigner interface {
	Sign(spec []byte) (format, payload string, err error)
}

// TextSigner sends specifications as TEXT/JSON (Cutover's agent accepts it;
// the official agent needs PKCS7/JSON).
type TextSigner struct{}

// Sign implements SpecSigner.
func (TextSigner) Sign(spec []byte) (string, string, error) { return "TEXT/JSON", string(spec), nil }

// PKCS7Signer signs specifications as PEM PKCS#7 SignedData with the
// content attached and the signer certificate embedded: the only format the
// official agent accepts.
type PKCS7Signer struct {
	Cert *x509.Certificate
	Key  any
}

// Sign implements SpecSigner.
func (s *PKCS7Signer) Sign(spec []byte) (string, string, error) {
	sd, err := pkcs7.NewSignedData(spec)
	if err != nil {
		return "", "", err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(s.Cert, s.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", "", err
	}
	der, err := sd.Finish()
	if err != nil {
		return "", "", err
	}
	return "PKCS7/JSON", string(pem.EncodeToMemory(&pem.Block{Type: "PKCS7", Bytes: der})), nil
}

// LoadSpecSigner loads a PEM certificate and key to sign specifications
// with (--spec-cert, --spec-key).
func LoadSpecSigner(certPath, keyPath string) (*PKCS7Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("spec-signing certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("spec-signing key: %w", err)
	}
	return ParseSpecSigner(certPEM, keyPEM)
}

// ParseSpecSigner makes a signer of a PEM certificate and key.
func ParseSpecSigner(certPEM, keyPEM []byte) (*PKCS7Signer, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("spec-signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	return &PKCS7Signer{Cert: cert, Key: pair.PrivateKey}, nil
}

// NewSpecCertPEM creates a self-signed spec-signing certificate and key.
func NewSpecCertPEM() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Cutover deployment specification signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}

// buildSpec renders the deployment specification agents fetch (the fields
// the official agent reads, AGENT-SEMANTICS §4.2, plus Cutover's inline
// revision types).
func (r *agentService) buildSpec(rec *Record) []byte {
	deploymentType := "IN_PLACE"
	if rec.Engine.Kind.IsBlueGreen() {
		deploymentType = "BLUE_GREEN"
	}
	spec := map[string]any{
		"DeploymentId":        rec.ID,
		"DeploymentGroupId":   rec.GroupID,
		"DeploymentGroupName": rec.GroupName,
		"ApplicationName":     rec.ApplicationName,
		"DeploymentCreator":   rec.Creator,
		"DeploymentType":      deploymentType,
		"AgentActionOverrides": map[string]any{
			"AgentOverrides": map[string]any{"FileExistsBehavior": rec.FileExistsBehavior},
		},
	}
	rev := rec.Revision
	switch deref(rev.RevisionType) {
	case cd.RevisionLocationTypeS3:
		s := rev.S3Location
		s3 := map[string]any{"Bucket": deref(s.Bucket), "Key": deref(s.Key), "BundleType": deref(s.BundleType)}
		if s.Version != nil {
			s3["Version"] = *s.Version
		}
		if s.ETag != nil {
			s3["ETag"] = *s.ETag
		}
		spec["Revision"] = map[string]any{"RevisionType": "S3", "S3Revision": s3}
	case cd.RevisionLocationTypeGitHub:
		g := rev.GitHubLocation
		owner, repo, _ := strings.Cut(deref(g.Repository), "/")
		spec["Revision"] = map[string]any{"RevisionType": "GitHub", "GitHubRevision": map[string]any{
			"Account": owner, "Repository": repo, "CommitId": deref(g.CommitId), "BundleType": "tar",
		}}
		// The token is the application's linked GitHub account's, else
		// one stored (cutover github-token add) under the repository
		// owner's name; without one the download is anonymous.
		if r.cfg.Sealer != nil {
			for _, name := range []string{rec.GitHubAccountName, owner} {
				if name == "" {
					continue
				}
				var tok string
				_ = r.cfg.Store.View(context.Background(), func(tx store.Tx) error {
					t, err := api.GitHubToken(context.Background(), tx, r.cfg.Sealer, rec.Account, rec.Region, name)
					tok = t
					return err
				})
				if tok != "" {
					spec["GitHubAccessToken"] = tok
					break
				}
			}
		}
	case cd.RevisionLocationTypeString:
		//lint:ignore SA1019 the String revision type is still accepted by CodeDeploy.
		s := rev.String
		spec["Revision"] = map[string]any{"RevisionType": "String", "StringRevision": inline(deref(s.Content), deref(s.Sha256))}
	case cd.RevisionLocationTypeAppSpecContent:
		s := rev.AppSpecContent
		spec["Revision"] = map[string]any{"RevisionType": "AppSpecContent", "AppSpecContent": inline(deref(s.Content), deref(s.Sha256))}
	}
	b, _ := json.Marshal(spec)
	return b
}

func inline(content, sum string) map[string]any {
	if sum == "" {
		h := sha256.Sum256([]byte(content))
		sum = hex.EncodeToString(h[:])
	}
	return map[string]any{"Content": content, "Sha256": sum}
}
