package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client speaks HAProxy's runtime API over its unix socket, one command per
// connection (the non-interactive mode: HAProxy answers and closes).
type Client struct {
	Socket string
}

// Do runs one runtime API command and returns HAProxy's answer.
func (c *Client) Do(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return "", fmt.Errorf("haproxy: runtime API %s: %w", c.Socket, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy: %q: %w", cmd, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("haproxy: %q: %w", cmd, err)
	}
	return string(out), nil
}

// exec runs a command whose success answer is ok ("" for commands that
// answer nothing on success) and turns anything else into an error.
func (c *Client) exec(ctx context.Context, cmd, ok string) error {
	out, err := c.Do(ctx, cmd)
	if err != nil {
		return err
	}
	out = strings.TrimSpace(out)
	if out != ok {
		return fmt.Errorf("haproxy: %q: %s", cmd, out)
	}
	return nil
}

// server is one line of "show servers state".
type server struct {
	name       string
	addr       string // host:port
	opState    int    // 0 stopped, 1 starting, 2 running, 3 stopping
	adminState int    // bit field, see admin*
	weight     int    // user weight
	checkRes   int    // 0 unknown, 1 neutral, 2 failed, 3 passed, 4 conditional pass
	health     int
	checkState int // bit field: 0x04 enabled
}

const (
	adminMaint = 0x01 | 0x02 | 0x04 | 0x20 | 0x40 // forced, inherited, config, resolution, hostname maintenance
	adminDrain = 0x08 | 0x10                      // forced, inherited drain
	opRunning  = 2
	checkPass  = 3
)

func (s server) maint() bool    { return s.adminState&adminMaint != 0 }
func (s server) draining() bool { return s.adminState&adminDrain != 0 }
func (s server) up() bool       { return s.opState == opRunning }

// servers lists a backend's servers by name.
func (c *Client) servers(ctx context.Context, backend string) (map[string]server, error) {
	out, err := c.Do(ctx, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "1" {
		return nil, fmt.Errorf("haproxy: show servers state %s: %s", backend, strings.TrimSpace(out))
	}
	srvs := make(map[string]server)
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 19 || strings.HasPrefix(l, "#") {
			continue
		}
		n := func(i int) int { v, _ := strconv.Atoi(f[i]); return v }
		srvs[f[3]] = server{
			name: f[3], addr: net.JoinHostPort(f[4], f[18]),
			opState: n(5), adminState: n(6), weight: n(7),
			checkRes: n(11), health: n(12), checkState: n(13),
		}
	}
	return srvs, nil
}

// stat runs "show stat" for a backend's servers and returns each server's
// row keyed by column name.
func (c *Client) stat(ctx context.Context, backend string) (map[string]map[string]string, error) {
	out, err := c.Do(ctx, "show stat "+backend+" 4 -1")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		return nil, fmt.Errorf("haproxy: show stat %s: %s", backend, strings.TrimSpace(out))
	}
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	res := make(map[string]map[string]string)
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		row := make(map[string]string, len(cols))
		for i, h := range cols {
			if i < len(f) {
				row[h] = f[i]
			}
		}
		if sv := row["svname"]; sv != "" {
			res[sv] = row
		}
	}
	return res, nil
}

// sessions reports current sessions (scur) per server of a backend.
func (c *Client) sessions(ctx context.Context, backend string) (map[string]int, error) {
	rows, err := c.stat(ctx, backend)
	if err != nil {
		return nil, err
	}
	res := make(map[string]int, len(rows))
	for sv, row := range rows {
		res[sv], _ = strconv.Atoi(row["scur"])
	}
	return res, nil
}
