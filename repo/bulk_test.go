package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

const bulkConf = "Origin: Bulk\nCodename: bulk\nSuite: stable\nArchitectures: amd64 arm64\nComponents: main contrib\nDescription: bulk import\n"

// bulkDebs builds n packages: amd64, arm64 and Architecture: all ones,
// some with a Source field, some in contrib.
func bulkDebs(t testing.TB, dir string, n int, version string) []string {
	t.Helper()
	var files []string
	for i := range n {
		p := pkgSpec{name: fmt.Sprintf("bulk%02d", i), version: version, arch: []string{"amd64", "arm64", "all"}[i%3]}
		if i%4 == 1 {
			p.extra = "Source: bulksrc (1.0)\n"
		}
		if i%5 == 2 {
			p.control = fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: T <t@example.org>\nSection: contrib/misc\nPriority: optional\nDescription: contrib package\n In contrib.\n", p.name, version, p.arch)
		}
		files = append(files, buildDeb(t, dir, p))
	}
	return files
}

// bulkPair returns two repositories with the same configuration: one
// importing batches of 5 or more in bulk (chunks of 4) and spooling every
// first Packages index to a file, one never doing either.
func bulkPair(t *testing.T) (bulk, plain *Repo) {
	bulk = newTestRepo(t, bulkConf, Options{})
	bulk.bulkMin, bulk.bulkChunk, bulk.spoolMin = 5, 4, 1
	plain = newTestRepo(t, bulkConf, Options{})
	plain.bulkMin, plain.spoolMin = 1<<30, 1<<30
	return bulk, plain
}

// sameRepos fails unless both repositories hold and publish the same.
func sameRepos(t *testing.T, a, b *Repo) {
	t.Helper()
	ctx := context.Background()
	la, err := a.List(ctx, "bulk", Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.List(ctx, "bulk", Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(la)
	jb, _ := json.Marshal(lb)
	if !bytes.Equal(ja, jb) {
		t.Errorf("package lists differ:\nbulk  %s\nplain %s", ja, jb)
	}
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i].Stanza, lb[i].Stanza) {
			t.Errorf("%s: stanzas differ:\n%s\n%s", la[i].Package, la[i].Stanza, lb[i].Stanza)
		}
	}
	if sa, sb := testutil.TreeSum(t, a.Base, "dists", "pool"), testutil.TreeSum(t, b.Base, "dists", "pool"); sa != sb {
		t.Errorf("published trees differ:\nbulk:\n%s\nplain:\n%s", sa, sb)
	}
	for _, r := range []*Repo{a, b} {
		if _, err := os.Stat(r.tmpRoot); !os.IsNotExist(err) {
			t.Errorf("%s is left behind (%v)", r.tmpRoot, err)
		}
		if problems, err := r.Check(ctx); err != nil {
			t.Errorf("check: %v %v", err, problems)
		}
		if problems, err := r.CheckPool(ctx, false); err != nil {
			t.Errorf("checkpool: %v %v", err, problems)
		}
	}
}

