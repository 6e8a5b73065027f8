// Command cutoverbench measures a real blue/green cutover under load: an
// in-process Cutover server with real agents, four real HTTP backends
// (two blue, two green) and one deployment group whose load balancer info
// names two target groups on the same backends, one served by the builtin
// router and one by a real HAProxy driven over its runtime API.
//
// For each router in turn, keep-alive clients load its listener for
// -duration; at 1/3 a ContinueDeployment(READY_WAIT) reroutes traffic to
// green and at 2/3 a StopDeployment(autoRollbackEnabled) during the
// termination wait rolls it back to blue. It reports requests served,
// failed requests, the time from the API response until every new request
// reached the new color, and throughput and p99 latency of both routers.
//
//	go run ./cmd/cutoverbench -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cutoverhq/cutover/internal/colorserver"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"

	"github.com/cutoverhq/cutover/internal/agent"
	"github.com/cutoverhq/cutover/internal/server"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/traffic/haproxy"
)

const (
	rootKey    = "AKIABENCHROOT0000001"
	rootSecret = "bench-root-secret-key-00000000000000000"
	app        = "bench"
	group      = "bench"
)

func main() {
	clients := flag.Int("clients", 64, "concurrent keep-alive clients")
	duration := flag.Duration("duration", 20*time.Second, "load duration per router")
	verbose := flag.Bool("v", false, "log the server and agents to stderr")
	flag.Parse()
	if err := run(*clients, *duration, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "cutoverbench:", err)
		os.Exit(1)
	}
}

type result struct {
	router                 string
	served, failed         int64
	rps                    float64
	p50, p99               time.Duration
	switchLat, rollbackLat time.Duration
	firstFail              string
	stopStatus             string
	timeline, rbTimeline   string
}

type bench struct {
	client *codedeploy.Client
	rev    *types.RevisionLocation
}

