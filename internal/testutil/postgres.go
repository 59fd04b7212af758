package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Postgres is a private PostgreSQL cluster: initdb into a temporary
// directory, listening on a free loopback port and on a unix socket in
// that directory, stopped and removed when the test ends.
type Postgres struct {
	Port int
	Dir  string // data directory and socket directory's parent
	// DSN connects as the cluster's superuser to database "postgres"
	// over TCP (postgres://lampi@127.0.0.1:PORT/postgres?sslmode=disable).
	DSN string
	log SyncBuffer
}

// postgresBin finds Debian's PostgreSQL server binaries, which live in
// /usr/lib/postgresql/<major>/bin, off PATH; the newest major wins.
func postgresBin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		// A symlink on PATH (as /usr/local/bin/initdb) leads to the
		// directory holding the other binaries.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0])
	}
	return filepath.Dir(RequireTool(t, "initdb")) // fails the test with the install hint
}

func majorOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// StartPostgres initdbs and starts a private cluster with superuser
// "lampi" and trust authentication on loopback only. It runs without
// fsync (a test cluster is thrown away); settings ("fsync=on",
// "synchronous_commit=on" for a benchmark) override the defaults. PostgreSQL refuses
// to run as root: as root the cluster runs as user nobody (through
// setpriv), and its directory is made that user's. Under -short it skips
// the test (Heavy).
func StartPostgres(t testing.TB, settings ...string) *Postgres {
	t.Helper()
	Heavy(t, "runs a real PostgreSQL cluster")
	bin := postgresBin(t)
	dir, err := os.MkdirTemp("", "lampi-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var prefix []string
	if os.Geteuid() == 0 {
		prefix = []string{RequireTool(t, "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		argv := append(append([]string{}, prefix...), filepath.Join(bin, name))
		argv = append(argv, args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		return cmd
	}
	if out, err := run("initdb", "-D", data, "-U", "lampi", "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p := &Postgres{Port: FreePort(t), Dir: dir}
	p.DSN = fmt.Sprintf("postgres://lampi@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	// fsync off: a test cluster is thrown away, and the machine is shared.
	args := []string{"-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port)}
	for _, c := range append([]string{"fsync=off", "synchronous_commit=off", "full_page_writes=off",
		"max_connections=200", "shared_buffers=128MB"}, settings...) {
		args = append(args, "-c", c)
	}
	cmd := run("postgres", args...)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGINT: PostgreSQL's fast shutdown (setpriv passes it on by
		// exec-ing postgres in its place).
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("postgres log:\n%s", p.log.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", p.Port)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			if out, err := run("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "lampi").CombinedOutput(); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("postgres not ready: %s\n%s", out, p.log.String())
			}
		}
		select {
		case <-exited:
			t.Fatalf("postgres exited at start:\n%s", p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres does not listen on %s:\n%s", addr, p.log.String())
		}
	}
	return p
}

// CreateDB creates a fresh database and returns its DSN: tests sharing
// one cluster each get their own database.
func (p *Postgres) CreateDB(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(postgresBin(t), "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "lampi", name).CombinedOutput()
	if err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	return fmt.Sprintf("postgres://lampi@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Log is what the server has logged so far.
func (p *Postgres) Log() string { return p.log.String() }
