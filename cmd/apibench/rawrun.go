package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/pgtest"
	"github.com/cutoverhq/cutover/internal/server"
)

// rawConfig is the raw generator's run.
type rawConfig struct {
	duration time.Duration
	database string // "" for SQLite
	postgres bool   // start a throwaway PostgreSQL cluster (internal/pgtest)
	replicas []int  // numbers of replicas to measure, load spread round-robin
	conc     []int
	only     string // operation name filter
}

// replica is one running Cutover server.
type replica struct {
	srv    *server.Server
	served chan error
	dir    string
}

func startReplica(ctx context.Context, database, id string) (*replica, error) {
	dir, err := os.MkdirTemp("", "apibench-")
	if err != nil {
		return nil, err
	}
	srv, err := server.New(ctx, server.Config{
		Listen:              "127.0.0.1:0",
		DataDir:             dir,
		Database:            database,
		ReplicaID:           id,
		RootAccessKeyID:     accessKey,
		RootSecretAccessKey: secretKey,
		Logger:              slog.New(slog.DiscardHandler),
		// Plain HTTP on both sides: the bare handler is plain net/http too.
		InsecureHTTP: true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	r := &replica{srv: srv, served: make(chan error, 1), dir: dir}
	go func() { r.served <- srv.Serve(ctx) }()
	return r, nil
}

// stop ends the replica; ctx must be cancelled first (Serve returns then).
func (r *replica) stop() {
	<-r.served
	r.srv.Close()
	os.RemoveAll(r.dir)
}

func (r *replica) addr() string {
	u, _ := url.Parse(r.srv.URL())
	return u.Host
}

func runRaw(cfg rawConfig) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend := "SQLite"
	database := cfg.database
	if cfg.postgres {
		tb := &benchTB{}
		defer tb.cleanup()
		u, err := tb.run(func() string { return pgtest.Start(tb) })
		if err != nil {
			return err
		}
		database = u
	}
	if database != "" {
		backend = "PostgreSQL"
		// Replicas of one database share the key sealing its secrets.
		if os.Getenv("CUTOVER_SERVER_KEY") == "" {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			os.Setenv("CUTOVER_SERVER_KEY", hex.EncodeToString(key))
		}
	} else if slices.Max(cfg.replicas) > 1 {
		return fmt.Errorf("replicas need PostgreSQL (-postgres or -database)")
	}

	var reps []*replica
	defer func() {
		cancel()
		for _, r := range reps {
			r.stop()
		}
	}()
	grow := func(n int) error {
		for len(reps) < n {
			r, err := startReplica(ctx, database, fmt.Sprintf("bench-%d", len(reps)+1))
			if err != nil {
				return err
			}
			reps = append(reps, r)
		}
		return nil
	}
	if err := grow(1); err != nil {
		return err
	}
	ops, err := setup(ctx, reps[0].srv.URL())
	if err != nil {
		return err
	}
	answers := map[string][]byte{}
	for _, op := range ops {
		if op.skipped != "" {
			continue
		}
		b, err := capture(ctx, reps[0].srv.URL(), op.target, op.body)
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
	bareAddr := strings.TrimPrefix(bareURL, "http://")

	fmt.Printf("apibench (raw generator: one pre-signed request replayed per connection, separate process): %v per cell, %s, plain HTTP (Cutover -insecure-http, bare net/http), GOMAXPROCS %d\n\n",
		cfg.duration, backend, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\treplicas\tconns\tCutover req/s\tp50\tp99\terrors\tserver CPU\tµs/req\tgen CPU\tbare req/s\tp50\tp99\terrors\tserver CPU\tµs/req\tgen CPU\tCutover/bare\t")
	ncpu := float64(runtime.NumCPU())
	share := func(cpu time.Duration) string {
		return fmt.Sprintf("%.0f%%", 100*cpu.Seconds()/(cfg.duration.Seconds()*ncpu))
	}
	warm := min(cfg.duration/5, time.Second)
	perReq := func(cpu time.Duration, rps float64) string {
		if rps == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(cpu.Microseconds())/(rps*cfg.duration.Seconds()))
	}
	for _, n := range cfg.replicas {
		if err := grow(n); err != nil {
			return err
		}
		for _, op := range ops {
			if !strings.Contains(op.name, cfg.only) {
				continue
			}
			if op.skipped != "" {
				fmt.Fprintf(tw, "%s\t-\t-\tskipped: %s\t\t\t\t\t\t\t\t\t\t\t\t\n", op.name, op.skipped)
				continue
			}
			cut := loadSpec{Conns: 0, Warm: warm, Duration: cfg.duration}
			for _, r := range reps[:n] {
				req, err := signedRequest(ctx, r.addr(), op.target, op.body)
				if err != nil {
					return err
				}
				cut.Requests = append(cut.Requests, req)
				cut.Addrs = append(cut.Addrs, r.addr())
			}
			bareReq, err := signedRequest(ctx, bareAddr, op.target, op.body)
			if err != nil {
				return err
			}
			bare := loadSpec{Requests: [][]byte{bareReq}, Addrs: []string{bareAddr}, Warm: warm, Duration: cfg.duration}
			for _, conns := range cfg.conc {
				cut.Conns, bare.Conns = conns, conns
				c, cutCPU, err := loadWithCPU(ctx, cut)
				if err != nil {
					return err
				}
				b, bareCPU, err := loadWithCPU(ctx, bare)
				if err != nil {
					return err
				}
				ratio := "-"
				if b.rps > 0 {
					ratio = fmt.Sprintf("%.2f", c.rps/b.rps)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n",
					op.name, n, conns, c.rps, ms(c.P50), ms(c.P99), c.Errors, share(cutCPU), perReq(cutCPU, c.rps), share(c.CPU),
					b.rps, ms(b.P50), ms(b.P99), b.Errors, share(bareCPU), perReq(bareCPU, b.rps), share(b.CPU), ratio)
				if c.FirstErr != "" {
					fmt.Fprintf(os.Stderr, "apibench: %s at %d conns (Cutover): %s\n", op.name, conns, c.FirstErr)
				}
				if b.FirstErr != "" {
					fmt.Fprintf(os.Stderr, "apibench: %s at %d conns (bare): %s\n", op.name, conns, b.FirstErr)
				}
			}
		}
	}
	return tw.Flush()
}

// benchTB lets a command use internal/pgtest, which wants a testing.TB:
// only the methods pgtest calls are implemented (the embedded nil
// interface panics on any other), Fatalf/Skipf end the call made by run.
type benchTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

type tbStop struct{ err error }

func (t *benchTB) Helper() {}
func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}
func (t *benchTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "apibench: "+format+"\n", args...)
}
func (t *benchTB) Fatalf(format string, args ...any) { panic(tbStop{fmt.Errorf(format, args...)}) }
func (t *benchTB) Skipf(format string, args ...any)  { panic(tbStop{fmt.Errorf(format, args...)}) }

// run calls f, turning Fatalf and Skipf into an error.
func (t *benchTB) run(f func() string) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			stop, ok := r.(tbStop)
			if !ok {
				panic(r)
			}
			err = stop.err
		}
	}()
	return f(), nil
}

// cleanup runs the registered cleanups, last first, as testing does.
func (t *benchTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// loadWithCPU runs the generator for spec and returns, with its answer,
// this process's (the servers') CPU time over the measuring window.
func loadWithCPU(ctx context.Context, spec loadSpec) (cell, time.Duration, error) {
	// Both processes work to the same clock: the generator's start is
	// fixed here, far enough ahead for it to be running by then.
	spec.Start = time.Now().Add(300 * time.Millisecond)
	var cpu time.Duration
	var wg sync.WaitGroup
	from := spec.Start.Add(spec.Warm)
	wg.Go(func() { cpu = cpuDuring(from, from.Add(spec.Duration)) })
	c, err := runLoad(ctx, spec)
	wg.Wait()
	return c, cpu, err
}
