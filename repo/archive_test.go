package repo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// An Archive field must name another distribution by its codename, and
// the archives must not lead back: each mistake is a configuration error
// naming the file and line of the field and what to write. The archive
// may come before or after the distribution naming it.
func TestArchiveConfig(t *testing.T) {
	t.Parallel()
	para := func(codename, extra string) string {
		return "Codename: " + codename + "\nSuite: " + codename + "-suite\nArchitectures: amd64\nComponents: main\n" + extra + "\n"
	}
	for _, tc := range []struct {
		name, conf string
		want       []string // substrings of the error; none: accepted
	}{
		{"earlier", para("old", "") + "\n" + para("cur", "Archive: old"), nil},
		{"later", para("cur", "Archive: old") + "\n" + para("old", ""), nil},
		{"chain", para("a", "Archive: b") + "\n" + para("b", "Archive: c") + "\n" + para("c", ""), nil},
		{"unknown", para("cur", "Limit: 1\nArchive: nowhere"),
			[]string{"distributions:6:", `no distribution has "nowhere" as Codename (known: cur)`}},
		{"suite", para("old", "") + "\n" + para("cur", "Archive: old-suite"),
			[]string{"distributions:11:", `"old-suite" is the Suite of "old"; Archive takes the Codename`}},
		{"self", para("cur", "Archive: cur"),
			[]string{"distributions:5:", `"cur" is this distribution itself`}},
		{"cycle of two", para("a", "Archive: b") + "\n" + para("b", "Archive: a"),
			[]string{"distributions:5:", "form a cycle (a → b → a)"}},
		{"cycle of three", para("x", "") + "\n" + para("a", "Archive: b") + "\n" + para("b", "Archive: c") + "\n" + para("c", "Archive: a"),
			[]string{"distributions:11:", "form a cycle (a → b → c → a)"}},
		{"cycle further on", para("a", "Archive: b") + "\n" + para("b", "Archive: c") + "\n" + para("c", "Archive: b"),
			[]string{"distributions:11:", "form a cycle (b → c → b)"}},
		{"two words", para("old", "") + "\n" + para("cur", "Archive: old new"),
			[]string{"distributions:11:", "Archive", "contains ' '"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			writeConf(t, base, tc.conf)
			c, err := LoadConfig(filepath.Join(base, "conf"))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				for _, w := range c.Warnings {
					if strings.Contains(w, "Archive") {
						t.Errorf("warning: %s", w)
					}
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want a configuration error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// An archive that shares no package list with the distribution naming it
// is accepted with a warning: nothing could ever be archived there.
func TestArchiveConfigNothingShared(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeConf(t, base, "Codename: old\nArchitectures: arm64\nComponents: contrib\n\nCodename: cur\nArchitectures: amd64\nComponents: main\nArchive: old\n")
	c, err := LoadConfig(filepath.Join(base, "conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "distributions:8: Archive: old has none of the package lists of cur") {
		t.Fatalf("warnings %q", c.Warnings)
	}
}

// archiveConf: buster keeps one version and archives what Limit pushes
// out into buster-archive (Limit 2), which archives in turn into
// buster-attic (every version); all three track their source packages.
const archiveConf = `Codename: buster-attic
Architectures: amd64
Components: main
Limit: -1
Tracking: all

Codename: buster
Architectures: amd64
Components: main
Limit: 1
Archive: buster-archive
Tracking: all

Codename: buster-archive
Architectures: amd64
Components: main
Limit: 2
Archive: buster-attic
Tracking: all
`

// Versions Limit pushes out go to the Archive distribution, whose own
// Limit applies and pushes out further into its own Archive; the pool
// keeps their files, the tracking records follow them, and each
// distribution's Packages index lists what it holds. Under reprepro's
// rules and under lampi-pkg's stricter ones alike.
func TestArchiveLimit(t *testing.T) {
	t.Parallel()
	for _, reprepro := range []bool{true, false} {
		t.Run(fmt.Sprintf("reprepro=%v", reprepro), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newTestRepo(t, archiveConf, Options{RepreproRules: reprepro})
			debs := t.TempDir()
			deb := func(v string) string {
				return buildDeb(t, debs, pkgSpec{name: "hello", version: v, arch: "amd64", plain: true})
			}
			pool := func(v string) string { return filepath.Join(r.Base, "pool/main/h/hello/hello_"+v+"_amd64.deb") }
			want := func(codename string, versions ...string) {
				t.Helper()
				if got := versionsIn(t, r, codename, "hello"); !reflect.DeepEqual(got, versions) {
					t.Fatalf("%s holds %v, want %v", codename, got, versions)
				}
				packages := readFile(t, filepath.Join(r.Base, "dists", codename, "main/binary-amd64/Packages"))
				if n := strings.Count(packages, "Package: hello\n"); n != len(versions) {
					t.Fatalf("%s Packages lists hello %d times, want %d:\n%s", codename, n, len(versions), packages)
				}
				for _, v := range versions {
					if !strings.Contains(packages, "Version: "+v+"\n") || !strings.Contains(packages, "Filename: pool/main/h/hello/hello_"+v+"_amd64.deb\n") {
						t.Fatalf("%s Packages lacks %s:\n%s", codename, v, packages)
					}
					if _, err := os.Stat(pool(v)); err != nil {
						t.Fatalf("%s: pool file of %s: %v", codename, v, err)
					}
				}
			}

			mustInclude(t, r, "buster", deb("1"))
			res := mustInclude(t, r, "buster", deb("2"))
			want("buster", "2")
			want("buster-archive", "1")
			archived := Change{Action: "add", Target: Target{Codename: "buster-archive", Component: "main", Arch: "amd64"}, Package: "hello", Version: "1",
				File: "pool/main/h/hello/hello_1_amd64.deb", ArchivedFrom: "buster|main|amd64"}
			if len(res.Changes) != 2 || res.Changes[0] != archived || res.Changes[1].Action != "replace" || res.Changes[1].OldVersion != "1" {
				t.Fatalf("changes %+v", res.Changes)
			}
			if !reflect.DeepEqual(res.Exported, []string{"buster", "buster-archive"}) {
				t.Fatalf("exported %v", res.Exported)
			}

			mustInclude(t, r, "buster", deb("3"))
			want("buster-archive", "2", "1")
			// buster-archive's Limit 2 pushes 1 out into buster-attic.
			res = mustInclude(t, r, "buster", deb("4"))
			want("buster", "4")
			want("buster-archive", "3", "2")
			want("buster-attic", "1")
			if len(res.Deleted) != 0 {
				t.Fatalf("deleted %v", res.Deleted)
			}
			tracks, err := r.DumpTracks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tr := range tracks {
				got = append(got, fmt.Sprintf("%s %s %s %v", tr.Codename, tr.Source, tr.Version, tr.Files))
			}
			wantTracks := []string{
				"buster-attic hello 1 [{pool/main/h/hello/hello_1_amd64.deb b 1}]",
				"buster hello 4 [{pool/main/h/hello/hello_4_amd64.deb b 1}]",
				"buster-archive hello 2 [{pool/main/h/hello/hello_2_amd64.deb b 1}]",
				"buster-archive hello 3 [{pool/main/h/hello/hello_3_amd64.deb b 1}]",
			}
			if !reflect.DeepEqual(got, wantTracks) {
				t.Fatalf("tracking records\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantTracks, "\n"))
			}
			lines, err := r.Ls(ctx, Selection{}, "hello")
			if err != nil || len(lines) != 4 {
				t.Fatalf("ls %+v %v", lines, err)
			}

			// Removing from buster does not archive; removing the last
			// holder deletes the pool file.
			if _, err := r.Remove(ctx, "buster", Selection{}, []string{"hello"}); err != nil {
				t.Fatal(err)
			}
			want("buster")
			want("buster-archive", "3", "2")
			if res, err = r.Remove(ctx, "buster-attic", Selection{}, []string{"hello"}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Deleted, []string{"pool/main/h/hello/hello_1_amd64.deb"}) {
				t.Fatalf("deleted %v", res.Deleted)
			}
			if _, err := os.Stat(pool("4")); err == nil {
				t.Fatal("the pool file of 4 outlived every package list and record")
			}
		})
	}
}

// Into the archive a version is added as includedeb adds it: one older
// than the archive's Limit-th newest is skipped (and its pool file goes
// when nothing else holds it), the same version again is left as it is.
func TestArchiveSkipsOlder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conf := "Codename: buster-archive\nArchitectures: amd64\nComponents: main\n\n" +
		"Codename: buster\nArchitectures: amd64\nComponents: main\nArchive: buster-archive\n\n" +
		"Codename: proposed\nArchitectures: amd64\nComponents: main\nLimit: -1\n"
	r := newTestRepo(t, conf, Options{RepreproRules: true})
	debs := t.TempDir()
	deb := func(v string) string {
		return buildDeb(t, debs, pkgSpec{name: "hello", version: v, arch: "amd64", plain: true})
	}
	mustInclude(t, r, "buster", deb("1"))
	mustInclude(t, r, "buster", deb("3"))
	mustInclude(t, r, "proposed", deb("2"), deb("1"))
	// A move downgrades buster to 2: 3 is archived, replacing 1 there.
	if _, err := r.Move(ctx, "buster", "proposed", Selection{}, []string{"hello=2"}); err != nil {
		t.Fatal(err)
	}
	if got := versionsIn(t, r, "buster-archive", "hello"); !reflect.DeepEqual(got, []string{"3"}) {
		t.Fatalf("buster-archive: %v", got)
	}
	// Down to 1: 2 is older than the archive's 3, so it is skipped and,
	// held by nothing, deleted.
	res, err := r.Move(ctx, "buster", "proposed", Selection{}, []string{"hello=1"})
	if err != nil {
		t.Fatal(err)
	}
	skip := Change{Action: "skip", Target: Target{Codename: "buster-archive", Component: "main", Arch: "amd64"}, Package: "hello", Version: "2",
		File: "pool/main/h/hello/hello_2_amd64.deb", OldVersion: "3", ArchivedFrom: "buster|main|amd64"}
	if res.Changes[0] != skip {
		t.Fatalf("changes %+v", res.Changes)
	}
	if !reflect.DeepEqual(res.Deleted, []string{"pool/main/h/hello/hello_2_amd64.deb"}) {
		t.Fatalf("deleted %v", res.Deleted)
	}
	for codename, want := range map[string][]string{"buster": {"1"}, "buster-archive": {"3"}, "proposed": nil} {
		if got := versionsIn(t, r, codename, "hello"); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", codename, got, want)
		}
	}
	// 3 back into buster (copy: it stays in the archive); 1 goes to the
	// archive, where it is older than 3: skipped.
	if _, err := r.Copy(ctx, "buster", "buster-archive", Selection{}, []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	// Then 4: 3 is in the archive already, which stays as it is.
	res = mustInclude(t, r, "buster", deb("4"))
	if res.Changes[0].Action != "unchanged" || res.Changes[0].Target.Codename != "buster-archive" {
		t.Fatalf("changes %+v", res.Changes)
	}
	for codename, want := range map[string][]string{"buster": {"4"}, "buster-archive": {"3"}} {
		if got := versionsIn(t, r, codename, "hello"); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", codename, got, want)
		}
	}
}

// A move out of the archive distribution itself: the version it replaces
// is archived into the distribution it is being moved out of, then it
// leaves that one.
func TestArchiveMoveBack(t *testing.T) {
	t.Parallel()
	conf := "Codename: buster-archive\nArchitectures: amd64\nComponents: main\nLimit: -1\nTracking: all\n\n" +
		"Codename: buster\nArchitectures: amd64\nComponents: main\nArchive: buster-archive\nTracking: all\n"
	for _, reprepro := range []bool{true, false} {
		t.Run(fmt.Sprintf("reprepro=%v", reprepro), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newTestRepo(t, conf, Options{RepreproRules: reprepro})
			debs := t.TempDir()
			mustInclude(t, r, "buster", buildDeb(t, debs, pkgSpec{name: "hello", version: "1", arch: "amd64", plain: true}))
			mustInclude(t, r, "buster-archive", buildDeb(t, debs, pkgSpec{name: "hello", version: "2", arch: "amd64", plain: true}))
			if _, err := r.Move(ctx, "buster", "buster-archive", Selection{}, []string{"hello=2"}); err != nil {
				t.Fatal(err)
			}
			for codename, want := range map[string][]string{"buster": {"2"}, "buster-archive": {"1"}} {
				if got := versionsIn(t, r, codename, "hello"); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: %v, want %v", codename, got, want)
				}
			}
			tracks, err := r.DumpTracks(ctx)
			if err != nil || len(tracks) != 2 || tracks[0].Codename != "buster-archive" || tracks[0].Version != "1" ||
				tracks[1].Codename != "buster" || tracks[1].Version != "2" {
				t.Fatalf("tracks %+v %v", tracks, err)
			}
		})
	}
}

// Moving a version out of an archive whose own Limit then pushes that
// same version out (it takes the version the move displaced): the final
// lists are right and the move reports no removal of what was already
// gone (it used to report "remove hello 1 from arch" a second time).
func TestArchiveMoveOutPushedByArchiveLimit(t *testing.T) {
	t.Parallel()
	conf := "Codename: arch\nArchitectures: amd64\nComponents: main\nLimit: 1\n\n" +
		"Codename: stable\nArchitectures: amd64\nComponents: main\nLimit: 1\nArchive: arch\n"
	r := newTestRepo(t, conf, Options{RepreproRules: true})
	debs := t.TempDir()
	mustInclude(t, r, "arch", buildDeb(t, debs, pkgSpec{name: "hello", version: "1", arch: "amd64", plain: true}))
	mustInclude(t, r, "stable", buildDeb(t, debs, pkgSpec{name: "hello", version: "2", arch: "amd64", plain: true}))
	res, err := r.Move(context.Background(), "stable", "arch", Selection{}, []string{"hello=1"})
	if err != nil {
		t.Fatal(err)
	}
	for codename, want := range map[string][]string{"stable": {"1"}, "arch": {"2"}} {
		if got := versionsIn(t, r, codename, "hello"); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", codename, got, want)
		}
	}
	for _, c := range res.Changes {
		if c.Action == "remove" {
			t.Errorf("move reported %+v, but the archive's Limit had replaced that version already", c)
		}
	}
}

// An archive without the package list (component and architecture) a
// version leaves: it cannot be archived, is removed, and the command says
// so.
func TestArchiveNoMatchingList(t *testing.T) {
	t.Parallel()
	var warns []string
	conf := "Codename: old\nArchitectures: amd64\nComponents: main\nLimit: -1\n\n" +
		"Codename: cur\nArchitectures: amd64 arm64\nComponents: main\nArchive: old\n"
	r := newTestRepo(t, conf, Options{Warn: func(m string) { warns = append(warns, m) }})
	debs := t.TempDir()
	for _, v := range []string{"1", "2"} {
		mustInclude(t, r, "cur", buildDeb(t, debs, pkgSpec{name: "hello", version: v, arch: "arm64", plain: true}))
	}
	want := []string{"cannot archive 'hello=1' from 'cur' to 'old' since 'old' has no matching component/architecture/packagetype; it is removed"}
	if !reflect.DeepEqual(warns, want) {
		t.Fatalf("warnings %q", warns)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hello/hello_1_arm64.deb")); err == nil {
		t.Fatal("the pool file of the version that could not be archived stayed")
	}
}

// A read-only archive fails the command that would archive into it,
// which then changes nothing.
func TestArchiveReadOnly(t *testing.T) {
	t.Parallel()
	conf := "Codename: old\nArchitectures: amd64\nComponents: main\nReadOnly: yes\n\n" +
		"Codename: cur\nArchitectures: amd64\nComponents: main\nArchive: old\n"
	r := newTestRepo(t, conf, Options{})
	debs := t.TempDir()
	mustInclude(t, r, "cur", buildDeb(t, debs, pkgSpec{name: "hello", version: "1", plain: true}))
	_, err := r.IncludeDeb(context.Background(), "cur", []string{buildDeb(t, debs, pkgSpec{name: "hello", version: "2", plain: true})}, IncludeOptions{})
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "old (ReadOnly in") || !strings.Contains(err.Error(), "is the Archive of cur") {
		t.Fatalf("got %v", err)
	}
	if got := versionsIn(t, r, "cur", "hello"); !reflect.DeepEqual(got, []string{"1"}) {
		t.Fatalf("cur: %v", got)
	}
}

