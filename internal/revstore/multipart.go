package revstore

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// backend is s3afero plus multipart uploads kept on disk. gofakes3's own
// multipart support holds every part in memory until the upload completes
// and then the whole object once more; bundles are large, so parts are
// files here, and completing an upload streams them into the object. An
// upload in progress also survives a restart, as on S3.
//
// The ETag CompleteMultipartUpload answers is the object's MD5, the one GET
// answers later, not S3's "<md5 of part md5s>-N": `aws deploy push`
// registers the first and the agent compares it with the second.
type backend struct {
	*s3afero.MultiBucketBackend
	dir     string // <store>/multipart/<upload id>/{upload.json,<n>,<n>.json}
	partial string // same file system, for atomic renames
	now     func() time.Time
	mu      sync.Mutex // orders part writes against completion and abort
}

var _ gofakes3.MultipartBackend = (*backend)(nil)

type uploadInfo struct {
	Bucket, Object string
	Meta           map[string]string
	Initiated      time.Time
}

type partInfo struct {
	ETag     string
	Size     int64
	Modified time.Time
}

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (b *backend) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	if ok, err := b.BucketExists(bucket); err != nil {
		return "", err
	} else if !ok {
		return "", gofakes3.BucketNotFound(bucket)
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	dir := filepath.Join(b.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	info := uploadInfo{Bucket: bucket, Object: object, Meta: meta, Initiated: b.now()}
	if err := b.writeJSON(filepath.Join(dir, "upload.json"), info); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return gofakes3.UploadID(id), nil
}

// upload returns the upload's directory after checking that it exists and
// belongs to bucket/object.
func (b *backend) upload(bucket, object string, id gofakes3.UploadID) (string, uploadInfo, error) {
	dir, info, err := b.readUpload(string(id))
	if err == nil && (info.Bucket != bucket || info.Object != object) {
		err = gofakes3.ErrNoSuchUpload
	}
	return dir, info, err
}

// readUpload reads an upload's record; ids are checked before they name a
// directory.
func (b *backend) readUpload(id string) (string, uploadInfo, error) {
	var info uploadInfo
	if !uploadIDRE.MatchString(id) {
		return "", info, gofakes3.ErrNoSuchUpload
	}
	dir := filepath.Join(b.dir, id)
	raw, err := os.ReadFile(filepath.Join(dir, "upload.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", info, gofakes3.ErrNoSuchUpload
	} else if err != nil {
		return "", info, err
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return "", info, fmt.Errorf("upload %s: %w", id, err)
	}
	return dir, info, nil
}

func (b *backend) UploadPart(bucket, object string, id gofakes3.UploadID, partNumber int, _ int64, input io.Reader) (string, error) {
	dir, _, err := b.upload(bucket, object, id)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(b.partial, "part-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	sum := md5.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), input)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	etag := `"` + hex.EncodeToString(sum.Sum(nil)) + `"`
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := os.Stat(dir); err != nil { // aborted or completed meanwhile
		return "", gofakes3.ErrNoSuchUpload
	}
	name := filepath.Join(dir, strconv.Itoa(partNumber))
	if err := b.writeJSON(name+".json", partInfo{ETag: etag, Size: n, Modified: b.now()}); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return "", err
	}
	return etag, nil
}

// parts lists the upload's parts in order.
func (b *backend) parts(dir string) (map[int]partInfo, []int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	parts := map[int]partInfo{}
	var nums []int
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, nil, err
		}
		var p partInfo
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, nil, err
		}
		// The data file is renamed in after its record; without it the
		// part's upload did not finish.
		if _, err := os.Stat(filepath.Join(dir, strconv.Itoa(n))); err != nil {
			continue
		}
		parts[n] = p
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return parts, nums, nil
}

func (b *backend) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	dir, _, err := b.upload(bucket, object, id)
	if err != nil {
		return nil, err
	}
	parts, nums, err := b.parts(dir)
	if err != nil {
		return nil, err
	}
	res := &gofakes3.ListMultipartUploadPartsResult{Bucket: bucket, Key: object, UploadID: id, PartNumberMarker: marker, MaxParts: limit}
	for _, n := range nums {
		if n <= marker {
			continue
		}
		if int64(len(res.Parts)) >= limit {
			res.IsTruncated = true
			break
		}
		p := parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{PartNumber: n, ETag: p.ETag, Size: p.Size, LastModified: gofakes3.NewContentTime(p.Modified)})
		res.NextPartNumberMarker = n
	}
	return res, nil
}

func (b *backend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	if ok, err := b.BucketExists(bucket); err != nil {
		return nil, err
	} else if !ok {
		return nil, gofakes3.BucketNotFound(bucket)
	}
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, err
	}
	type item struct {
		id   string
		info uploadInfo
	}
	var items []item
	for _, e := range ents {
		_, info, err := b.readUpload(e.Name())
		if err == nil && info.Bucket == bucket && strings.HasPrefix(info.Object, prefix.Prefix) {
			items = append(items, item{e.Name(), info})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := strings.Compare(a.info.Object, b.info.Object); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	res := &gofakes3.ListMultipartUploadsResult{Bucket: bucket, MaxUploads: limit, Prefix: prefix.Prefix}
	if marker != nil {
		res.KeyMarker, res.UploadIDMarker = marker.Object, marker.UploadID
	}
	for _, it := range items {
		if marker != nil && (it.info.Object < marker.Object || it.info.Object == marker.Object && (marker.UploadID == "" || it.id <= string(marker.UploadID))) {
			continue
		}
		if int64(len(res.Uploads)) >= limit {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{Key: it.info.Object, UploadID: gofakes3.UploadID(it.id), Initiated: gofakes3.NewContentTime(it.info.Initiated)})
		res.NextKeyMarker, res.NextUploadIDMarker = it.info.Object, gofakes3.UploadID(it.id)
	}
	return res, nil
}

func (b *backend) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	dir, _, err := b.upload(bucket, object, id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return os.RemoveAll(dir)
}

func (b *backend) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	dir, info, err := b.upload(bucket, object, id)
	if err != nil {
		return "", "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	parts, _, err := b.parts(dir)
	if err != nil {
		return "", "", err
	}
	if len(in.Parts) == 0 {
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "You must specify at least one part")
	}
	var readers []io.Reader
	var size int64
	defer func() {
		for _, r := range readers {
			r.(*os.File).Close()
		}
	}()
	for i, want := range in.Parts {
		if i > 0 && want.PartNumber <= in.Parts[i-1].PartNumber {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		p, ok := parts[want.PartNumber]
		if !ok || strings.Trim(want.ETag, `"`) != strings.Trim(p.ETag, `"`) {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded or its ETag differs", want.PartNumber)
		}
		f, err := os.Open(filepath.Join(dir, strconv.Itoa(want.PartNumber)))
		if err != nil {
			return "", "", err
		}
		readers = append(readers, f)
		size += p.Size
	}
	sum := md5.New()
	res, err := b.PutObject(bucket, object, info.Meta, io.TeeReader(io.MultiReader(readers...), sum), size, nil)
	if err != nil {
		return "", "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", "", err
	}
	return res.VersionID, `"` + hex.EncodeToString(sum.Sum(nil)) + `"`, nil
}

// writeJSON writes v to name atomically.
func (b *backend) writeJSON(name string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(b.partial, "json-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
