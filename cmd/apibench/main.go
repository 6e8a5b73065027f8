// Command apibench measures the overhead of a Cutover server on the
// CodeDeploy read path: GetApplication and BatchGetDeploymentGroups (25
// groups) over loopback against
//
//	(a) a real Cutover server (SQLite in a temporary directory, PostgreSQL
//	    with -database or a throwaway cluster with -postgres; -replicas 1,3
//	    runs several on one database), in process, plain HTTP, and
//	(b) a bare net/http handler answering the same response bytes, captured
//	    once from (a),
//
// in the same run, and prints requests/second, p50 and p99 latency, the
// servers' CPU per request and the Cutover/bare throughput ratio.
//
// The default generator (-generator raw) signs each request once with the
// aws-sdk-go-v2 SigV4 signer and replays its bytes over keep-alive
// connections from a separate process (this binary with -load), whose CPU
// share is reported so that it can be seen not to be the bottleneck.
// -generator sdk runs aws-sdk-go-v2 clients signing every request in
// process instead; they saturate before the server does.
//
//	go run ./cmd/apibench -duration 5s -concurrency 16,64
//	go run ./cmd/apibench -postgres -replicas 1,3
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/server"
)

const (
	accessKey = "AKIABENCHROOT0000001"
	secretKey = "bench-root-secret-key-00000000000000000"
	region    = "us-east-1"
	appName   = "bench"
	numGroups = 25
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "measuring time per cell")
	database := flag.String("database", "", "postgres:// URL for the Cutover server (default: SQLite in a temporary directory)")
	levels := flag.String("concurrency", "1,16,64", "comma-separated numbers of concurrent clients (raw: connections)")
	generator := flag.String("generator", "raw", "load generator: raw (one pre-signed request replayed over keep-alive connections by a separate process) or sdk (aws-sdk-go-v2 clients in process, signing every request)")
	postgres := flag.Bool("postgres", false, "raw generator: run Cutover on a throwaway PostgreSQL cluster (internal/pgtest)")
	replicas := flag.String("replicas", "1", "raw generator: comma-separated numbers of Cutover replicas (more than 1 needs PostgreSQL), load spread round-robin")
	only := flag.String("op", "", "measure only the operations whose name contains this")
	load := flag.Bool("load", false, "internal: be the raw generator process (spec on stdin)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the servers; with -generator sdk, the clients too) to this file")
	blockprofile := flag.String("blockprofile", "", "write a blocking profile of the run (servers; with -generator sdk, clients too) to this file")
	flag.Parse()
	if *blockprofile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		defer writeProfile("block", *blockprofile)
	}
	if *load {
		if err := loadChild(); err != nil {
			fmt.Fprintln(os.Stderr, "apibench -load:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "apibench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "apibench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	conc, err := parseLevels(*levels)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(2)
	}
	reps, err := parseLevels(*replicas)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(2)
	}
	switch *generator {
	case "raw":
		err = runRaw(rawConfig{duration: *duration, database: *database, postgres: *postgres, replicas: reps, conc: conc, only: *only})
	case "sdk":
		err = run(*duration, *database, conc)
	default:
		fmt.Fprintln(os.Stderr, "apibench: -generator is raw or sdk")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad -concurrency entry %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// operation is one measured call.
type operation struct {
	name    string
	target  string
	body    []byte
	call    func(ctx context.Context, c *codedeploy.Client) error
	skipped string // why the operation cannot be measured
}

func run(duration time.Duration, database string, conc []int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dataDir, err := os.MkdirTemp("", "apibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	srv, err := server.New(ctx, server.Config{
		Listen:              "127.0.0.1:0",
		DataDir:             dataDir,
		Database:            database,
		RootAccessKeyID:     accessKey,
		RootSecretAccessKey: secretKey,
		Logger:              slog.New(slog.DiscardHandler),
		InsecureHTTP:        true, // loopback; the figures compare against earlier HTTP runs
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	cutoverURL := srv.URL()

	ops, err := setup(ctx, cutoverURL)
	if err != nil {
		return err
	}
	// Capture each answer once; the bare server replays the bytes.
	answers := map[string][]byte{}
	for _, op := range ops {
		if op.skipped != "" {
			continue
		}
		b, err := capture(ctx, cutoverURL, op.target, op.body)
		if err != nil {
			return fmt.Errorf("capture %s: %w", op.name, err)
		}
		answers[op.target] = b
	}
	bareURL, stopBare, err := startBare(answers)
	if err != nil {
		return err
	}
	defer stopBare()

	backend := "SQLite"
	if database != "" {
		backend = "PostgreSQL"
	}
	fmt.Printf("apibench: %v per cell, Cutover on %s (%s), bare net/http on %s, GOMAXPROCS %d\n\n",
		duration, cutoverURL, backend, bareURL, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tclients\tCutover req/s\tp50\tp99\terrors\tbare req/s\tp50\tp99\terrors\tCutover/bare\t")
	cutoverClient, bareClient := newClient(cutoverURL, 128), newClient(bareURL, 128)
	for _, op := range ops {
		if op.skipped != "" {
			fmt.Fprintf(tw, "%s\t-\tskipped: %s\t\t\t\t\t\t\t\t\t\n", op.name, op.skipped)
			continue
		}
		for _, n := range conc {
			c := measure(ctx, cutoverClient, op, n, duration)
			b := measure(ctx, bareClient, op, n, duration)
			ratio := "-"
			if b.rps > 0 {
				ratio = fmt.Sprintf("%.2f", c.rps/b.rps)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t%.0f\t%s\t%s\t%d\t%s\t\n",
				op.name, n, c.rps, ms(c.p50), ms(c.p99), c.errors, b.rps, ms(b.p50), ms(b.p99), b.errors, ratio)
			if c.firstErr != nil {
				fmt.Fprintf(os.Stderr, "apibench: %s at %d clients (Cutover): %v\n", op.name, n, c.firstErr)
			}
			if b.firstErr != nil {
				fmt.Fprintf(os.Stderr, "apibench: %s at %d clients (bare): %v\n", op.name, n, b.firstErr)
			}
		}
	}
	return tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

func newClient(url string, conns int) *codedeploy.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2 * conns
	tr.MaxIdleConnsPerHost = conns
	hc := &http.Client{Transport: tr}
	return codedeploy.New(codedeploy.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   hc,
	})
}

// setup creates the application and its groups and returns the operations.
func setup(ctx context.Context, url string) ([]operation, error) {
	c := newClient(url, 4)
	if _, err := c.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(appName)}); err != nil {
		return nil, fmt.Errorf("create application: %w", err)
	}
	names := make([]string, numGroups)
	groupsSkipped := ""
	for i := range names {
		names[i] = fmt.Sprintf("group-%02d", i)
		_, err := c.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
			ApplicationName:     aws.String(appName),
			DeploymentGroupName: aws.String(names[i]),
			ServiceRoleArn:      aws.String("arn:aws:iam::000000000000:role/CodeDeployServiceRole"),
		})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidOperationException" && strings.Contains(ae.ErrorMessage(), "not available") {
			groupsSkipped = "CreateDeploymentGroup is not implemented yet"
			break
		}
		if err != nil {
			return nil, fmt.Errorf("create deployment group: %w", err)
		}
	}
	groupList := `"` + strings.Join(names, `","`) + `"`
	return []operation{
		{
			name:   "GetApplication",
			target: "CodeDeploy_20141006.GetApplication",
			body:   []byte(`{"applicationName":"` + appName + `"}`),
			call: func(ctx context.Context, c *codedeploy.Client) error {
				_, err := c.GetApplication(ctx, &codedeploy.GetApplicationInput{ApplicationName: aws.String(appName)})
				return err
			},
		},
		{
			name:    fmt.Sprintf("BatchGetDeploymentGroups(%d)", numGroups),
			target:  "CodeDeploy_20141006.BatchGetDeploymentGroups",
			body:    []byte(`{"applicationName":"` + appName + `","deploymentGroupNames":[` + groupList + `]}`),
			skipped: groupsSkipped,
			call: func(ctx context.Context, c *codedeploy.Client) error {
				out, err := c.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String(appName), DeploymentGroupNames: names})
				if err == nil && len(out.DeploymentGroupsInfo) != numGroups {
					err = fmt.Errorf("%d groups answered", len(out.DeploymentGroupsInfo))
				}
				return err
			},
		},
	}, nil
}