func run(clients int, d time.Duration, verbose bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	dir, err := os.MkdirTemp("", "cutoverbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Backends: real HTTP servers, always up; they answer with their color.
	type backend struct{ name, color, addr string }
	var backends []backend
	for i, color := range []string{"blue", "green", "blue", "green"} {
		addr, stop, err := colorserver.Start(color)
		if err != nil {
			return err
		}
		defer stop()
		backends = append(backends, backend{fmt.Sprintf("%s-%d", color, i/2+1), color, addr})
	}

	// Target groups: the builtin router and a real HAProxy.
	hc := traffic.HealthCheck{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: time.Second}
	btg := traffic.TargetGroupConfig{Name: "tg-builtin", Driver: traffic.DriverBuiltin, Mode: traffic.ModeHTTP, Port: 1, HealthCheck: hc, DeregistrationDelay: 5 * time.Second}
	htg := btg
	htg.Name, htg.Driver = "tg-haproxy", traffic.DriverHAProxy
	if btg.Listen, err = colorserver.FreeAddr(); err != nil {
		return err
	}
	if htg.Listen, err = colorserver.FreeAddr(); err != nil {
		return err
	}
	p, err := haproxy.Start(ctx, dir, []traffic.TargetGroupConfig{htg.WithDefaults()})
	if err != nil {
		return fmt.Errorf("starting haproxy (install Debian package haproxy): %w", err)
	}
	defer p.Stop()
	htg.HAProxy.Socket = p.Socket

	srv, err := server.New(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), RootAccessKeyID: rootKey, RootSecretAccessKey: rootSecret,
		Logger: log, Minute: time.Second, TargetGroups: []traffic.TargetGroupConfig{btg, htg},
		InsecureHTTP: true, // loopback
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := srv.Listen(); err != nil {
		return err
	}
	sctx, scancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	defer func() { scancel(); <-served }()
	url := srv.URL()
	admin := credentials.NewStaticCredentialsProvider(rootKey, rootSecret, "")
	b := &bench{client: codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: admin, Retryer: aws.NopRetryer{}})}
	b.rev = &types.RevisionLocation{RevisionType: types.RevisionLocationTypeAppSpecContent,
		AppSpecContent: &types.AppSpecContent{Content: aws.String("version: 0.0\nos: linux\n")}}

	// Real agents, one per backend host.
	var agents sync.WaitGroup
	actx, acancel := context.WithCancel(ctx)
	defer func() { acancel(); agents.Wait() }()
	for _, be := range backends {
		tags := map[string]string{"color": be.color, "cutover:address": be.addr}
		if be.color == "blue" {
			tags["fleet"] = "blue"
		}
		c, err := agent.Register(ctx, agent.RegisterRequest{Endpoint: url, Region: "us-east-1", AdminCredentials: admin, InstanceName: be.name, Tags: tags})
		if err != nil {
			return fmt.Errorf("register %s: %w", be.name, err)
		}
		cfg := agent.Config{Endpoint: url, Region: "us-east-1", Credentials: c.CredentialsProvider(), HostIdentifier: c.HostIdentifier(),
			RootDir: filepath.Join(dir, "agents", be.name), PollInterval: -1, Logger: log.With("agent", be.name),
			ErrorBackoff: func(int) time.Duration { return 50 * time.Millisecond }}
		agents.Go(func() { _ = agent.Run(actx, cfg) })
	}

	if _, err := b.client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(app)}); err != nil {
		return err
	}
	if _, err := b.client.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group),
		ServiceRoleArn:               aws.String("arn:aws:iam::000000000000:role/cutover"),
		DeploymentConfigName:         aws.String("CodeDeployDefault.AllAtOnce"),
		OnPremisesInstanceTagFilters: []types.TagFilter{{Key: aws.String("fleet"), Value: aws.String("blue"), Type: types.TagFilterTypeKeyAndValue}},
		DeploymentStyle:              &types.DeploymentStyle{DeploymentType: types.DeploymentTypeBlueGreen, DeploymentOption: types.DeploymentOptionWithTrafficControl},
		LoadBalancerInfo:             &types.LoadBalancerInfo{TargetGroupInfoList: []types.TargetGroupInfo{{Name: aws.String(btg.Name)}, {Name: aws.String(htg.Name)}}},
		BlueGreenDeploymentConfiguration: &types.BlueGreenDeploymentConfiguration{
			DeploymentReadyOption:                     &types.DeploymentReadyOption{ActionOnTimeout: types.DeploymentReadyActionStopDeployment, WaitTimeInMinutes: 600},
			TerminateBlueInstancesOnDeploymentSuccess: &types.BlueInstanceTerminationOption{Action: types.InstanceActionTerminate, TerminationWaitTimeInMinutes: 600},
			GreenFleetProvisioningOption:              &types.GreenFleetProvisioningOption{Action: types.GreenFleetProvisioningActionDiscoverExisting},
		},
	}); err != nil {
		return err
	}

	// Bootstrap: a first deployment puts the blue hosts into traffic.
	id, err := b.deploy(ctx, "blue")
	if err != nil {
		return err
	}
	if err := b.waitStatus(ctx, id, types.DeploymentStatusReady); err != nil {
		return err
	}
	if _, err := b.client.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait}); err != nil {
		return err
	}
	if err := b.waitStatus(ctx, id, types.DeploymentStatusSucceeded); err != nil {
		return err
	}

	var results []result
	for _, tg := range []traffic.TargetGroupConfig{btg, htg} {
		res, err := b.round(ctx, tg, clients, d)
		if err != nil {
			return fmt.Errorf("%s: %w", tg.Driver, err)
		}
		results = append(results, res)
	}

	fmt.Printf("cutoverbench: 4 backends (2 blue, 2 green), %d keep-alive clients, %v per router; ContinueDeployment(READY_WAIT) at 1/3, StopDeployment(autoRollbackEnabled) in the termination wait at 2/3\n", clients, d)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "router\tserved\tfailed\treq/s\tp50\tp99\tcutover latency\trollback latency\t")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%v\t%v\t%v\t%v\t\n", r.router, r.served, r.failed, r.rps,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.switchLat.Round(time.Microsecond), r.rollbackLat.Round(time.Microsecond))
	}
	w.Flush()
	for _, r := range results {
		if r.failed > 0 {
			fmt.Printf("%s: first failure: %s\n", r.router, r.firstFail)
		}
	}
	for _, r := range results {
		fmt.Printf("%s round: StopDeployment answered %s; lifecycle events after ContinueDeployment (offsets from its response):\n%s", r.router, r.stopStatus, r.timeline)
		fmt.Printf("%s round: rollback deployment's lifecycle events (offsets from the StopDeployment response):\n%s", r.router, r.rbTimeline)
	}
	fmt.Printf("builtin/haproxy throughput ratio: %.2f (target >= 0.60)\n", results[0].rps/results[1].rps)
	fmt.Println("cutover latency: from the ContinueDeployment response until the last request answered by blue started (target < 100ms);")
	fmt.Println("rollback latency: from the StopDeployment response until the last request answered by green started.")
	return nil
}

