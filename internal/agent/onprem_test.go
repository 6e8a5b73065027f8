package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOnPremConfigRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		cfg     OnPremConfig
		wantErr string
	}{
		{"iam user", OnPremConfig{IAMUserARN: "arn:aws:iam::111122223333:user/web-01", AWSAccessKeyID: "AKIA1", AWSSecretAccessKey: "s3cr3t", Region: "us-east-1", CutoverEndpoint: "https://cutover.example.com"}, ""},
		{"iam session", OnPremConfig{IAMSessionARN: "arn:aws:sts::1:assumed-role/r/web-01", AWSCredentialsFile: "/etc/creds", Region: "eu-west-1"}, ""},
		{"both arns", OnPremConfig{IAMUserARN: "a", IAMSessionARN: "b", AWSAccessKeyID: "k", AWSSecretAccessKey: "s", Region: "r"}, "mutually exclusive"},
		{"user without key", OnPremConfig{IAMUserARN: "a", Region: "r"}, "requires"},
		{"empty", OnPremConfig{}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf", "codedeploy.onpremises.yml")
			err := WriteOnPremConfig(path, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", info.Mode().Perm())
			}
			got, err := LoadOnPremConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.cfg {
				t.Fatalf("round trip = %+v, want %+v", got, tt.cfg)
			}
		})
	}
}

func TestLoadOnPremConfigOfficialFormat(t *testing.T) {
	// As written by `aws deploy register` / the docs.
	const official = `---
aws_access_key_id: AKIAEXAMPLE
aws_secret_access_key: wJalrXUtnFEMI
iam_user_arn: arn:aws:iam::444455556666:user/CodeDeployUser-OnPrem
region: us-west-2
`
	path := filepath.Join(t.TempDir(), "codedeploy.onpremises.yml")
	if err := os.WriteFile(path, []byte(official), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadOnPremConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostIdentifier() != "arn:aws:iam::444455556666:user/CodeDeployUser-OnPrem" || c.Region != "us-west-2" {
		t.Fatalf("config = %+v", c)
	}
	creds, err := c.CredentialsProvider().Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "AKIAEXAMPLE" || creds.SecretAccessKey != "wJalrXUtnFEMI" {
		t.Fatalf("creds = %+v, %v", creds, err)
	}

	if err := os.WriteFile(path, []byte("iam_user_arn: [unclosed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOnPremConfig(path); err == nil {
		t.Fatal("invalid YAML accepted")
	}
}

func TestSessionCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "credentials")
	if err := os.WriteFile(credFile, []byte("[other]\naws_access_key_id = NO\n[default]\naws_access_key_id = ASIA1\naws_secret_access_key = sec\naws_session_token = tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := OnPremConfig{IAMSessionARN: "arn:aws:sts::1:assumed-role/r/h", AWSCredentialsFile: credFile, Region: "us-east-1"}
	creds, err := c.CredentialsProvider().Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIA1" || creds.SecretAccessKey != "sec" || creds.SessionToken != "tok" || !creds.CanExpire {
		t.Fatalf("creds = %+v", creds)
	}
}
