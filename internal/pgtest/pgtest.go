// Package pgtest starts throwaway PostgreSQL servers for tests, from the
// server binaries of the machine (Debian's postgresql package installs them
// under /usr/lib/postgresql/<version>/bin).
//
// Each call to [Start] creates its own cluster: tests never share state and
// nothing has to be torn down in order. A cluster takes a second or two to
// create, so a test that needs many databases should call Start once and
// CREATE DATABASE per subtest.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// serverUser is the account the server runs as when the test runs as root:
// initdb and postgres refuse to run as root. Debian's postgresql package
// creates it.
const serverUser = "postgres"

// Start creates and starts a PostgreSQL cluster that lives until the test
// ends, and returns the URL of its "postgres" database, for user postgres
// without password, over a Unix socket.
//
// It skips the test, loudly, when the PostgreSQL server binaries are not
// installed, and when running as root without a "postgres" account to run
// the server as.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := findBinDir()
	if err != nil {
		t.Skipf("SKIPPING PostgreSQL tests: %v; install the Debian package postgresql (.ci/run does)", err)
	}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred, err = lookupCredential(serverUser)
		if err != nil {
			t.Skipf("SKIPPING PostgreSQL tests: running as root, and initdb refuses root: %v; "+
				"create the %q account (the Debian package postgresql does) or run as another user", err, serverUser)
		}
	}

	// Not t.TempDir: its path embeds the test name and can exceed the
	// 107-byte limit of a Unix socket path, and as root its 0700 parents
	// would keep the server account out.
	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("pgtest: remove %s: %v", base, err)
		}
	})
	data := filepath.Join(base, "data")
	sock := filepath.Join(base, "sock")
	logFile := filepath.Join(base, "server.log")
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if cred != nil {
		for _, p := range []string{base, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("pgtest: %v", err)
			}
		}
	}

	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = base // the server account may not be able to enter our working directory
		cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.Bytes())
		}
		return nil
	}

	// --no-sync and fsync=off: the cluster is thrown away, so durability
	// would only cost time.
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// Settings go in the configuration file rather than on pg_ctl's -o,
	// which passes through a shell and would need quoting.
	conf := fmt.Sprintf("\n# pgtest\nlisten_addresses = ''\nunix_socket_directories = '%s'\n"+
		"fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
		strings.ReplaceAll(sock, "'", "''"))
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	if err := run("pg_ctl", "start", "-D", data, "-l", logFile, "-w", "-t", "60"); err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("pgtest: %v\nserver log:\n%s", err, log)
	}
	// Registered after the RemoveAll cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", "-t", "60"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	q := url.Values{"host": {sock}, "sslmode": {"disable"}}
	return "postgres://postgres@/postgres?" + q.Encode()
}

// findBinDir returns the directory holding initdb and pg_ctl: the one on
// PATH, else the newest /usr/lib/postgresql/<version>/bin (Debian does not
// put the server binaries on PATH).
func findBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
			continue
		}
		return dir, nil
	}
	return "", errors.New("initdb not found on PATH nor in /usr/lib/postgresql/*/bin")
}

// version extracts the major version from /usr/lib/postgresql/<v>/bin, so
// that 15 sorts after 9.6.
func version(dir string) int {
	v, _ := strconv.Atoi(strings.SplitN(filepath.Base(filepath.Dir(dir)), ".", 2)[0])
	return v
}

func lookupCredential(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	// No supplementary groups: the child would otherwise keep root's.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
