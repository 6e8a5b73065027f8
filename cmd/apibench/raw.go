package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The raw generator replays one pre-signed request over keep-alive
// connections, so a request costs the generator a write and a header scan:
// the SDK clients cost more CPU than the server they measure. It runs as a
// child process (apibench -load) so its CPU time is read apart from the
// servers'.

// signedRequest returns the wire bytes of one POST of body to the server at
// addr (host:port), signed once with the aws-sdk-go-v2 signer; the same
// bytes are replayed for the whole run (within the 15-minute skew window).
func signedRequest(ctx context.Context, addr, target string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("User-Agent", "apibench")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "codedeploy", region, time.Now()); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadSpec is what the parent hands the generator process.
type loadSpec struct {
	Requests [][]byte // one per target server, connection i uses i%len
	Addrs    []string
	Conns    int
	Start    time.Time // when to open the connections (zero: at once)
	Warm     time.Duration
	Duration time.Duration
}

// loadResult is what the generator process answers.
type loadResult struct {
	Requests int
	Errors   int
	FirstErr string
	P50, P99 time.Duration
	CPU      time.Duration // the generator's CPU time inside the measuring window
}

// generate runs spec: Conns connections, each sending its request and
// reading the answer in a loop, counting answers that complete inside the
// measuring window.
func generate(spec loadSpec) loadResult {
	start := time.Now()
	if spec.Start.After(start) {
		time.Sleep(time.Until(spec.Start))
		start = spec.Start
	}
	from, stop := start.Add(spec.Warm), start.Add(spec.Warm+spec.Duration)
	lat := make([][]time.Duration, spec.Conns)
	errs := make([]int, spec.Conns)
	firstErrs := make([]error, spec.Conns)
	var wg sync.WaitGroup
	var cpu time.Duration
	wg.Go(func() { cpu = cpuDuring(from, stop) })
	for i := range spec.Conns {
		wg.Go(func() {
			lat[i] = make([]time.Duration, 0, 1<<16)
			k := i % len(spec.Addrs)
			errs[i], firstErrs[i] = connLoop(spec.Addrs[k], spec.Requests[k], from, stop, &lat[i])
		})
	}
	wg.Wait()
	r := loadResult{CPU: cpu}
	var all []time.Duration
	for i := range spec.Conns {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
		if r.FirstErr == "" && firstErrs[i] != nil {
			r.FirstErr = firstErrs[i].Error()
		}
	}
	r.Requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return r
}

// connLoop drives one connection until stop, reconnecting after an error.
func connLoop(addr string, req []byte, from, stop time.Time, lat *[]time.Duration) (errs int, first error) {
	fail := func(err error) {
		if time.Now().After(stop) {
			return
		}
		errs++
		if first == nil {
			first = err
		}
	}
	for time.Now().Before(stop) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fail(err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		br := bufio.NewReaderSize(c, 64<<10)
		for {
			t0 := time.Now()
			if t0.After(stop) {
				break
			}
			if _, err = c.Write(req); err == nil {
				err = readResponse(br)
			}
			if err != nil {
				fail(err)
				break
			}
			if t0.After(from) {
				*lat = append(*lat, time.Since(t0))
			}
		}
		_ = c.Close()
	}
	return errs, first
}

// readResponse reads one HTTP/1.1 response and discards its body; anything
// but a 200 with a Content-Length is an error.
func readResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil {
				return fmt.Errorf("content-length %q", value)
			}
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = br.Discard(length)
	return err
}

// loadChild is the generator process's main: a loadSpec on stdin, a
// loadResult on stdout.
func loadChild() error {
	var spec loadSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(generate(spec))
}

// cell is one measurement by the generator process.
type cell struct {
	loadResult
	rps float64
}

// runLoad starts the generator process for spec and waits for its answer.
func runLoad(ctx context.Context, spec loadSpec) (cell, error) {
	in, err := json.Marshal(spec)
	if err != nil {
		return cell{}, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-load")
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return cell{}, fmt.Errorf("generator: %w", err)
	}
	var c cell
	if err := json.NewDecoder(io.LimitReader(&out, 1<<20)).Decode(&c.loadResult); err != nil {
		return cell{}, fmt.Errorf("generator answer: %w", err)
	}
	c.rps = float64(c.Requests) / spec.Duration.Seconds()
	return c, nil
}

// cpuDuring returns the CPU time this process used between from and to,
// sleeping until then.
func cpuDuring(from, to time.Time) time.Duration {
	time.Sleep(time.Until(from))
	a := processCPU()
	time.Sleep(time.Until(to))
	return processCPU() - a
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