func (b *bench) deploy(ctx context.Context, color string) (string, error) {
	out, err := b.client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{
		ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group), Revision: b.rev,
		TargetInstances: &types.TargetInstances{TagFilters: []types.EC2TagFilter{{Key: aws.String("color"), Value: aws.String(color), Type: types.EC2TagFilterTypeKeyAndValue}}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.DeploymentId), nil
}

// waitStatus polls until the deployment has status want (or fails).
func (b *bench) waitStatus(ctx context.Context, id string, want types.DeploymentStatus) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info, err := b.get(ctx, id)
		if err != nil {
			return err
		}
		if info.Status == want {
			return nil
		}
		switch info.Status {
		case types.DeploymentStatusSucceeded, types.DeploymentStatusFailed, types.DeploymentStatusStopped:
			return fmt.Errorf("deployment %s ended %s, want %s (%+v)", id, info.Status, want, info.ErrorInformation)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("deployment %s did not reach %s", id, want)
}

func (b *bench) get(ctx context.Context, id string) (*types.DeploymentInfo, error) {
	out, err := b.client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: &id})
	if err != nil {
		return nil, err
	}
	return out.DeploymentInfo, nil
}

// round loads tg's listener for d while a deployment to green is continued
// at d/3 and stopped with rollback at 2d/3.
func (b *bench) round(ctx context.Context, tg traffic.TargetGroupConfig, clients int, d time.Duration) (result, error) {
	res := result{router: tg.Driver}
	id, err := b.deploy(ctx, "green")
	if err != nil {
		return res, err
	}
	if err := b.waitStatus(ctx, id, types.DeploymentStatusReady); err != nil {
		return res, err
	}
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + tg.Listen + "/"

	// phase: 0 before the cutover, 1 after the ContinueDeployment response,
	// -1 while StopDeployment runs, 2 after its response. lastOld[ph] is
	// the start (unix ns) of the latest request started in phase ph and
	// answered by the color that phase moves away from.
	var phase atomic.Int32
	var lastOld [3]atomic.Int64
	var failed atomic.Int64
	var firstFail atomic.Value
	lat := make([][]time.Duration, clients)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range clients {
		wg.Go(func() {
			l := make([]time.Duration, 0, 1<<16)
			defer func() { lat[w] = l }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ph := phase.Load()
				t0 := time.Now()
				color, err := colorserver.Get(hc, url)
				if err != nil {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, err.Error())
					continue
				}
				l = append(l, time.Since(t0))
				if (ph != 1 || color != "blue") && (ph != 2 || color != "green") {
					continue
				}
				last := &lastOld[ph]
				for {
					old := last.Load()
					if t0.UnixNano() <= old || last.CompareAndSwap(old, t0.UnixNano()) {
						break
					}
				}
			}
		})
	}
	halt := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer halt()

	// Cutover.
	time.Sleep(time.Until(start.Add(d / 3)))
	if _, err := b.client.ContinueDeployment(ctx, &codedeploy.ContinueDeploymentInput{DeploymentId: &id, DeploymentWaitType: types.DeploymentWaitTypeReadyWait}); err != nil {
		return res, err
	}
	continued := time.Now()
	phase.Store(1)
	if err := b.waitTerminationWait(ctx, id); err != nil {
		return res, err
	}
	// Rollback.
	time.Sleep(time.Until(start.Add(2 * d / 3)))
	phase.Store(-1)
	out, err := b.client.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: &id, AutoRollbackEnabled: aws.Bool(true)})
	if err != nil {
		return res, err
	}
	stopped := time.Now()
	phase.Store(2)
	res.stopStatus = string(out.Status)
	if err := b.waitStatus(ctx, id, types.DeploymentStatusStopped); err != nil {
		return res, err
	}
	info, err := b.get(ctx, id)
	if err != nil {
		return res, err
	}
	if info.RollbackInfo == nil || info.RollbackInfo.RollbackDeploymentId == nil {
		return res, errors.New("no rollback deployment was created")
	}
	if err := b.waitStatus(ctx, *info.RollbackInfo.RollbackDeploymentId, types.DeploymentStatusSucceeded); err != nil {
		return res, err
	}
	time.Sleep(time.Until(start.Add(d)))
	halt()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.served, res.failed = int64(len(all)), failed.Load()
	res.rps = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		res.p50, res.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	if v, ok := firstFail.Load().(string); ok {
		res.firstFail = v
	}
	lag := func(ph int, from time.Time) time.Duration {
		n := lastOld[ph].Load()
		if n == 0 {
			return 0 // no request started after the response reached the old color
		}
		return max(time.Unix(0, n).Sub(from), 0)
	}
	res.switchLat, res.rollbackLat = lag(1, continued), lag(2, stopped)
	res.timeline = b.timeline(ctx, id, continued)
	res.rbTimeline = b.timeline(ctx, *info.RollbackInfo.RollbackDeploymentId, stopped)
	return res, nil
}

