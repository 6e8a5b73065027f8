package servertest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// HookBundle builds a tar.gz revision whose appspec runs the given shell
// scripts as hooks (hook name -> script body; no files are installed).
func HookBundle(t testing.TB, hooks map[string]string) []byte {
	t.Helper()
	var spec strings.Builder
	spec.WriteString("version: 0.0\nos: linux\n")
	if len(hooks) > 0 {
		spec.WriteString("hooks:\n")
	}
	var files []File
	for _, h := range slices.Sorted(maps.Keys(hooks)) {
		fmt.Fprintf(&spec, "  %s:\n    - location: scripts/%s.sh\n      timeout: 120\n", h, h)
		files = append(files, File{Name: "scripts/" + h + ".sh", Mode: 0o755, Body: "#!/bin/sh\nset -e\n" + hooks[h]})
	}
	files = append(files, File{Name: "appspec.yml", Body: spec.String()})
	return TarGz(t, files...)
}

// UploadRevision puts a bundle in the bucket and returns its location.
func (s *S3) UploadRevision(t testing.TB, bucket, key string, bundle []byte) *cdtypes.RevisionLocation {
	t.Helper()
	etag, version := s.Put(t, bucket, key, bundle)
	return &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3, S3Location: &cdtypes.S3Location{
		Bucket: aws.String(bucket), Key: aws.String(key), BundleType: cdtypes.BundleTypeTarGZip,
		ETag: aws.String(strings.Trim(etag, `"`)), Version: aws.String(version),
	}}
}
