package deploy_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// bombZip is the finding's bundle: 32 entries of 64 MiB of zeros sharing
// one compressed block, ~2 MB declaring 2 GiB, with an appspec.
func bombZip(t *testing.T) []byte {
	t.Helper()
	const chunk = 64 << 20
	var block bytes.Buffer
	fw, _ := flate.NewWriter(&block, flate.BestCompression)
	if _, err := fw.Write(make([]byte, chunk)); err != nil {
		t.Fatal(err)
	}
	fw.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	w, _ := zw.Create("appspec.yml")
	w.Write([]byte("version: 0.0\nos: linux\n"))
	sum := crc32.ChecksumIEEE(make([]byte, chunk))
	for i := range 32 {
		h := &zip.FileHeader{Name: "data/" + strings.Repeat("z", i+1), Method: zip.Deflate, CRC32: sum,
			CompressedSize64: uint64(block.Len()), UncompressedSize64: chunk}
		raw, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		raw.Write(block.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestE2EAgentSafety runs the three findings through the server, a
// real agent and the Go SDK: each deployment fails at the right event with a
// diagnostic that says why, and nothing outside the bundle is run, copied
// or unpacked.
func TestE2EAgentSafety(t *testing.T) {
	e := newE2E(t)
	release := filepath.Join(t.TempDir(), "release")
	h := startHost(t, e.env, e.s3.URL, "host-1", "web", release)
	e.env.SetupGroup(t, "app", "web", "CodeDeployDefault.OneAtATime", "role", "web")
	dest := filepath.Join(t.TempDir(), "installed")
	// Deep enough to reach / from any deployment root: the official agent
	// runs the host's /bin/sh here, which exits 0 with stdin closed.
	hostShell := strings.Repeat("../", 30) + "bin/sh"

	tests := []struct {
		name  string
		body  []byte
		typ   types.BundleType
		event string
		code  types.LifecycleErrorCode
		msg   string
	}{
		{"hook location escapes", tarGz(t, []bfile{{name: "appspec.yml", body: "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: " + hostShell + "\n"}}),
			types.BundleTypeTarGZip, "BeforeInstall", types.LifecycleErrorCodeScriptMissing,
			"Script at specified location: " + hostShell + " was not run: "},
		{"hook location through a symlink", wrappedLinkBundle(t),
			types.BundleTypeTarGZip, "BeforeInstall", types.LifecycleErrorCodeScriptMissing, "Script at specified location: up/bundle.tar was not run: it resolves through a symlink to "},
		{"files source escapes", tarGz(t, []bfile{{name: "appspec.yml", body: "version: 0.0\nos: linux\nfiles:\n  - source: ../..\n    destination: " + dest + "\n"}}),
			types.BundleTypeTarGZip, "Install", types.LifecycleErrorCodeUnknownError, `files source "../..": it leads outside the deployment archive`},
		{"zip bomb", bombZip(t), types.BundleTypeZip, "DownloadBundle", types.LifecycleErrorCodeUnknownError, "an expansion ratio above 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "app/" + strings.ReplaceAll(tt.name, " ", "-")
			etag, version := e.s3.Put(t, e2eBucket, key, tt.body)
			rev := &types.RevisionLocation{RevisionType: types.RevisionLocationTypeS3, S3Location: &types.S3Location{
				Bucket: aws.String(e2eBucket), Key: aws.String(key), BundleType: tt.typ,
				ETag: aws.String(strings.Trim(etag, `"`)), Version: aws.String(version)}}
			id := e.deploy(t, "app", "web", rev)
			e.waitDone(t, id, types.DeploymentStatusFailed)
			ev := findEvent(t, e.target(t, id, "host-1").LifecycleEvents, tt.event)
			d := ev.Diagnostics
			if ev.Status != types.LifecycleEventStatusFailed || d == nil {
				t.Fatalf("%s: %s %+v", tt.event, ev.Status, d)
			}
			t.Logf("%s diagnostics: %s: %s", tt.event, d.ErrorCode, aws.ToString(d.Message))
			if d.ErrorCode != tt.code || !strings.Contains(aws.ToString(d.Message), tt.msg) {
				t.Errorf("%s diagnostics %s %q, want %s containing %q", tt.event, d.ErrorCode, aws.ToString(d.Message), tt.code, tt.msg)
			}
		})
	}
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("files from outside the bundle were installed in %s", dest)
	}
	// Nothing big was unpacked anywhere under the agent's root.
	var big []string
	filepath.Walk(h.agent.RootDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 8<<20 {
			big = append(big, p)
		}
		return nil
	})
	if len(big) > 0 {
		t.Errorf("large files under the agent root: %v", big)
	}
}

// wrappedLinkBundle is a tgz whose root is one wrapper directory holding
// the appspec and an "up" symlink to "..": inside the archive while it is
// unpacked, but once the wrapper becomes the archive root (§6.2) "up" is the
// deployment directory. The BeforeInstall script is reached through it.
func wrappedLinkBundle(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	appspec := "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: up/bundle.tar\n"
	for _, h := range []*tar.Header{
		{Name: "w/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "w/appspec.yml", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(appspec))},
		{Name: "w/up", Typeflag: tar.TypeSymlink, Linkname: ".."},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(appspec))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}
