package repo

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// TestOrphansFoundNotDeletedWhileNamed recreates what interrupted
// commands leave in the pool — files the database does not know, with and
// without a journal naming them — next to a file a running writer is
// writing and a file that a published index of a distribution this
// database does not know names. Readers list the orphans but not the file
// in flight; the next writer deletes the journaled orphan; deleteunreferenced
// deletes the rest, and never a file a published index names.
func TestOrphansFoundNotDeletedWhileNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	var warnings []string
	warn := func(m string) {
		mu.Lock()
		warnings = append(warnings, m)
		mu.Unlock()
	}
	lastWarnings := func() string {
		mu.Lock()
		defer mu.Unlock()
		w := strings.Join(warnings, "\n")
		warnings = nil
		return w
	}
	conf := "Codename: c\nArchitectures: amd64\nComponents: main\n"
	r := newTestRepo(t, conf, Options{Warn: warn})
	debs := t.TempDir()
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	put := func(name string) {
		t.Helper()
		p := filepath.Join(r.Base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(r.Base, filepath.FromSlash(name)))
		return err == nil
	}
	dump := func() string {
		t.Helper()
		names, err := r.DumpUnreferenced(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(names, " ")
	}
	const (
		busy    = "pool/main/b/busy/busy_1_all.deb"
		lost    = "pool/main/l/lost/lost_1_all.deb"
		foreign = "pool/main/f/foreign/foreign_1_all.deb"
		hi1     = "pool/main/h/hi/hi_0.1_all.deb"
		hi2     = "pool/main/h/hi/hi_0.2_all.deb"
	)
	journal := filepath.Join(r.Base, "db", "pool-writing")

	// A distribution published by another tool (not in conf/distributions)
	// names a pool file the database does not know.
	put(foreign)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("Package: foreign\nVersion: 1\nArchitecture: all\nFilename: " + foreign + "\nSize: 7\n\n"))
	zw.Close()
	if err := os.MkdirAll(filepath.Join(r.Base, "dists/other/main/binary-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Base, "dists/other/main/binary-amd64/Packages.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// A writer holds the lock and is writing busy (its journal names it);
	// lost was left by a command whose journal is gone.
	lock, err := acquireLock(ctx, filepath.Join(r.Base, "db", "lampi.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(journal, []byte(busy+"\n"+"pool/main/u/unfinished/unfini"), 0o644); err != nil {
		t.Fatal(err)
	}
	put(busy)
	put(lost)
	if got := dump(); got != lost {
		t.Fatalf("dumpunreferenced while a writer writes %s: %q, want %s", busy, got, lost)
	}
	// The writer dies: its file is an orphan too.
	lock.release()
	if got := dump(); got != busy+" "+lost {
		t.Fatalf("dumpunreferenced after the writer died: %q", got)
	}
	for what, check := range map[string]func() ([]string, error){
		"check":     func() ([]string, error) { return r.Check(ctx) },
		"checkpool": func() ([]string, error) { return r.CheckPool(ctx, false) },
	} {
		if problems, err := check(); err != nil {
			t.Fatalf("%s: orphans are no damage: %v %v", what, problems, err)
		}
		if w := lastWarnings(); !strings.Contains(w, "2 pool file(s)") || !strings.Contains(w, busy) || !strings.Contains(w, lost) || strings.Contains(w, foreign) {
			t.Errorf("%s warned %q", what, w)
		}
	}

	// The next writer deletes what the journal names, not lost.
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
	if exists(busy) || !exists(lost) || !exists(foreign) || exists(hi1) {
		t.Fatalf("after the next writer: busy %v, lost %v, foreign %v, hi 0.1 %v", exists(busy), exists(lost), exists(foreign), exists(hi1))
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Errorf("journal left: %v", err)
	}
	if w := lastWarnings(); !strings.Contains(w, "removed 1 pool file(s)") || !strings.Contains(w, busy) {
		t.Errorf("the next writer warned %q", w)
	}

	res, err := r.DeleteUnreferenced(ctx)
	if err != nil || strings.Join(res.Deleted, " ") != lost {
		t.Fatalf("deleteunreferenced: %+v %v", res, err)
	}
	if exists(lost) || !exists(foreign) || !exists(hi2) {
		t.Fatalf("after deleteunreferenced: lost %v, foreign %v, hi 0.2 %v", exists(lost), exists(foreign), exists(hi2))
	}
	if got := dump(); got != "" {
		t.Fatalf("dumpunreferenced at the end: %q", got)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", problems, err)
	}
}

// TestDeleteUnreferencedKeepsPublished removes a package without
// publishing (ExportNever): its pool file is unreferenced in the database
// while the published index still names it. deleteunreferenced keeps it
// (apt would get 404 for it) until the distribution is exported.
func TestDeleteUnreferencedKeepsPublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var warned []string
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64\nComponents: main\n", Options{Warn: func(m string) { warned = append(warned, m) }})
	mustInclude(t, r, "c", buildDeb(t, t.TempDir(), pkgSpec{name: "hi", version: "0.1"}))
	const hi1 = "pool/main/h/hi/hi_0.1_all.deb"
	rn, err := Open(r.Base, Options{Now: fixedNow, Export: ExportNever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rn.Remove(ctx, "c", Selection{}, []string{"hi"}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.DumpUnreferenced(ctx); err != nil || strings.Join(got, " ") != hi1 {
		t.Fatalf("dumpunreferenced: %v %v", got, err)
	}
	res, err := r.DeleteUnreferenced(ctx)
	if err != nil || len(res.Deleted) != 0 {
		t.Fatalf("deleteunreferenced deleted what dists/c/main/binary-amd64/Packages names: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(r.Base, hi1)); err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(warned, "\n"); !strings.Contains(w, "kept 1 pool file(s)") || !strings.Contains(w, hi1) {
		t.Errorf("warnings: %q", w)
	}
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = r.DeleteUnreferenced(ctx)
	if err != nil || strings.Join(res.Deleted, " ") != hi1 {
		t.Fatalf("deleteunreferenced after export: %+v %v", res, err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", problems, err)
	}
}

// TestOrphansOnS3 keeps the repository itself (pool/ and dists/) in a
// MinIO bucket: pool files of an interrupted inclusion are found by
// listing the bucket, the next writer deletes those its journal names,
// deleteunreferenced the others.
func TestOrphansOnS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := testutil.SharedMinIO(t)
	st, err := storage.NewS3Storage(storage.S3Options{Endpoint: m.Endpoint, Bucket: m.NewBucket(t, false), Prefix: "repo", PathStyle: true, Insecure: true,
		Credentials: storage.S3Credentials{AccessKeyID: testutil.MinIOUser, SecretAccessKey: testutil.MinIOPassword}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64\nComponents: main\n", Options{Storage: st})
	debs := t.TempDir()
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	const (
		orphan = "pool/main/o/orphan/orphan_1_all.deb"
		lost   = "pool/main/l/lost/lost_1_all.deb"
	)
	for _, n := range []string{orphan, lost} {
		if err := st.WriteFile(ctx, n, []byte("partial")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.Base, "db", "pool-writing"), []byte(orphan+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := r.DumpUnreferenced(ctx); err != nil || strings.Join(got, " ") != lost+" "+orphan {
		t.Fatalf("dumpunreferenced: %v %v", got, err)
	}
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
	if ok, err := st.Exists(ctx, orphan); err != nil || ok {
		t.Fatalf("the next writer left %s: %v", orphan, err)
	}
	res, err := r.DeleteUnreferenced(ctx)
	if err != nil || strings.Join(res.Deleted, " ") != lost {
		t.Fatalf("deleteunreferenced: %+v %v", res, err)
	}
	names, err := st.List(ctx, "pool")
	if err != nil || strings.Join(names, " ") != "pool/main/h/hi/hi_0.2_all.deb" {
		t.Fatalf("pool in the bucket: %v %v", names, err)
	}
	if problems, err := r.Check(ctx); err != nil {
		t.Fatalf("check: %v %v", problems, err)
	}
}
