package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/cutoverhq/cutover/internal/tlsca"
)

// startChild runs the cutover binary built by TestMain with args until the
// test ends, stopping it with SIGTERM.
func startChild(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(cutoverBin, args...)
	cmd.Env = cleanEnv(env...)
	out := &syncBuffer{}
	// Dies with the test binary, even one killed by its -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("server did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})
	return cmd, out
}

// procStatusKB reads a field such as VmRSS or VmHWM of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// attack is one kind of hostile client: what it sends after connecting.
type attack struct {
	name    string
	headers func(host string) string
	body    func(c *tls.Conn) // writes until the connection fails
}

const sixMiB = 6 << 20

func fastBody(c *tls.Conn) {
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < sixMiB; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func fastChunked(c *tls.Conn) {
	chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("x", 64<<10)))
	for sent := 0; sent < sixMiB; sent += 64 << 10 {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func trickle(piece string) func(c *tls.Conn) {
	return func(c *tls.Conn) {
		for {
			if _, err := c.Write([]byte(piece)); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestStalledUploadsBounded is the attack of issue 9: 100 connections
// that announce 6 MiB bodies and send them fast or slowly, then stall, to
// the API and to the embedded S3 store on the same listener.
// The server is the built `cutover server` (TLS by default) with
// short timeouts; its resident memory is read from /proc while the attack
// runs and every connection must be closed by the server within the
// timeouts. CUTOVER_HOSTILE_DEFAULT_TIMEOUTS=1 runs it with the default
// timeouts instead (about 20 s).
func TestStalledUploadsBounded(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	headerTimeout, bodyTimeout := 2*time.Second, 4*time.Second
	args := []string{"server", "--listen", freeAddr(t), "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-level", "error"}
	if os.Getenv("CUTOVER_HOSTILE_DEFAULT_TIMEOUTS") == "" {
		args = append(args, "--read-header-timeout", headerTimeout.String(), "--body-timeout", bodyTimeout.String())
	} else {
		headerTimeout, bodyTimeout = 10*time.Second, 20*time.Second
	}
	addr := args[2]
	const keyID, secret = "AKIAHOSTILETEST00001", "hostile-test-secret-00000000000000000000"
	cmd, out := startChild(t, []string{"CUTOVER_ROOT_ACCESS_KEY_ID=" + keyID, "CUTOVER_ROOT_SECRET_ACCESS_KEY=" + secret}, args...)
	pid := cmd.Process.Pid

	var pool *x509.CertPool
	deadline := time.Now().Add(30 * time.Second)
	for pool == nil {
		if pem, err := os.ReadFile(filepath.Join(args[4], tlsca.CertFile)); err == nil {
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				pool = nil
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server made no CA: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitHTTP(t, hc, "https://"+addr)
	cd := codedeploy.New(codedeploy.Options{Region: "us-east-1", BaseEndpoint: aws.String("https://" + addr), HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), Retryer: aws.NopRetryer{}})
	if _, err := cd.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatal(err)
	}
	baseline := procStatusKB(t, pid, "VmRSS")

	// Headers that pass every check made before the body: a real access
	// key, a fresh date, the right scope. Only the signature, which needs
	// the body, is wrong.
	signedLooking := func(host, framing string) string {
		now := time.Now().UTC()
		return "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/x-amz-json-1.1\r\n" +
			"X-Amz-Target: CodeDeploy_20141006.ListApplications\r\nX-Amz-Date: " + now.Format("20060102T150405Z") + "\r\n" +
			"Authorization: AWS4-HMAC-SHA256 Credential=" + keyID + "/" + now.Format("20060102") + "/us-east-1/codedeploy/aws4_request, " +
			"SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("0", 64) + "\r\n" + framing + "\r\n"
	}
	unsigned := func(host string) string {
		return "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Target: CodeDeploy_20141006.ListApplications\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", sixMiB)
	}
	cl := fmt.Sprintf("Content-Length: %d\r\n", sixMiB)
	chunked := "Transfer-Encoding: chunked\r\n"
	attacks := []attack{
		{"unsigned, 6 MiB sent fast", unsigned, fastBody},
		{"signed-looking, 6 MiB sent fast", func(h string) string { return signedLooking(h, cl) }, fastBody},
		{"signed-looking, chunked 6 MiB sent fast", func(h string) string { return signedLooking(h, chunked) }, fastChunked},
		{"signed-looking, chunked, trickled", func(h string) string { return signedLooking(h, chunked) }, trickle("1\r\nx\r\n")},
		{"headers trickled", func(h string) string { return "POST / HTTP/1.1\r\nHost: " + h + "\r\n" }, trickle("X-Pad: y\r\n")},
		// The embedded S3 store shares the listener.
		{"S3 PUT unsigned, chunked, trickled", func(h string) string {
			return "PUT /revisions/app.zip HTTP/1.1\r\nHost: " + h + "\r\n" + chunked + "\r\n"
		}, trickle("1\r\nx\r\n")},
		{"S3 PUT signed-looking, 6 MiB sent fast", func(h string) string {
			now := time.Now().UTC()
			return "PUT /revisions/app.zip HTTP/1.1\r\nHost: " + h + "\r\nX-Amz-Date: " + now.Format("20060102T150405Z") + "\r\n" +
				"X-Amz-Content-Sha256: " + strings.Repeat("a", 64) + "\r\n" +
				"Authorization: AWS4-HMAC-SHA256 Credential=" + keyID + "/" + now.Format("20060102") + "/us-east-1/s3/aws4_request, " +
				"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("0", 64) + "\r\n" + cl + "\r\n"
		}, fastBody},
	}

	type result struct {
		kind   string
		closed time.Duration
		err    error
	}
	const conns = 100
	results := make(chan result, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range conns {
		a := attacks[i%len(attacks)]
		wg.Go(func() {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
			if err != nil {
				results <- result{kind: a.name, err: err}
				return
			}
			defer c.Close()
			if _, err := c.Write([]byte(a.headers(addr))); err != nil {
				results <- result{kind: a.name, err: err}
				return
			}
			var writer sync.WaitGroup
			writer.Go(func() { a.body(c) })
			// The server must end the connection; the test gives up well
			// after the timeouts.
			_ = c.SetReadDeadline(time.Now().Add(headerTimeout + 2*bodyTimeout + 10*time.Second))
			buf := make([]byte, 4096)
			var rerr error
			for rerr == nil {
				_, rerr = c.Read(buf)
			}
			closed := time.Since(start)
			c.Close()
			writer.Wait()
			if ne, ok := rerr.(interface{ Timeout() bool }); ok && ne.Timeout() {
				results <- result{kind: a.name, err: fmt.Errorf("still open after %s", closed.Round(time.Millisecond))}
				return
			}
			results <- result{kind: a.name, closed: closed}
		})
	}
	// A real client is served during the attack.
	type served struct {
		took time.Duration
		err  error
	}
	legit := make(chan served, 1)
	go func() {
		time.Sleep(time.Second)
		t0 := time.Now()
		_, err := cd.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{})
		legit <- served{time.Since(t0), err}
	}()
	peak := baseline
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	tick := time.NewTicker(50 * time.Millisecond)
sample:
	for {
		select {
		case <-allDone:
			break sample
		case <-tick.C:
			peak = max(peak, procStatusKB(t, pid, "VmRSS"))
		}
	}
	tick.Stop()
	close(results)
	var slowest time.Duration
	byKind := map[string]time.Duration{}
	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.kind, r.err)
			continue
		}
		slowest = max(slowest, r.closed)
		byKind[r.kind] = max(byKind[r.kind], r.closed)
	}
	hwm := procStatusKB(t, pid, "VmHWM")
	t.Logf("timeouts: headers %s, body %s", headerTimeout, bodyTimeout)
	t.Logf("RSS: %.1f MB before, %.1f MB peak sampled during %d connections (VmHWM %.1f MB); all closed by the server within %s",
		float64(baseline)/1024, float64(peak)/1024, conns, float64(hwm)/1024, slowest.Round(time.Millisecond))
	for _, a := range attacks {
		t.Logf("  %-42s last closed after %s", a.name, byKind[a.name].Round(time.Millisecond))
	}
	if top := max(hwm, peak); top > 100*1024 {
		t.Errorf("server RSS reached %.1f MB, over 100 MB", float64(top)/1024)
	}
	// Each connection ends within its header or body deadline; the margin
	// is for a loaded machine and net/http's 500 ms close delay.
	if limit := headerTimeout + bodyTimeout + 3*time.Second; slowest > limit {
		t.Errorf("the last connection closed after %s, over %s", slowest, limit)
	}
	if l := <-legit; l.err != nil {
		t.Errorf("a real client was refused during the attack: %v", l.err)
	} else {
		t.Logf("a ListApplications call 1 s into the attack took %s", l.took.Round(time.Millisecond))
	}
	// And the server still serves.
	if _, err := cd.ListApplications(context.Background(), &codedeploy.ListApplicationsInput{}); err != nil {
		t.Fatalf("server unusable after the attack: %v", err)
	}
}
