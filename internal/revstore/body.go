package revstore

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Payload markers a client may sign instead of the body's digest.
const (
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// unsignedTrailer is an aws-chunked body with an unsigned trailing
	// checksum; aws-cli and the Go SDK send it over HTTPS.
	unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// spooled is a request body read to a local file and checked against what
// the client signed or declared.
type spooled struct {
	file *os.File
	size int64
	sha  string // hex SHA-256 of the decoded body
}

// spool reads r's body (decoding aws-chunked) into a file in dir, at most
// limit decoded bytes, and checks it against the signed payload hash and any
// trailing checksum. Storing only verified bytes means a tampered or torn
// upload never reaches the store, and the store's lock is held only for a
// local copy, never while a slow client sends.
func spool(r *http.Request, dir string, limit int64, payloadHash string) (*spooled, *s3Error) {
	f, err := os.CreateTemp(dir, "upload-")
	if err != nil {
		return nil, internalError(fmt.Errorf("spool: %w", err))
	}
	sp := &spooled{file: f}
	ok := false
	defer func() {
		if !ok {
			sp.discard()
		}
	}()
	digest := sha256.New()
	var src io.Reader = r.Body
	var trailer *trailerCheck
	if payloadHash == unsignedTrailer {
		tc, e := newTrailerCheck(r.Header.Get("X-Amz-Trailer"))
		if e != nil {
			return nil, e
		}
		trailer = tc
		src = &chunkedReader{r: bufio.NewReader(r.Body), trailer: tc}
	}
	w := io.MultiWriter(f, digest)
	if trailer != nil {
		w = io.MultiWriter(f, digest, trailer.h)
	}
	n, err := io.Copy(w, io.LimitReader(src, limit+1))
	var se *s3Error
	switch {
	case errors.As(err, &se):
		return nil, se
	case err != nil:
		return nil, &s3Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "You did not provide the number of bytes specified by the Content-Length HTTP header: " + err.Error()}
	case n > limit:
		return nil, tooLarge(limit)
	}
	sp.size = n
	sp.sha = hex.EncodeToString(digest.Sum(nil))
	if trailer != nil {
		if e := trailer.verify(); e != nil {
			return nil, e
		}
		if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" && d != strconv.FormatInt(n, 10) {
			return nil, &s3Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "The decoded body length does not match x-amz-decoded-content-length."}
		}
	} else if payloadHash != unsignedPayload && payloadHash != sp.sha {
		return nil, &s3Error{Code: "XAmzContentSHA256Mismatch", Status: http.StatusBadRequest, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, internalError(err)
	}
	ok = true
	return sp, nil
}

func (sp *spooled) discard() {
	sp.file.Close()
	os.Remove(sp.file.Name())
}

// trailerCheck verifies the one trailing checksum an aws-chunked body
// declares in X-Amz-Trailer.
type trailerCheck struct {
	name string // e.g. x-amz-checksum-crc32
	h    hash.Hash
	got  string // base64, from the trailer
}

var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

func newTrailerCheck(declared string) (*trailerCheck, *s3Error) {
	name := strings.ToLower(strings.TrimSpace(declared))
	tc := &trailerCheck{name: name}
	switch name {
	case "x-amz-checksum-crc32":
		tc.h = crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		tc.h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		tc.h = crc64.New(crc64NVME)
	case "x-amz-checksum-sha1":
		tc.h = sha1.New()
	case "x-amz-checksum-sha256":
		tc.h = sha256.New()
	default:
		return nil, &s3Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
			Message: fmt.Sprintf("Unsupported x-amz-trailer %q: give one of x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256.", declared)}
	}
	return tc, nil
}

func (tc *trailerCheck) verify() *s3Error {
	if tc.got == "" {
		return &s3Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "The aws-chunked body ended without the " + tc.name + " trailer it declared."}
	}
	if want := base64.StdEncoding.EncodeToString(tc.h.Sum(nil)); tc.got != want {
		return &s3Error{Code: "BadDigest", Status: http.StatusBadRequest, Message: "The " + tc.name + " you specified did not match the calculated checksum."}
	}
	return nil
}

// maxChunkLine bounds a chunk header or trailer line.
const maxChunkLine = 4096

// chunkedReader decodes an aws-chunked body: "<hex size>[;ext]\r\n<data>\r\n"
// repeated, a zero-size chunk, then trailer lines and an empty line.
type chunkedReader struct {
	r       *bufio.Reader
	trailer *trailerCheck
	left    int64
	started bool
	done    bool
}

func malformedChunk(why string) *s3Error {
	return &s3Error{Code: "IncompleteBody", Status: http.StatusBadRequest, Message: "Malformed aws-chunked body: " + why}
}

func (c *chunkedReader) line() (string, error) {
	var b []byte
	for {
		part, isPrefix, err := c.r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", malformedChunk("unexpected end of body")
			}
			return "", err
		}
		b = append(b, part...)
		if len(b) > maxChunkLine {
			return "", malformedChunk("line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		if c.started {
			if l, err := c.line(); err != nil {
				return 0, err
			} else if l != "" {
				return 0, malformedChunk("chunk data longer than its size")
			}
		}
		c.started = true
		l, err := c.line()
		if err != nil {
			return 0, err
		}
		sizeHex, _, _ := strings.Cut(l, ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
		if err != nil || size < 0 {
			return 0, malformedChunk("bad chunk size")
		}
		if size == 0 {
			if err := c.readTrailers(); err != nil {
				return 0, err
			}
			c.done = true
			return 0, io.EOF
		}
		c.left = size
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if errors.Is(err, io.EOF) && c.left > 0 {
		return n, malformedChunk("unexpected end of body")
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (c *chunkedReader) readTrailers() error {
	for range 16 {
		l, err := c.line()
		if err != nil {
			return err
		}
		if l == "" {
			return nil
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return malformedChunk("bad trailer line")
		}
		if strings.EqualFold(strings.TrimSpace(name), c.trailer.name) {
			c.trailer.got = strings.TrimSpace(value)
		}
	}
	return malformedChunk("too many trailers")
}

func tooLarge(limit int64) *s3Error {
	return &s3Error{Code: "EntityTooLarge", Status: http.StatusBadRequest, Message: fmt.Sprintf("Your proposed upload exceeds the maximum allowed size of %d bytes.", limit)}
}