// timeline lists the traffic-phase lifecycle events of a deployment, as
// offsets from the ContinueDeployment response.
func (b *bench) timeline(ctx context.Context, id string, from time.Time) string {
	ids, err := b.client.ListDeploymentTargets(ctx, &codedeploy.ListDeploymentTargetsInput{DeploymentId: &id})
	if err != nil {
		return err.Error()
	}
	out, err := b.client.BatchGetDeploymentTargets(ctx, &codedeploy.BatchGetDeploymentTargetsInput{DeploymentId: &id, TargetIds: ids.TargetIds})
	if err != nil {
		return err.Error()
	}
	type ev struct {
		at   time.Duration
		text string
	}
	var evs []ev
	for _, t := range out.DeploymentTargets {
		it := t.InstanceTarget
		if it == nil {
			continue
		}
		for _, e := range it.LifecycleEvents {
			if e.StartTime == nil || e.EndTime == nil || e.StartTime.Before(from.Add(-time.Second)) {
				continue
			}
			evs = append(evs, ev{e.StartTime.Sub(from), fmt.Sprintf("  %-8s %-19s %+8v .. %+8v", aws.ToString(it.TargetId), aws.ToString(e.LifecycleEventName),
				e.StartTime.Sub(from).Round(time.Millisecond), e.EndTime.Sub(from).Round(time.Millisecond))})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return int(a.at - b.at) })
	var s string
	for _, e := range evs {
		s += e.text + "\n"
	}
	return s
}

func (b *bench) waitTerminationWait(ctx context.Context, id string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		info, err := b.get(ctx, id)
		if err != nil {
			return err
		}
		if info.InstanceTerminationWaitTimeStarted {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("deployment %s never reached its termination wait", id)
}