// capture makes one signed request and returns the response body.
func capture(ctx context.Context, url, target string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "codedeploy", region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, nil
}

// startBare serves the captured answers by X-Amz-Target with the same
// headers, doing nothing else.
func startBare(answers map[string][]byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	lengths := map[string]string{}
	for k, v := range answers {
		lengths[k] = strconv.Itoa(len(v))
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		target := r.Header.Get("X-Amz-Target")
		b, ok := answers[target]
		if !ok {
			http.Error(w, "unknown target", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
		w.Header().Set("Content-Length", lengths[target])
		_, _ = w.Write(b)
	})
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	firstErr error
}

// measure runs n clients calling op for d after a short warm-up.
func measure(ctx context.Context, c *codedeploy.Client, op operation, n int, d time.Duration) result {
	warm := min(d/10, 500*time.Millisecond)
	start := time.Now()
	measureFrom, stop := start.Add(warm), start.Add(warm+d)
	lat := make([][]time.Duration, n)
	errs := make([]int, n)
	firstErrs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for {
				t0 := time.Now()
				if t0.After(stop) {
					return
				}
				err := op.call(ctx, c)
				t1 := time.Now()
				if t0.Before(measureFrom) || t1.After(stop) {
					continue
				}
				if err != nil {
					errs[w]++
					if firstErrs[w] == nil {
						firstErrs[w] = err
					}
					continue
				}
				lat[w] = append(lat[w], t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	r := result{}
	for w := range n {
		all = append(all, lat[w]...)
		r.errors += errs[w]
		if r.firstErr == nil {
			r.firstErr = firstErrs[w]
		}
	}
	if len(all) == 0 {
		return r
	}
	slices.Sort(all)
	r.rps = float64(len(all)) / d.Seconds()
	r.p50 = all[len(all)*50/100]
	r.p99 = all[min(len(all)*99/100, len(all)-1)]
	return r
}

func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
	}
}
