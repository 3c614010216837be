// Package pgtest gives tests a throwaway PostgreSQL: a cluster started
// once per test binary (from TestMain, with Main) on a free loopback port,
// its socket and data in a temporary directory removed afterwards, and a
// fresh database per test (DB). AGENTRT_TEST_POSTGRES_URL, when set, names
// an existing server to use instead (the tests create and drop databases
// on it).
//
// PostgreSQL missing is a test failure that says how to install it, never
// a skip: the tests that need it are part of CI (.ci/run installs it).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names an existing server to use instead of a throwaway cluster.
const EnvURL = "AGENTRT_TEST_POSTGRES_URL"

const installHint = "install PostgreSQL's server (Debian: apt-get install -y postgresql, as .ci/run does), " +
	"or set " + EnvURL + " to a postgres:// URL of a server where the tests may create databases"

// Cluster is a running PostgreSQL server.
type Cluster struct {
	// URL is the server's admin URL (database "postgres").
	URL string
	// Started is how long starting the cluster took (zero for EnvURL).
	Started time.Duration

	dir   string // temporary directory: data, socket, log
	bin   string // directory of initdb and pg_ctl
	runAs string // "postgres" when running as root
}

// Start initialises and starts a throwaway cluster.
func Start(ctx context.Context) (*Cluster, error) {
	begin := time.Now()
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		// The server refuses to run as root.
		c.runAs = "postgres"
	}
	if c.dir, err = os.MkdirTemp("", "agentrt-pg-"); err != nil {
		return nil, err
	}
	if c.runAs != "" {
		u, err := user.Lookup(c.runAs)
		if err != nil {
			os.RemoveAll(c.dir)
			return nil, fmt.Errorf("pgtest: running as root needs the %q user: %w; %s", c.runAs, err, installHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.dir, uid, gid); err != nil {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
	data := filepath.Join(c.dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// A free port can be taken between probing and binding: try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, c.dir)
		out, err := c.run(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
			c.Stop()
			return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
		}
	}
	c.Started = time.Since(begin)
	return c, nil
}

// run runs a PostgreSQL program, as c.runAs when set.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir // runuser's user may not read the caller's working directory
	return cmd.CombinedOutput()
}

// Stop stops the cluster and removes its directory.
func (c *Cluster) Stop() error {
	if c == nil || c.dir == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if c.URL != "" {
		if out, e := c.run(ctx, "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop"); e != nil {
			err = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", e, out)
		}
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	slices.SortFunc(dirs, func(a, b string) int { return majorOf(b) - majorOf(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no initdb in PATH): " + installHint)
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var (
	shared   *Cluster
	startErr error
	dbSeq    atomic.Int64
)

// Main runs the tests of m with a shared server: the URL in EnvURL, or a
// cluster it starts first and stops after. Call it from TestMain.
func Main(m *testing.M) {
	if u := os.Getenv(EnvURL); u != "" {
		shared = &Cluster{URL: u}
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	shared, startErr = Start(ctx)
	cancel()
	code := m.Run()
	if err := shared.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Shared is the server Main started (or found); it fails t when there is
// none.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	switch {
	case startErr != nil:
		t.Fatal(startErr)
	case shared == nil:
		t.Fatal("pgtest: no PostgreSQL server: call pgtest.Main from TestMain")
	}
	return shared
}

// DB creates an empty database on the shared server and returns its URL;
// it is dropped when t ends (close what uses it in an earlier Cleanup).
func DB(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	name := fmt.Sprintf("agentrt_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// FILE_COPY (PostgreSQL 15+) is the faster way to copy an empty
	// template; older servers (EnvURL) take the plain statement.
	if err := c.exec(ctx, "CREATE DATABASE "+name+" STRATEGY FILE_COPY"); err != nil {
		if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatalf("pgtest: create database: %v", err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL", EnvURL)
	}
	u.Path = "/" + name
	return u.String()
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}
