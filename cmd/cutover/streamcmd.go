package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
)

// remote is a Cutover server reached the way aws-cli reaches it:
// --endpoint-url or AWS_ENDPOINT_URL(_CODEDEPLOY), credentials and region
// from the environment or the profiles in ~/.aws.
type remote struct {
	aws      aws.Config
	endpoint string
	cd       *codedeploy.Client
	// http sends the CLI's own requests (the log and event endpoints)
	// through the client the SDK resolved for the CodeDeploy calls, so
	// they trust what aws-cli would: --ca-bundle, AWS_CA_BUNDLE, the
	// profile's ca_bundle, else the system roots (and SSL_CERT_FILE).
	http aws.HTTPClient
}

// remoteFlags declares the flags that locate the server.
type remoteFlags struct{ endpoint, region, profile, caBundle string }

func (f *remoteFlags) declare(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint-url", "", "server URL (default: AWS_ENDPOINT_URL_CODEDEPLOY, AWS_ENDPOINT_URL or the profile's endpoint_url)")
	fs.StringVar(&f.region, "region", "", "region (default: AWS_REGION or the profile's)")
	fs.StringVar(&f.profile, "profile", "", "profile in ~/.aws (default: AWS_PROFILE or default)")
	fs.StringVar(&f.caBundle, "ca-bundle", "", "PEM CA bundle to trust for the server, as aws-cli's --ca-bundle (default: AWS_CA_BUNDLE or the profile's ca_bundle, else the system roots)")
}

func (f *remoteFlags) connect(ctx context.Context) (*remote, error) {
	var opts []func(*config.LoadOptions) error
	if f.region != "" {
		opts = append(opts, config.WithRegion(f.region))
	}
	if f.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(f.profile))
	}
	if f.caBundle != "" {
		pem, err := os.ReadFile(f.caBundle)
		if err != nil {
			return nil, fmt.Errorf("read --ca-bundle: %w", err)
		}
		opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	ep := f.endpoint
	if ep == "" {
		ep = os.Getenv("AWS_ENDPOINT_URL_CODEDEPLOY")
	}
	if ep == "" && cfg.BaseEndpoint != nil {
		ep = *cfg.BaseEndpoint
	}
	if ep == "" {
		return nil, errors.New("no server: give --endpoint-url or set AWS_ENDPOINT_URL")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	ep = strings.TrimRight(ep, "/")
	return &remote{aws: cfg, endpoint: ep, http: cfg.HTTPClient,
		cd: codedeploy.NewFromConfig(cfg, func(o *codedeploy.Options) { o.BaseEndpoint = aws.String(ep) })}, nil
}

// emptyHash is the SHA-256 of an empty payload.
var emptyHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// get performs a SigV4-signed GET of a dashboard path.
func (r *remote) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.endpoint+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	creds, err := r.aws.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	req.Header.Set("X-Amz-Content-Sha256", emptyHash)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, emptyHash, "codedeploy", r.aws.Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Type != "" {
			return nil, fmt.Errorf("%s: %s", e.Type, e.Message)
		}
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

// sse is one server-sent event.
type sse struct {
	event string
	data  []byte
}

// stream follows /ui/events with q, sending each event to out until ctx
// ends or the stream breaks (the error says why). Lines are bounded.
func (r *remote) stream(ctx context.Context, q url.Values, out chan<- sse) error {
	resp, err := r.get(ctx, "/ui/events", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev sse
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.event != "" {
				select {
				case out <- ev:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			ev = sse{}
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = append(ev.data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// follow keeps a stream open until ctx ends, reconnecting after a pause.
// When the stream breaks it sends a "_down" event with the reason, so the
// caller polls until events flow again; the owner cancels ctx and waits
// for done.
func (r *remote) follow(ctx context.Context, q url.Values, out chan<- sse, done chan<- struct{}) {
	defer close(done)
	for {
		err := r.stream(ctx, q, out)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- sse{event: "_down", data: []byte(err.Error())}:
		case <-ctx.Done():
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// isTerminal reports whether a deployment status is final.
func isTerminal(status string) bool {
	return status == "Succeeded" || status == "Failed" || status == "Stopped"
}

func deploymentInput(id string) *codedeploy.GetDeploymentInput {
	return &codedeploy.GetDeploymentInput{DeploymentId: &id}
}

// streamDown says on stderr, once per outage, that the event stream is
// unavailable and the command polls instead (a TLS or proxy problem would
// otherwise go unnoticed); it returns the new outage state.
func streamDown(stderr io.Writer, already bool, reason []byte) bool {
	if !already {
		fmt.Fprintf(stderr, "cutover: the server's event stream is unavailable (%s); polling every second instead\n", reason)
	}
	return true
}
