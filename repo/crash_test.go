package repo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
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

// startCmd starts cmd with its standard output and error collected in
// out; done receives what Wait returns.
func startCmd(t testing.TB, cmd *exec.Cmd) (out *bytes.Buffer, done <-chan error) {
	t.Helper()
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := make(chan error, 1)
	go func() { c <- cmd.Wait() }()
	return out, c
}

// TestKillDuringWrites kills lampi-pkg with SIGKILL at random moments of
// includedeb and export. After each kill the repository must pass check,
// and apt-get update (whose lists hold the previous InRelease) must work;
// the next command must succeed.
func TestKillDuringWrites(t *testing.T) {
	testutil.Heavy(t, "compiles lampi-pkg and kills it with SIGKILL during repository writes, many trials")
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
		out, done := startCmd(t, cmd)
		delay := time.Duration(rng.Int64N(int64(span) * 3 / 2))
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
	// files[k] is pkg(k+1)%7 version 1.(k+1): install what the final
	// include published — the version proves apt saw that publish. (The
	// test used to install pkg(next%7), the package of the last trial's
	// include: when every include of that name was killed, as happens when
	// commands slow down under load after span was measured, apt rightly
	// knew no such package.)
	name, version := fmt.Sprintf("pkg%d", (next+1)%7), fmt.Sprintf("1.%d", next+1)
	apt.MustRun("install", name+"="+version)
	if out, err := apt.Dpkg("-s", name); err != nil || !strings.Contains(out, "\nVersion: "+version+"\n") {
		t.Errorf("after the final include, dpkg -s %s: %v\n%s", name, err, out)
	}
	if stale, _ := filepath.Glob(filepath.Join(r.Base, "db", "tmp", "*")); len(stale) != 0 {
		t.Errorf("stale staging directories: %v", stale)
	}
}