// Source packages are archived like binaries: the source entry and all
// its files, into the archive's Sources index.
func TestArchiveSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conf := "Codename: old\nArchitectures: amd64 source\nComponents: main\nLimit: -1\nTracking: all\n\n" +
		"Codename: cur\nArchitectures: amd64 source\nComponents: main\nArchive: old\nTracking: all\n"
	r := newTestRepo(t, conf, Options{})
	dir := t.TempDir()
	o := IncludeOptions{Section: "utils", Priority: "optional"}
	for _, rev := range []string{"1", "2"} {
		if _, err := r.IncludeDsc(ctx, "cur", writeDsc(t, dir, "hello", "1.0", rev), o); err != nil {
			t.Fatal(err)
		}
	}
	es, err := r.List(ctx, "old", Selection{}, nil, nil)
	if err != nil || len(es) != 1 || es[0].Target.String() != "old|main|source" || es[0].Version != "1.0-1" {
		t.Fatalf("old: %+v %v", es, err)
	}
	sources := readFile(t, filepath.Join(r.Base, "dists/old/main/source/Sources"))
	if !strings.Contains(sources, "Package: hello\n") || !strings.Contains(sources, "Version: 1.0-1\n") {
		t.Fatalf("old Sources:\n%s", sources)
	}
	for _, f := range []string{"hello_1.0-1.dsc", "hello_1.0.orig.tar.gz", "hello_1.0-1.debian.tar.xz", "hello_1.0-2.dsc"} {
		if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hello", f)); err != nil {
			t.Fatal(err)
		}
	}
	tracks, err := r.DumpTracks(ctx, "old")
	if err != nil || len(tracks) != 1 || len(tracks[0].Files) != 3 || tracks[0].Files[0].Type != "s" {
		t.Fatalf("old's records %+v %v", tracks, err)
	}
}

