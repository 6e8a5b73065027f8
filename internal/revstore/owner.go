package revstore

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/atomicfile"
)

// ownersDir holds one file per bucket naming the account that created it
// (next to, not inside, the buckets directory: it must not be a bucket).
const ownersDir = "owners"

// ownerOf returns the account that owns an existing bucket, and whether
// the bucket exists. A bucket without an owner file was created before
// buckets had owners: it belongs to Config.DefaultOwner.
func (s *Store) ownerOf(bucket string) (string, bool, error) {
	fi, err := s.buckets.Stat(bucket)
	if err != nil || !fi.IsDir() {
		return "", false, nil
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, ownersDir, bucket))
	if os.IsNotExist(err) {
		return s.cfg.DefaultOwner, true, nil
	}
	if err != nil {
		return "", true, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// BucketOwner returns the account owning bucket, and whether it exists.
func (s *Store) BucketOwner(bucket string) (string, bool, error) { return s.ownerOf(bucket) }

// setOwner records the account a bucket is created for. It is written
// before the bucket directory: a bucket never exists under the wrong owner.
func (s *Store) setOwner(bucket, account string) error {
	return atomicfile.Write(filepath.Join(s.cfg.Dir, ownersDir, bucket), []byte(account+"\n"), 0o600)
}

// CreateBucket creates a bucket owned by account (Config.DefaultOwner
// when empty) unless it exists; an existing bucket keeps its owner.
func (s *Store) CreateBucket(name, account string) error {
	if account == "" {
		account = s.cfg.DefaultOwner
	}
	if ok, err := s.backend.BucketExists(name); err != nil || ok {
		return err
	}
	if err := s.setOwner(name, account); err != nil {
		return err
	}
	return s.backend.CreateBucket(name)
}

// checkOwner enforces bucket ownership for a request of account: as on
// S3, another account's bucket answers AccessDenied (and creating it
// BucketAlreadyExists), and the source of a copy must be the caller's too.
// A bucket about to be created (CreateBucket, or any request when
// AutoBucket is set) is recorded as the caller's first.
func (s *Store) checkOwner(r *http.Request, bucket, account string) *s3Error {
	owner, exists, err := s.ownerOf(bucket)
	if err != nil {
		return internalError(err)
	}
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	createBucket := r.Method == http.MethodPut && key == "" && len(r.URL.Query()) == 0
	switch {
	case !exists && (createBucket || s.cfg.AutoBucket):
		if err := s.setOwner(bucket, account); err != nil {
			return internalError(err)
		}
	case exists && owner != account && createBucket:
		return &s3Error{Code: "BucketAlreadyExists", Status: http.StatusConflict,
			Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."}
	case exists && owner != account:
		return accessDenied()
	}
	if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
		if u, err := url.PathUnescape(src); err == nil {
			src = u
		}
		srcBucket, _, _ := strings.Cut(strings.TrimPrefix(src, "/"), "/")
		if o, ok, err := s.ownerOf(srcBucket); err != nil {
			return internalError(err)
		} else if ok && o != account {
			return accessDenied()
		}
	}
	return nil
}

func accessDenied() *s3Error {
	return &s3Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied"}
}

// listBuckets answers ListBuckets with the buckets account owns (every
// bucket of the store would show other accounts' names).
func (s *Store) listBuckets(w http.ResponseWriter, account string) *s3Error {
	type bucket struct {
		Name         string
		CreationDate string
	}
	out := struct {
		XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
		Owner   struct{ ID, DisplayName string }
		Buckets []bucket `xml:"Buckets>Bucket"`
	}{}
	out.Owner.ID, out.Owner.DisplayName = account, account
	dirs, err := os.ReadDir(filepath.Join(s.cfg.Dir, "buckets"))
	if err != nil && !os.IsNotExist(err) {
		return internalError(err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		owner, ok, err := s.ownerOf(d.Name())
		if err != nil {
			return internalError(err)
		}
		if !ok || owner != account {
			continue
		}
		var created time.Time
		if fi, err := d.Info(); err == nil {
			created = fi.ModTime()
		}
		out.Buckets = append(out.Buckets, bucket{Name: d.Name(), CreationDate: created.UTC().Format("2006-01-02T15:04:05.000Z")})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Name < out.Buckets[j].Name })
	body, err := xml.Marshal(out)
	if err != nil {
		return internalError(fmt.Errorf("list buckets: %w", err))
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
	return nil
}
