package repo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var crashTrials = flag.Int("crash-trials", 50, "kill -9 trials of TestKillDuringWrites (the soak target runs more)")

// buildBinary builds the real lampi-pkg once for the calling test.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lampi-pkg")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/lampi-pkg/lampi-pkg/cmd/lampi-pkg")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKillDuringWrites kills lampi-pkg with SIGKILL at random moments of
// includedeb and export. After each kill the repository must pass check,
// and apt-get update (whose lists hold the previous InRelease) must work;
// the next command must succeed.
func TestKillDuringWrites(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	// The real clock, as the lampi-pkg processes use: apt ignores a
	// Release dated before the one it has.
	r, pub := signedRepo(t, time.Now)
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Base)))
	defer srv.Close()
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, srv.URL))
	ctx := context.Background()

	n := *crashTrials
	debs := t.TempDir()
	var files []string
	for i := 1; i <= n+1; i++ {
		files = append(files, buildDeb(t, debs, pkgSpec{name: fmt.Sprintf("pkg%d", i%7), version: fmt.Sprintf("1.%d", i), gzip: true}))
	}
	mustInclude(t, r, "bookworm", files[0])
	apt.Update()

	// How long a whole command takes here: kills land uniformly within 1.5
	// times that, so that every phase is hit and some commands finish.
	t0 := time.Now()
	if out, err := exec.Command(bin, "repo", "-b", r.Base, "export").CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	span := time.Since(t0)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d, kills within %v", seed, span)
	next, kills := 1, 0
	for trial := 0; trial < n; trial++ {
		args := []string{"repo", "-b", r.Base, "includedeb", "bookworm", files[next]}
		if trial%3 == 2 {
			args = []string{"repo", "-b", r.Base, "export"}
		}
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(span) * 3 / 2))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		killed := false
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("trial %d: %s: %v\n%s", trial, strings.Join(args, " "), err, out.String())
			}
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed = true
			kills++
		}
		if problems, err := r.Check(ctx); err != nil {
			t.Fatalf("trial %d (killed %v after %v): check: %v\n%s", trial, killed, delay, err, strings.Join(problems, "\n"))
		}
		if trial%5 == 0 {
			apt.Update()
		}
		if args[3] == "includedeb" {
			next++
		}
	}
	t.Logf("%d of %d commands killed", kills, n)
	// The next command works, and publishes everything.
	res := mustInclude(t, r, "bookworm", files[next])
	if len(res.Exported) != 1 {
		t.Errorf("final include: %+v", res)
	}
	if problems, err := r.Check(ctx); err != nil {
		t.Fatalf("final check: %v %v", problems, err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("final checkpool: %v %v", problems, err)
	}
	apt.Update()
	apt.MustRun("install", fmt.Sprintf("pkg%d", next%7))
	if stale, _ := filepath.Glob(filepath.Join(r.Base, "db", "tmp", "*")); len(stale) != 0 {
		t.Errorf("stale staging directories: %v", stale)
	}
}

// TestConcurrentWriters runs 8 processes that each include 50 packages
// at the same time, while readers list: all 400 end up in the repository.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64\nComponents: main\n", Options{})
	const procs, each = 8, 50
	batches := make([][]string, procs)
	for p := range procs {
		dir := t.TempDir()
		for i := range each {
			batches[p] = append(batches[p], buildDeb(t, dir, pkgSpec{name: fmt.Sprintf("p%d-%d", p, i), version: "1.0", arch: "amd64", gzip: true}))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	readerDone := make(chan error, 1)
	stop := make(chan struct{})
	start := time.Now()
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"repo", "-b", r.Base, "--lock-timeout", "60s", "includedeb", "c"}, batches[p]...)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer %d: %v\n%s", p, err, out)
			}
		}()
	}
	go func() {
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			if out, err := exec.Command(bin, "repo", "-b", r.Base, "list", "c").CombinedOutput(); err != nil {
				readerDone <- fmt.Errorf("reader: %v\n%s", err, out)
				return
			}
		}
	}()
	wg.Wait()
	t.Logf("8 writers done in %v", time.Since(start))
	close(stop)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-readerDone; err != nil {
		t.Error(err)
	}
	es, err := r.List(context.Background(), "c", Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != procs*each {
		t.Fatalf("%d packages, want %d", len(es), procs*each)
	}
	if pk := readFile(t, filepath.Join(r.Base, "dists/c/main/binary-amd64/Packages")); strings.Count(pk, "Package: ") != procs*each {
		t.Errorf("published Packages has %d stanzas", strings.Count(pk, "Package: "))
	}
	if problems, err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v %v", problems, err)
	}
}