// The archive distribution is published and signed like any other: a
// real apt-get reads both distributions over HTTP without a warning
// (gpgv checks each InRelease against the key) and installs the
// archived version from the archive.
func TestArchiveApt(t *testing.T) {
	t.Parallel()
	secret, pub := testKeyFile(t)
	conf := fmt.Sprintf("Origin: Lampi\nCodename: stable-archive\nArchitectures: amd64\nComponents: main\nLimit: -1\nSignWith: %s\n\n"+
		"Origin: Lampi\nCodename: stable\nArchitectures: amd64\nComponents: main\nArchive: stable-archive\nSignWith: %s\n", secret, secret)
	r := newTestRepo(t, conf, Options{})
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Base)))
	defer srv.Close()
	debs := t.TempDir()
	for _, v := range []string{"0.1", "0.2", "0.3"} {
		mustInclude(t, r, "stable", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
	}
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\ndeb [signed-by=%[1]s] %[2]s/ stable-archive main\n", pub, srv.URL))
	apt.Update()
	out, err := exec.Command("apt-cache", append(testutil.AptOptions(apt.Root, "amd64"), "madison", "hi")...).CombinedOutput()
	if err != nil {
		t.Fatalf("apt-cache madison: %v\n%s", err, out)
	}
	for _, want := range []string{"hi |        0.3 | " + srv.URL + " stable/main amd64 Packages",
		"hi |        0.2 | " + srv.URL + " stable-archive/main amd64 Packages",
		"hi |        0.1 | " + srv.URL + " stable-archive/main amd64 Packages"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("apt-cache madison lacks %q:\n%s", want, out)
		}
	}
	apt.MustRun("install", "hi=0.1")
	if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.1\n" {
		t.Fatalf("installed data %q", got)
	}
}
