package repo

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

func TestIncludeListRemove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	hi1 := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"})
	lib := buildDeb(t, debs, pkgSpec{name: "libfoo1", version: "1:1.0-1", arch: "armhf", extra: "Source: libfoo (1.0-1)\n"})

	res := mustInclude(t, r, "bookworm", hi1, lib)
	if len(res.Changes) != 4 || res.Exported[0] != "bookworm" {
		t.Fatalf("changes %+v exported %v", res.Changes, res.Exported)
	}
	for _, p := range []string{"pool/main/h/hi/hi_0.1_all.deb", "pool/main/libf/libfoo/libfoo1_1.0-1_armhf.deb",
		"dists/bookworm/Release", "dists/bookworm/main/binary-armhf/Packages", "dists/bookworm/main/binary-armhf/Packages.gz",
		"dists/bookworm/main/binary-armhf/Release", "dists/bookworm/contrib/binary-amd64/Packages"} {
		if _, err := os.Stat(filepath.Join(r.Base, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	pk := readFile(t, filepath.Join(r.Base, "dists/bookworm/main/binary-armhf/Packages"))
	if !strings.Contains(pk, "Filename: pool/main/libf/libfoo/libfoo1_1.0-1_armhf.deb\n") || strings.Count(pk, "Package: ") != 2 {
		t.Errorf("Packages:\n%s", pk)
	}
	rel := readFile(t, filepath.Join(r.Base, "dists/bookworm/Release"))
	for _, want := range []string{"Codename: bookworm\n", "Date: Sat, 01 Mar 2025 12:00:00 UTC\n", "Acquire-By-Hash: yes\n", "SHA512:\n", " main/binary-armhf/Packages.gz\n"} {
		if !strings.Contains(rel, want) {
			t.Errorf("Release lacks %q:\n%s", want, rel)
		}
	}

	// The same file again: nothing changes.
	res = mustInclude(t, r, "bookworm", hi1)
	for _, c := range res.Changes {
		if c.Action != "unchanged" {
			t.Errorf("again: %+v", c)
		}
	}
	if len(res.Exported) != 0 {
		t.Errorf("again exported %v", res.Exported)
	}

	// A newer version replaces, the old pool file goes.
	hi2 := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"})
	res = mustInclude(t, r, "bookworm", hi2)
	if res.Changes[0].Action != "replace" || res.Changes[0].OldVersion != "0.1" {
		t.Errorf("newer: %+v", res.Changes)
	}
	if len(res.Deleted) != 1 || res.Deleted[0] != "pool/main/h/hi/hi_0.1_all.deb" {
		t.Errorf("deleted %v", res.Deleted)
	}

	// An older one is refused.
	_, err := r.IncludeDeb(ctx, "bookworm", []string{hi1}, IncludeOptions{})
	if !errors.Is(err, ErrOlderVersion) {
		t.Errorf("older: %v", err)
	}
	// Same version, other bytes: refused.
	other := t.TempDir()
	hi2b := buildDeb(t, other, pkgSpec{name: "hi", version: "0.2", payload: "different\n"})
	_, err = r.IncludeDeb(ctx, "bookworm", []string{hi2b}, IncludeOptions{})
	if !errors.Is(err, ErrVersionClash) {
		t.Errorf("clash: %v", err)
	}

	es, err := r.List(ctx, "bookworm", Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.String())
	}
	want := "bookworm|main|armhf: hi 0.2\nbookworm|main|armhf: libfoo1 1:1.0-1\nbookworm|main|arm64: hi 0.2\nbookworm|main|amd64: hi 0.2"
	if strings.Join(got, "\n") != want {
		t.Errorf("list:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	res, err = r.Remove(ctx, "bookworm", Selection{}, []string{"hi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 3 || len(res.Deleted) != 1 {
		t.Errorf("remove: %+v %v", res.Changes, res.Deleted)
	}
	if _, err := r.Remove(ctx, "bookworm", Selection{}, []string{"hi"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h")); !os.IsNotExist(err) {
		t.Errorf("empty pool directories stay: %v", err)
	}
}

func TestLimitKeepsVersions(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	for _, v := range []string{"1.0", "1.1", "1.2"} {
		mustInclude(t, r, "trixie", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
	}
	es, err := r.List(context.Background(), "trixie", Selection{Architectures: []string{"amd64"}}, []string{"hi"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Version != "1.2" || es[1].Version != "1.1" {
		t.Fatalf("Limit 2 kept %v (want newest first)", es)
	}
	pk := readFile(t, filepath.Join(r.Base, "dists/trixie/main/binary-amd64/Packages"))
	if strings.Count(pk, "Package: hi\n") != 2 {
		t.Errorf("Packages:\n%s", pk)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "dists/trixie/main/binary-amd64/Packages.xz")); err != nil {
		t.Error(err)
	}
}

func TestLogFile(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64\nComponents: main\nLog: c.log\n", Options{})
	debs := t.TempDir()
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "1", arch: "amd64"}))
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "2", arch: "amd64"}))
	if _, err := r.Remove(context.Background(), "c", Selection{}, []string{"hi"}); err != nil {
		t.Fatal(err)
	}
	want := "2025-03-01 12:00:00 add c deb main amd64 hi 1\n2025-03-01 12:00:00 replace c deb main amd64 hi 2 1\n2025-03-01 12:00:00 remove c deb main amd64 hi 2\n"
	if got := readFile(t, filepath.Join(r.Base, "logs", "c.log")); got != want {
		t.Errorf("log:\n%s", got)
	}
}

