// Command trafficbench compares the builtin load balancer with a real
// HAProxy in front of the same loopback backends: throughput, latency, and
// how fast a blue/green switch and its rollback take effect.
//
//	go run ./cmd/trafficbench -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/colorserver"

	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/builtin"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy"
)

func main() {
	clients := flag.Int("clients", 64, "concurrent keep-alive clients")
	duration := flag.Duration("duration", 10*time.Second, "load duration per router")
	backends := flag.Int("backends", 4, "backends (half blue, half green)")
	flag.Parse()
	if err := run(*clients, *duration, max(*backends, 2)); err != nil {
		fmt.Fprintln(os.Stderr, "trafficbench:", err)
		os.Exit(1)
	}
}

type result struct {
	name                   string
	served, failed         int64
	rps                    float64
	p50, p99               time.Duration
	switchLat, rollbackLat time.Duration
}

func run(clients int, d time.Duration, n int) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var blue, green []traffic.Backend
	for i := range n {
		color := "blue"
		if i%2 == 1 {
			color = "green"
		}
		addr, stop, err := colorserver.Start(color)
		if err != nil {
			return err
		}
		defer stop()
		b := traffic.Backend{ID: fmt.Sprintf("%s-%d", color, i), Addr: addr, Weight: 1}
		if color == "blue" {
			blue = append(blue, b)
		} else {
			green = append(green, b)
		}
	}
	tg := traffic.TargetGroupConfig{
		Name: "bench", Listen: "127.0.0.1:0", Mode: traffic.ModeHTTP,
		HealthCheck:         traffic.HealthCheck{Path: "/healthz", Interval: 200 * time.Millisecond, Timeout: time.Second},
		DeregistrationDelay: 5 * time.Second,
	}

	var results []result

	br, err := builtin.New([]traffic.TargetGroupConfig{tg}, builtin.Options{Logger: log})
	if err != nil {
		return err
	}
	addr, _ := br.Addr(tg.Name)
	res, err := bench(ctx, "builtin", br, addr.String(), blue, green, clients, d)
	br.Close()
	if err != nil {
		return err
	}
	results = append(results, res)

	dir, err := os.MkdirTemp("", "trafficbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	htg := tg
	htg.Listen, err = colorserver.FreeAddr()
	if err != nil {
		return err
	}
	p, err := haproxy.Start(ctx, dir, []traffic.TargetGroupConfig{htg})
	if err != nil {
		return fmt.Errorf("starting haproxy (install Debian package haproxy): %w", err)
	}
	defer p.Stop()
	htg.HAProxy.Socket = p.Socket
	hr, err := haproxy.New([]traffic.TargetGroupConfig{htg}, haproxy.Options{Logger: log})
	if err != nil {
		return err
	}
	res, err = bench(ctx, "haproxy", hr, htg.Listen, blue, green, clients, d)
	hr.Close()
	if err != nil {
		return err
	}
	results = append(results, res)

	fmt.Printf("trafficbench: %d backends, %d keep-alive clients, %v per router, switch at 1/3, rollback at 2/3\n", n, clients, d)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "router\tserved\tfailed\treq/s\tp50\tp99\tswitch latency\trollback latency\t")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%v\t\n", r.name, r.served, r.failed, r.rps,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.switchLat.Round(time.Microsecond), r.rollbackLat.Round(time.Microsecond))
	}
	w.Flush()
	fmt.Printf("builtin/haproxy throughput ratio: %.2f\n", results[0].rps/results[1].rps)
	return nil
}

// bench drives load through r at addr for d, switching blue->green at d/3
// and back at 2d/3.
func bench(ctx context.Context, name string, r traffic.Router, addr string, blue, green []traffic.Backend, clients int, d time.Duration) (result, error) {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Apply(actx, "bench", blue); err != nil {
		return result{}, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + addr + "/"

	// After a switch, each worker records the start of the last request
	// answered by the old color: switch latency is the latest such start
	// minus the time Apply returned.
	var phase atomic.Int32 // 0 blue, 1 green, 2 blue again; -1 while Apply runs
	var lastOld [3]atomic.Int64
	var failed atomic.Int64
	lat := make([][]time.Duration, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			l := make([]time.Duration, 0, 1<<16)
			for {
				select {
				case <-stop:
					lat[w] = l
					return
				default:
				}
				ph := phase.Load()
				t0 := time.Now()
				color, err := colorserver.Get(client, url)
				if err != nil {
					failed.Add(1)
					continue
				}
				l = append(l, time.Since(t0))
				want := "blue"
				if ph == 1 {
					want = "green"
				}
				// A change of phase during the request means the next switch
				// began, which makes any color legitimate.
				if ph > 0 && color != want && phase.Load() == ph {
					for {
						old := lastOld[ph].Load()
						if t0.UnixNano() <= old || lastOld[ph].CompareAndSwap(old, t0.UnixNano()) {
							break
						}
					}
				}
			}
		})
	}
	var applied [3]time.Time
	for i, set := range [][]traffic.Backend{green, blue} {
		time.Sleep(time.Until(start.Add(d * time.Duration(i+1) / 3)))
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		phase.Store(-1) // either color is right while Apply runs
		err := r.Apply(actx, "bench", set)
		cancel()
		if err != nil {
			close(stop)
			wg.Wait()
			return result{}, fmt.Errorf("%s: switch %d: %w", name, i+1, err)
		}
		applied[i+1] = time.Now()
		phase.Store(int32(i + 1))
	}
	time.Sleep(time.Until(start.Add(d)))
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := result{name: name, served: int64(len(all)), failed: failed.Load(), rps: float64(len(all)) / elapsed.Seconds()}
	if len(all) > 0 {
		res.p50 = all[len(all)/2]
		res.p99 = all[len(all)*99/100]
	}
	switchLat := func(ph int) time.Duration {
		n := lastOld[ph].Load()
		if n == 0 {
			return 0
		}
		return max(time.Unix(0, n).Sub(applied[ph]), 0)
	}
	res.switchLat, res.rollbackLat = switchLat(1), switchLat(2)
	return res, nil
}