// TestConcurrentWriters runs 8 processes that each include 50 packages
// at the same time, while readers list: all 400 end up in the repository.
func TestConcurrentWriters(t *testing.T) {
	testutil.Heavy(t, "compiles lampi-pkg and runs many writer processes at once")
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

// TestKillDuringIncludeOrphans kills "lampi-pkg repo includedeb" of 200
// packages while it writes them into the pool (issue 14 §8: after ten
// kills, 554 pool files of versions never published stayed, and neither
// dumpunreferenced, deleteunreferenced, check nor checkpool saw them).
// After every kill, dumpunreferenced must list exactly the pool files no
// package list names, and check must pass. The next writer removes what
// a killed one wrote — except when the killed one's journal is lost (a
// power loss, or files left by an older lampi-pkg): then those stay, are
// listed, and deleteunreferenced deletes them. At the end the pool holds
// exactly the files of the packages, and apt installs from it.
func TestKillDuringIncludeOrphans(t *testing.T) {
	testutil.Heavy(t, "compiles lampi-pkg and kills it with SIGKILL during includedeb")
	t.Parallel()
	bin := buildBinary(t)
	r, pub := signedRepo(t, time.Now) // the real clock, as the processes use
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Base)))
	defer srv.Close()
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, srv.URL))
	ctx := context.Background()
	const each, probeAt, wantKills = 200, 20, 10
	journal := filepath.Join(r.Base, "db", "pool-writing")

	// Each batch has packages of its own names: no version replaces
	// another, so every pool file that no package list names is an
	// orphan.
	batch := func(n int) (files []string, probe string) {
		dir := t.TempDir()
		for i := range each {
			name := fmt.Sprintf("b%dp%03d", n, i)
			files = append(files, buildDeb(t, dir, pkgSpec{name: name, version: "1.0", plain: true}))
			if i == probeAt {
				probe = filepath.Join(r.Base, PoolPath("main", name, name, deb.MustParseVersion("1.0"), "all"))
			}
		}
		return files, probe
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"repo", "-b", r.Base}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// extra is what the pool holds beyond the files of the packages.
	extra := func() map[string]bool {
		t.Helper()
		out := map[string]bool{}
		filepath.WalkDir(filepath.Join(r.Base, "pool"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(r.Base, p)
				out[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		es, err := r.List(ctx, "bookworm", Selection{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			delete(out, e.File)
		}
		return out
	}
	sameSet := func(what string, got []string, want map[string]bool) {
		t.Helper()
		g := map[string]bool{}
		for _, n := range got {
			g[n] = true
		}
		if fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("%s: %d files, want %d\ngot:  %v\nwant: %v", what, len(g), len(want), got, keys(want))
		}
	}

	// A first batch in full: how long a command takes here.
	files, _ := batch(0)
	t0 := time.Now()
	cli(append([]string{"includedeb", "bookworm"}, files...)...)
	span := time.Since(t0)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	t.Logf("seed %d, one batch takes %v", seed, span)

	lost := map[string]bool{} // orphans whose journal was lost
	kills, orphansSeen := 0, 0
	for n := 1; kills < wantKills; n++ {
		if n > 6*wantKills {
			t.Fatalf("only %d of %d kills landed while pool files were written", kills, n-1)
		}
		files, probe := batch(n)
		cmd := exec.Command(bin, append([]string{"repo", "-b", r.Base, "includedeb", "bookworm"}, files...)...)
		out, done := startCmd(t, cmd)
		// Most kills land once the probe's file is written (the batch's
		// pool files are being written); every third at a random moment.
		var deadline <-chan time.Time
		if n%3 == 0 {
			deadline = time.After(time.Duration(rng.Int64N(int64(span) * 3 / 2)))
		}
		killed := false
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("batch %d: %v\n%s", n, err, out.String())
				}
				break wait
			case <-deadline:
			case <-time.After(200 * time.Microsecond):
				if deadline != nil {
					continue
				}
				if _, err := os.Stat(probe); err != nil {
					continue
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed = true
			break
		}

		now := extra()
		sameSet(fmt.Sprintf("batch %d (killed %v): dumpunreferenced", n, killed), strings.Fields(cli("dumpunreferenced")), now)
		if problems, err := r.Check(ctx); err != nil {
			t.Fatalf("batch %d (killed %v): check: %v\n%s", n, killed, err, strings.Join(problems, "\n"))
		}
		if !killed {
			// A command that ran to the end removed what the one
			// before it left, but for the files of lost journals.
			sameSet(fmt.Sprintf("batch %d: left after a whole command", n), keys(now), lost)
			continue
		}
		fresh := 0
		for f := range now {
			if !lost[f] {
				fresh++
			}
		}
		if fresh > 0 {
			kills++
			orphansSeen += fresh
			if kills%3 == 0 {
				// As a power loss (the journal is not synced) or an
				// older lampi-pkg leaves them: only a scan finds them.
				for f := range now {
					lost[f] = true
				}
				if err := os.Remove(journal); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
			if kills%4 == 0 {
				apt.Update()
			}
		}
	}
	t.Logf("%d kills left %d pool files; %d of them without a journal", kills, orphansSeen, len(lost))

	// The next writer removes the last killed command's files; those of
	// lost journals stay until deleteunreferenced.
	files, _ = batch(999)
	cli(append([]string{"includedeb", "bookworm"}, files...)...)
	sameSet("left after the last kill's next writer", keys(extra()), lost)
	if len(lost) == 0 {
		t.Fatalf("no journal was lost: the scan went untested")
	}
	var deleted []string
	for _, l := range strings.Split(cli("deleteunreferenced"), "\n") {
		if f, ok := strings.CutPrefix(l, "deleted "); ok {
			deleted = append(deleted, f)
		}
	}
	sameSet("deleteunreferenced", deleted, lost)
	sameSet("left after deleteunreferenced", keys(extra()), map[string]bool{})
	if problems, err := r.Check(ctx); err != nil {
		t.Fatalf("final check: %v %v", problems, err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("final checkpool: %v %v", problems, err)
	}
	apt.Update()
	apt.MustRun("install", "b0p005")
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