// TestIncrementalExport checks that including an amd64 package rewrites
// only the amd64 index (and the Release files), not the others.
func TestIncrementalExport(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "1"}))
	inode := func(rel string) uint64 {
		st, err := os.Stat(filepath.Join(r.Base, "dists/bookworm", rel))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	before := map[string]uint64{}
	for _, f := range []string{"main/binary-armhf/Packages.gz", "main/binary-amd64/Packages.gz", "contrib/binary-amd64/Packages", "Release"} {
		before[f] = inode(f)
	}
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "tool", version: "1", arch: "amd64"}))
	for f, ino := range before {
		changed := inode(f) != ino
		if want := f == "main/binary-amd64/Packages.gz" || f == "Release"; changed != want {
			t.Errorf("%s rewritten: %v, want %v", f, changed, want)
		}
	}
}

// TestIncludeLargePackage: a package bigger than what is kept in memory
// goes through a staging file, which is read back for its control file;
// the pool file is the package, byte for byte.
func TestIncludeLargePackage(t *testing.T) {
	dir := t.TempDir()
	payload := make([]byte, 3*maxInMemory)
	rand.New(rand.NewSource(1)).Read(payload)
	big := buildDeb(t, dir, pkgSpec{name: "big", version: "1.0", payload: string(payload), gzip: true})
	if fi, err := os.Stat(big); err != nil || fi.Size() <= maxInMemory {
		t.Fatalf("test package is %v bytes, want more than %d (%v)", fi.Size(), maxInMemory, err)
	}
	r := newTestRepo(t, testDistributions, Options{})
	mustInclude(t, r, "bookworm", big)
	want, _ := os.ReadFile(big)
	got, err := os.ReadFile(filepath.Join(r.Base, "pool/main/b/big/big_1.0_all.deb"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pool file differs from the package (%v)", err)
	}
}

// TestIncludePlainFileIO: with Options.PlainFileIO (the os package
// instead of raw system calls) a repository publishes exactly what it
// publishes with raw system calls, and refuses a package that is not a
// regular file the same way.
func TestIncludePlainFileIO(t *testing.T) {
	t.Parallel()
	debs := t.TempDir()
	files := []string{
		buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
		buildDeb(t, debs, pkgSpec{name: "libfoo1", version: "1:1.0-1", arch: "armhf", extra: "Source: libfoo (1.0-1)\n"}),
		buildDeb(t, debs, pkgSpec{name: "big", version: "1", payload: strings.Repeat("payload\n", 200000)}),
	}
	trees := map[bool]string{}
	for _, plain := range []bool{false, true} {
		r := newTestRepo(t, testDistributions, Options{PlainFileIO: plain})
		if ds, ok := r.Storage().(*storage.DirStorage); !ok || ds.PlainIO != plain {
			t.Fatalf("plain %v: storage %#v", plain, r.Storage())
		}
		mustInclude(t, r, "bookworm", files...)
		_, err := r.IncludeDeb(context.Background(), "bookworm", []string{debs}, IncludeOptions{})
		if !errors.Is(err, ErrBadPackage) || !strings.Contains(err.Error(), debs+": unusable package: not a regular file") {
			t.Fatalf("plain %v: a directory as a package: %v", plain, err)
		}
		trees[plain] = testutil.TreeSum(t, r.Base, "dists", "pool")
	}
	// "plain-file-io" in conf/options turns it on for whoever opens the
	// repository.
	r := newTestRepo(t, testDistributions, Options{})
	os.WriteFile(filepath.Join(r.Base, "conf", "options"), []byte("plain-file-io\n"), 0o644)
	r2, err := Open(r.Base, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if ds, ok := r2.Storage().(*storage.DirStorage); !ok || !ds.PlainIO || !r2.opts.PlainFileIO {
		t.Fatalf("conf/options plain-file-io: storage %#v", r2.Storage())
	}
	if trees[false] != trees[true] {
		t.Fatalf("raw and plain file I/O publish different trees:\nraw:\n%s\nplain:\n%s", trees[false], trees[true])
	}
}
