package main

import (
	"flag"

	"github.com/cutoverhq/cutover/internal/revstore"
	"github.com/cutoverhq/cutover/internal/server"
)

// s3Flags configure the server's embedded revision store.
type s3Flags struct {
	enabled bool
	maxSize int64
}

func (f *s3Flags) declare(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "s3", true, "serve the embedded S3-compatible revision store on the API listener (objects in --data-dir/revisions); "+
		"set false when several replicas share an external S3 service, and point agents at it with --s3-endpoint")
	fs.Int64Var(&f.maxSize, "s3-max-object-size", revstore.DefaultMaxObjectSize, "largest object or multipart part the revision store accepts, in bytes")
}

func (f *s3Flags) apply(c *server.Config) {
	c.S3Disabled = !f.enabled
	c.S3MaxObjectSize = f.maxSize
}
