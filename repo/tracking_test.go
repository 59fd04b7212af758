package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeDsc writes a source package by hand: an original tarball and a
// Debian part of arbitrary bytes (includedsc checks only what the .dsc
// lists; -S and -P spare reading debian/control), and its .dsc.
func writeDsc(t *testing.T, dir, name, upstream, revision string) string {
	t.Helper()
	return writeDscWith(t, dir, name, upstream, revision, "original "+upstream)
}

// writeDscWith is writeDsc with the original tarball's content.
func writeDscWith(t *testing.T, dir, name, upstream, revision, orig string) string {
	t.Helper()
	files := map[string][]byte{
		name + "_" + upstream + ".orig.tar.gz":                    []byte(orig),
		name + "_" + upstream + "-" + revision + ".debian.tar.xz": []byte("debian " + revision),
	}
	var names []string
	for n, data := range files {
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var sha, md5 strings.Builder
	for _, n := range names {
		c := sumBytes(files[n])
		fmt.Fprintf(&sha, " %s %d %s\n", c.SHA256, c.Size, n)
		fmt.Fprintf(&md5, " %s %d %s\n", c.MD5, c.Size, n)
	}
	p := filepath.Join(dir, name+"_"+upstream+"-"+revision+".dsc")
	dsc := fmt.Sprintf("Format: 3.0 (quilt)\nSource: %s\nBinary: %s\nArchitecture: all\nVersion: %s-%s\nMaintainer: M <m@example.org>\nChecksums-Sha256:\n%sFiles:\n%s",
		name, name, upstream, revision, sha.String(), md5.String())
	if err := os.WriteFile(p, []byte(dsc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// With "Tracking: keep" a record outlives its packages and holds their
// files in the pool; dropTracking (for a distribution that left the
// configuration) releases them.
func TestTrackingKeepAndDrop(t *testing.T) {
	r := newTestRepo(t, "Codename: old\nArchitectures: amd64 source\nComponents: main\nTracking: keep\n", Options{})
	ctx := context.Background()
	dsc := writeDsc(t, t.TempDir(), "hello", "1.0", "1")
	if _, err := r.IncludeDsc(ctx, "old", dsc, IncludeOptions{Section: "utils", Priority: "optional"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RemoveSource(ctx, "old", "hello", ""); err != nil {
		t.Fatal(err)
	}
	recs, err := r.DumpTracks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Source != "hello" || recs[0].Version != "1.0-1" || len(recs[0].Files) != 3 {
		t.Fatalf("records %+v", recs)
	}
	for _, f := range recs[0].Files {
		if f.Count != 0 || f.Type != "s" {
			t.Errorf("file %+v", f)
		}
		if _, err := os.Stat(filepath.Join(r.Base, f.File)); err != nil {
			t.Errorf("kept record's file: %v", err)
		}
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var gone []string
	err = w.db.Update(func(tx *bolt.Tx) error {
		gone, err = dropTracking(tx, "old")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(gone)
	want := "pool/main/h/hello/hello_1.0-1.debian.tar.xz pool/main/h/hello/hello_1.0-1.dsc pool/main/h/hello/hello_1.0.orig.tar.gz"
	if got := strings.Join(gone, " "); got != want {
		t.Errorf("released %s, want %s", got, want)
	}
	err = w.db.View(func(tx *bolt.Tx) error {
		if k, _ := bucket(tx, bTracking).Cursor().First(); k != nil {
			t.Errorf("record %q left", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Pool files that a published Sources index names — here of a
// distribution another tool published and this database does not know —
// are not orphans: deleteunreferenced keeps them (as it keeps those a
// Packages index names), whether Directory comes before or after Files.
func TestOrphansKeepPublishedSources(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64 source\nComponents: main\n", Options{})
	dsc := writeDsc(t, t.TempDir(), "hello", "1.0", "1")
	if _, err := r.IncludeDsc(ctx, "c", dsc, IncludeOptions{Section: "utils", Priority: "optional"}); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(r.Base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"pool/main/o/other/other_1.dsc", "pool/main/o/other/other_1.tar.gz", "pool/main/y/yet/yet_2.dsc", "pool/main/o/orphan/orphan_1.dsc"} {
		write(f, "x")
	}
	write("dists/foreign/main/source/Sources", `Package: other
Version: 1
Directory: pool/main/o/other
Files:
 `+strings.Repeat("0", 32)+` 1 other_1.dsc
 `+strings.Repeat("0", 32)+` 1 other_1.tar.gz

Package: yet
Version: 2
Files:
 `+strings.Repeat("0", 32)+` 1 yet_2.dsc
Directory: pool/main/y/yet
`)
	deleted, err := r.DeleteUnreferenced(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(deleted.Deleted, " "); got != "pool/main/o/orphan/orphan_1.dsc" {
		t.Errorf("deleted %q, want only the orphan", got)
	}
	for _, f := range []string{"pool/main/o/other/other_1.dsc", "pool/main/o/other/other_1.tar.gz", "pool/main/y/yet/yet_2.dsc", "pool/main/h/hello/hello_1.0-1.dsc"} {
		if _, err := os.Stat(filepath.Join(r.Base, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