func noPending(t *testing.T, r *Repo) {
	t.Helper()
	err := r.view(func(tx *bolt.Tx) error {
		if tx != nil && tx.Bucket([]byte(bPending)) != nil {
			t.Errorf("the %s bucket is left in the database", bPending)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBulkImportMatchesOrdinary: a batch imported in bulk (several
// chunks, stanzas spilled to disk) gives the same database content, the
// same published tree and the same result as the one-transaction path;
// later batches that the bulk path cannot take (non-empty lists, two
// versions of a name) go the ordinary way, spilled stanzas included.
func TestBulkImportMatchesOrdinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bulk, plain := bulkPair(t)
	files := bulkDebs(t, dir, 11, "1.0")
	ra := mustInclude(t, bulk, "bulk", files...)
	rb := mustInclude(t, plain, "bulk", files...)
	if bulk.bulkRuns != 1 || plain.bulkRuns != 0 {
		t.Fatalf("bulk imports: %d and %d, want 1 and 0", bulk.bulkRuns, plain.bulkRuns)
	}
	if ja, jb := fmt.Sprint(ra), fmt.Sprint(rb); ja != jb {
		t.Errorf("results differ:\nbulk  %s\nplain %s", ja, jb)
	}
	noPending(t, bulk)
	sameRepos(t, bulk, plain)

	// Non-empty lists: the ordinary path, with the spilled stanzas read back.
	dir2 := t.TempDir()
	more := append(bulkDebs(t, dir2, 6, "2.0"), buildDeb(t, dir2, pkgSpec{name: "extra", version: "1", arch: "amd64"}))
	mustInclude(t, bulk, "bulk", more...)
	mustInclude(t, plain, "bulk", more...)
	if bulk.bulkRuns != 1 {
		t.Errorf("a batch into non-empty lists was imported in bulk")
	}
	sameRepos(t, bulk, plain)
}

// TestBulkTwoVersionsInBatch: two versions of one name in a batch go the
// ordinary way (the version rules decide between them).
func TestBulkTwoVersionsInBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bulk, plain := bulkPair(t)
	files := append(bulkDebs(t, dir, 5, "1.0"), buildDeb(t, t.TempDir(), pkgSpec{name: "bulk00", version: "2.0", arch: "amd64"}))
	mustInclude(t, bulk, "bulk", files...)
	mustInclude(t, plain, "bulk", files...)
	if bulk.bulkRuns != 0 {
		t.Errorf("a batch with two versions of bulk00 was imported in bulk")
	}
	sameRepos(t, bulk, plain)
}

// TestBulkBadInputUntouched: a large batch with one broken file changes
// nothing, db/ included.
func TestBulkBadInputUntouched(t *testing.T) {
	t.Parallel()
	bulk, _ := bulkPair(t)
	dir := t.TempDir()
	mustInclude(t, bulk, "bulk", buildDeb(t, dir, pkgSpec{name: "first", version: "1", arch: "amd64"}))
	mustRemove(t, bulk, "first")
	before := testutil.TreeSum(t, bulk.Base, "dists", "pool", "db")
	files := bulkDebs(t, dir, 8, "1.0")
	bad := filepath.Join(dir, "broken_1_all.deb")
	data, err := os.ReadFile(files[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data[:len(data)-20], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bulk.IncludeDeb(context.Background(), "bulk", append(files, bad), IncludeOptions{}); err == nil {
		t.Fatal("a batch with a truncated package was accepted")
	}
	if after := testutil.TreeSum(t, bulk.Base, "dists", "pool", "db"); after != before {
		t.Errorf("the failed batch changed the repository:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func mustRemove(t *testing.T, r *Repo, names ...string) {
	t.Helper()
	if _, err := r.Remove(context.Background(), "bulk", Selection{}, names); err != nil {
		t.Fatal(err)
	}
}

// TestBulkInterruptedIsDropped: what a killed bulk import leaves (package
// lists under construction) is invisible and removed by the next writer,
// with the pool file records the lists name (and, as earlier versions
// wrote them, listed under pendingFiles).
func TestBulkInterruptedIsDropped(t *testing.T) {
	t.Parallel()
	for _, withList := range []bool{false, true} {
		t.Run(fmt.Sprintf("pendingFiles=%v", withList), func(t *testing.T) {
			t.Parallel()
			testBulkInterruptedIsDropped(t, withList)
		})
	}
}

func testBulkInterruptedIsDropped(t *testing.T, withList bool) {
	r, _ := bulkPair(t)
	dir := t.TempDir()
	mustInclude(t, r, "bulk", buildDeb(t, dir, pkgSpec{name: "keep", version: "1", arch: "amd64"}))
	db, err := openDB(r.dbPath, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		p, err := tx.CreateBucket([]byte(bPending))
		if err != nil {
			return err
		}
		b, err := p.CreateBucket([]byte("bulk|main|amd64"))
		if err != nil {
			return err
		}
		ghost := "pool/main/g/ghost/ghost_1_amd64.deb"
		if err := b.Put(pkgKey("ghost", "1"), pkgValue(ghost, []byte("Package: ghost\n"))); err != nil {
			return err
		}
		if withList {
			w, err := p.CreateBucket([]byte(pendingFiles))
			if err != nil {
				return err
			}
			if err := w.Put([]byte(ghost), nil); err != nil {
				return err
			}
		}
		if err := bucket(tx, bFiles).Put([]byte(ghost), Checksums{Size: 1, MD5: "a", SHA1: "b", SHA256: "c", SHA512: "d"}.encode()); err != nil {
			return err
		}
		return bucket(tx, bRefs).Put(refKey(ghost, Target{Codename: "bulk", Component: "main", Arch: "amd64"}), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	es, err := r.List(context.Background(), "bulk", Selection{}, nil, nil)
	if err != nil || len(es) != 1 || es[0].Package != "keep" {
		t.Fatalf("list with an interrupted import: %v %v", es, err)
	}
	mustInclude(t, r, "bulk", buildDeb(t, dir, pkgSpec{name: "next", version: "1", arch: "amd64"}))
	noPending(t, r)
	orphanRecords(t, r)
	if problems, err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v %v", err, problems)
	}
}

// TestKillDuringBulkImport kills, at random moments, a process importing
// a batch in bulk (several chunk transactions) into an empty package
// list: afterwards check passes, and the list holds either none or all of
// the batch — never part of it.
func TestKillDuringBulkImport(t *testing.T) {
	testutil.Heavy(t, "kills a bulk-importing child process with SIGKILL at random moments")
	t.Parallel()
	r, _ := bulkPair(t)
	dir := t.TempDir()
	files := bulkDebs(t, dir, 12, "1.0")
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBulkImportChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LAMPI_BULK_CHILD="+r.Base+"\n"+strings.Join(files, "\n"))
		return cmd
	}
	t0 := time.Now()
	if out, err := child().CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	span := time.Since(t0)
	ctx := context.Background()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	t.Logf("seed %d, kills within %v", seed, span)
	trials, kills := *crashTrials/2+1, 0
	for trial := range trials {
		if es, err := r.List(ctx, "bulk", Selection{}, nil, nil); err != nil {
			t.Fatal(err)
		} else if len(es) > 0 {
			names := map[string]bool{}
			for _, e := range es {
				names[e.Package] = true
			}
			var all []string
			for n := range names {
				all = append(all, n)
			}
			mustRemove(t, r, all...)
		}
		cmd := child()
		out, done := startCmd(t, cmd)
		delay := time.Duration(rng.Int64N(int64(span) * 3 / 2))
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("trial %d: %v\n%s", trial, err, out.String())
			}
		case <-time.After(delay):
			cmd.Process.Kill()
			<-done
			kills++
		}
		if problems, err := r.Check(ctx); err != nil {
			t.Fatalf("trial %d (after %v): check: %v\n%s", trial, delay, err, strings.Join(problems, "\n"))
		}
		es, err := r.List(ctx, "bulk", Selection{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// 12 packages, a third of them in both architectures.
		if len(es) != 0 && len(es) != 16 {
			t.Fatalf("trial %d (after %v): %d entries, want 0 or 16: a partial batch is visible", trial, delay, len(es))
		}
	}
	t.Logf("%d of %d imports killed", kills, trials)
	// The next writer cleans up after a killed import.
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	noPending(t, r)
	orphanRecords(t, r)
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", err, problems)
	}
}

// orphanRecords fails if a pool file record has neither a reference nor
// an unreferenced mark (what an interrupted bulk import would leak).
func orphanRecords(t *testing.T, r *Repo) {
	t.Helper()
	err := r.view(func(tx *bolt.Tx) error {
		refs, unref := bucket(tx, bRefs), bucket(tx, bUnreferenced)
		return bucket(tx, bFiles).ForEach(func(k, _ []byte) error {
			prefix := append(append([]byte(nil), k...), 0)
			if rk, _ := refs.Cursor().Seek(prefix); (rk == nil || !bytes.HasPrefix(rk, prefix)) && unref.Get(k) == nil {
				t.Errorf("pool file record %s: no reference, not unreferenced", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBulkImportChild is the process TestKillDuringBulkImport kills: it
// imports the files named in LAMPI_BULK_CHILD in bulk. Without that
// variable it does nothing.
func TestBulkImportChild(t *testing.T) {
	spec := os.Getenv("LAMPI_BULK_CHILD")
	if spec == "" {
		return
	}
	lines := strings.Split(spec, "\n")
	r, err := Open(lines[0], Options{Now: time.Now, LockTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r.bulkMin, r.bulkChunk = 5, 2
	res, err := r.IncludeDeb(context.Background(), "bulk", lines[1:], IncludeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.bulkRuns != 1 {
		t.Fatalf("not imported in bulk: %+v", res)
	}
}
