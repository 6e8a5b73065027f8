package main

import (
	"flag"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/server"
)

// tlsFlags are the server's flags for TLS and for bounding clients.
type tlsFlags struct {
	advertise                      string
	insecureHTTP                   bool
	readHeaderTimeout, bodyTimeout time.Duration
	maxConnections                 int
}

func (f *tlsFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.advertise, "advertise", "", "comma-separated host names and IP addresses agents and clients reach the server under (names in the generated certificate)")
	fs.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve plain HTTP instead of HTTPS (no certificate is generated)")
	fs.DurationVar(&f.readHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time a client has for the TLS handshake and a request's headers")
	fs.DurationVar(&f.bodyTimeout, "body-timeout", awsjson.DefaultBodyTimeout, "time a client has to send a request body")
	fs.IntVar(&f.maxConnections, "max-connections", server.DefaultMaxConnections, "open client connections at most (every agent holds one)")
}

func (f *tlsFlags) advertiseList() []string {
	var out []string
	for _, h := range strings.Split(f.advertise, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}
