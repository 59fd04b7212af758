package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// A source entry's stanza lists all its pool files, and entryFiles reads
// them back from the stored value: the .dsc first, then the .dsc's files
// in their order. A binary entry has its one file.
func TestEntryFilesOfSourceStanza(t *testing.T) {
	dsc, err := deb.ParseDsc(strings.NewReader(`Format: 3.0 (quilt)
Source: libfoo
Binary: libfoo1, libfoo-dev
Architecture: any
Version: 1:2.0-3
Maintainer: M <m@example.org>
Checksums-Sha256:
 `+strings.Repeat("a", 64)+` 10 libfoo_2.0.orig.tar.gz
 `+strings.Repeat("b", 64)+` 20 libfoo_2.0-3.debian.tar.xz
Files:
 `+strings.Repeat("c", 32)+` 10 libfoo_2.0.orig.tar.gz
 `+strings.Repeat("d", 32)+` 20 libfoo_2.0-3.debian.tar.xz
`), "libfoo_2.0-3.dsc")
	if err != nil {
		t.Fatal(err)
	}
	sp := &sourcePackage{dsc: dsc, name: "libfoo", version: dsc.Version, component: "main", section: "libs", priority: "optional"}
	for _, n := range []string{"libfoo_2.0-3.dsc", "libfoo_2.0.orig.tar.gz", "libfoo_2.0-3.debian.tar.xz"} {
		sp.files = append(sp.files, sourceFile{filekey: PoolDir("main", "libfoo") + "/" + n, sums: sumBytes([]byte(n))})
	}
	d := &Distribution{Codename: "stable", Components: []string{"main"}, HasSource: true}
	e := sp.entry(d)
	want := "pool/main/libf/libfoo/libfoo_2.0-3.dsc pool/main/libf/libfoo/libfoo_2.0.orig.tar.gz pool/main/libf/libfoo/libfoo_2.0-3.debian.tar.xz"
	if got := strings.Join(entryFiles(pkgValue(e.File, e.Stanza)), " "); got != want {
		t.Errorf("entryFiles = %s, want %s", got, want)
	}
	if got := strings.Join(e.Files(), " "); got != want {
		t.Errorf("Entry.Files = %s, want %s", got, want)
	}
	if e.Target.String() != "stable|main|source" || e.Version != "1:2.0-3" {
		t.Errorf("entry %s %s", e.Target, e.Version)
	}
	st := string(e.Stanza)
	if !strings.HasPrefix(st, "Package: libfoo\nFormat: 3.0 (quilt)\n") || strings.Contains(st, "Source:") ||
		!strings.Contains(st, "Priority: optional\nSection: libs\nDirectory: pool/main/libf/libfoo\nFiles:\n") {
		t.Errorf("stanza:\n%s", st)
	}
	if got := entryFiles(pkgValue("pool/main/h/hi/hi_1_all.deb", []byte("Package: hi\n"))); len(got) != 1 || got[0] != "pool/main/h/hi/hi_1_all.deb" {
		t.Errorf("binary entryFiles = %v", got)
	}
	src, ver := entrySource(Entry{Target: Target{Codename: "s", Component: "main", Arch: "amd64"}, Package: "libfoo1", Version: "1:2.0-3+b1", Stanza: []byte("Package: libfoo1\nSource: libfoo (1:2.0-3)\n")})
	if src != "libfoo" || ver != "1:2.0-3" {
		t.Errorf("entrySource = %s %s", src, ver)
	}
}

func TestParseTracking(t *testing.T) {
	for _, c := range []struct{ in, mode, err string }{
		{"all", "all", ""},
		{" minimal ", "minimal", ""},
		{"keep", "keep", ""},
		{"all includechanges", "", "not implemented"},
		{"all keep", "", "give one of"},
		{"", "", "no mode"},
		{"everything", "", "unknown word"},
	} {
		tr, err := parseTracking(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || tr.Mode != c.mode {
			t.Errorf("%q: %+v %v", c.in, tr, err)
		}
	}
}

// An upload of a new revision need not carry the original tarball again
// (dpkg-genchanges -sd): a file the .dsc lists that is not next to it must
// be in the pool with the listed checksums, and is shared.
func TestIncludeDscOriginalFromPool(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64 source\nComponents: main\nLimit: 0\n", Options{})
	opts := IncludeOptions{Section: "utils", Priority: "optional"}
	if _, err := r.IncludeDsc(ctx, "c", writeDsc(t, t.TempDir(), "hello", "1.0", "1"), opts); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dsc := writeDsc(t, dir, "hello", "1.0", "2")
	if err := os.Remove(filepath.Join(dir, "hello_1.0.orig.tar.gz")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.IncludeDsc(ctx, "c", dsc, opts); err != nil {
		t.Fatalf("include without the original tarball: %v", err)
	}
	es, err := r.List(ctx, "c", Selection{}, []string{"hello"}, nil)
	if err != nil || len(es) != 2 {
		t.Fatalf("list: %v %v", es, err)
	}
	for _, e := range es {
		if files := e.Files(); len(files) != 3 || files[2] != "pool/main/h/hello/hello_1.0.orig.tar.gz" {
			t.Errorf("%s: files %v", e, files)
		}
	}
	if p, err := r.Check(ctx); err != nil {
		t.Errorf("check: %v %v", p, err)
	}

	// Another original than the pool's, or none anywhere: refused.
	other := t.TempDir()
	dsc = writeDscWith(t, other, "hello", "1.0", "3", "another original")
	if _, err := r.IncludeDsc(ctx, "c", dsc, opts); !errors.Is(err, ErrVersionClash) {
		t.Errorf("another original next to the .dsc: %v", err)
	}
	os.Remove(filepath.Join(other, "hello_1.0.orig.tar.gz"))
	if _, err := r.IncludeDsc(ctx, "c", dsc, opts); !errors.Is(err, ErrChecksum) {
		t.Errorf("another original listed, none next to the .dsc: %v", err)
	}
	dsc = writeDsc(t, other, "bye", "1.0", "1")
	os.Remove(filepath.Join(other, "bye_1.0.orig.tar.gz"))
	if _, err := r.IncludeDsc(ctx, "c", dsc, opts); err == nil || !strings.Contains(err.Error(), "is neither next to the .dsc nor in the pool") {
		t.Errorf("no original anywhere: %v", err)
	}
}

// An older source package is skipped under Limit as an older binary is
// (reprepro's rule): includedsc of 1.0-1 after 1.0-2 with Limit 1 keeps
// 1.0-2 and writes nothing; with Limit 2 it is added.
func TestIncludeDscOlderUnderLimit(t *testing.T) {
	ctx := context.Background()
	opts := IncludeOptions{Section: "utils", Priority: "optional"}
	for _, tc := range []struct{ limit, want string }{{"1", "2"}, {"2", "2 1"}} {
		r := newTestRepo(t, "Codename: c\nArchitectures: amd64 source\nComponents: main\nLimit: "+tc.limit+"\n", Options{RepreproRules: true})
		if _, err := r.IncludeDsc(ctx, "c", writeDsc(t, t.TempDir(), "hello", "1.0", "2"), opts); err != nil {
			t.Fatal(err)
		}
		res, err := r.IncludeDsc(ctx, "c", writeDsc(t, t.TempDir(), "hello", "1.0", "1"), opts)
		if err != nil {
			t.Fatal(err)
		}
		es, err := r.List(ctx, "c", Selection{}, []string{"hello"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, strings.TrimPrefix(e.Version, "1.0-"))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("Limit %s: versions %v, want %s", tc.limit, got, tc.want)
		}
		_, err = os.Stat(filepath.Join(r.Base, "pool/main/h/hello/hello_1.0-1.dsc"))
		if tc.limit == "1" {
			if len(res.Changes) != 1 || res.Changes[0].Action != "skip" || res.Changes[0].OldVersion != "1.0-2" {
				t.Errorf("Limit 1: changes %+v, want one skip", res.Changes)
			}
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the skipped .dsc is in the pool: %v", err)
			}
		}
	}
}
