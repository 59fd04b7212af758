package repo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestPatchedIndexEqualsRebuilt adds, replaces, phases and removes
// packages at random, one command at a time, in a signed repository whose
// indices are cut into small chunks (4 stanzas on average, so that changes
// fall on chunk starts, the first and the last chunk): after every
// command the published Packages, Packages.gz and Packages.xz of each
// target must be byte for byte what a full rebuild from the database
// writes, and the Release file must list their true checksums; most of
// them must have been patched, not rebuilt; and a real apt-get update
// must take the result and know exactly the packages the database holds.
func TestPatchedIndexEqualsRebuilt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secPath, pub := testKeyFile(t)
	conf := fmt.Sprintf("Origin: Lampi\nLabel: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64 armhf\nComponents: main\nDescription: patch test\nSignWith: %s\nLimit: 2\nDebIndices: Packages Release . .gz .xz\n", secPath)
	r := newTestRepo(t, conf, Options{})
	r.chunkEvery = 4
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 18))

	// 150 names, some for every architecture and some for amd64 only,
	// each with three versions to climb through.
	debs := t.TempDir()
	type pkg struct {
		name, arch string
		next       int // the next version to include (0: not included yet)
	}
	var pkgs []*pkg
	for i := range 150 {
		arch := "all"
		if i%3 == 0 {
			arch = "amd64"
		}
		pkgs = append(pkgs, &pkg{name: fmt.Sprintf("p%03d", rnd.IntN(1000)) + strconv.Itoa(i), arch: arch})
	}
	deb := func(p *pkg) string {
		p.next++
		return buildDeb(t, debs, pkgSpec{name: p.name, version: fmt.Sprintf("1.%d", p.next), arch: p.arch, plain: true})
	}
	var first []string
	for _, p := range pkgs[:100] {
		first = append(first, deb(p))
	}
	mustInclude(t, r, "bookworm", first...)
	checkRebuilt(t, r)

	const commands = 14
	runs := r.patchRuns
	for i := range commands {
		var err error
		var what string
		switch op := rnd.IntN(4); {
		case op <= 1: // include new names and newer versions
			var files []string
			for range 1 + rnd.IntN(4) {
				if p := pkgs[rnd.IntN(len(pkgs))]; p.next < 3 {
					files = append(files, deb(p))
				}
			}
			what = fmt.Sprintf("include %d", len(files))
			if len(files) > 0 {
				_, err = r.IncludeDeb(ctx, "bookworm", files, IncludeOptions{})
			}
		case op == 2: // remove
			var names []string
			for range 1 + rnd.IntN(3) {
				if p := pkgs[rnd.IntN(len(pkgs))]; p.next > 0 && !slices.Contains(names, p.name) {
					names = append(names, p.name)
					p.next = 0 // included anew from 1.1 later
				}
			}
			what = "remove " + strings.Join(names, " ")
			if len(names) > 0 {
				_, err = r.Remove(ctx, "bookworm", Selection{}, names)
			}
		default: // phase the newest version of a name
			p := pkgs[rnd.IntN(len(pkgs))]
			what = "phase " + p.name
			if p.next > 0 {
				_, err = r.PhaseVersion(ctx, "bookworm", p.name, fmt.Sprintf("1.%d", p.next), 10+rnd.IntN(80))
			}
		}
		if err != nil {
			t.Fatalf("command %d (%s): %v", i, what, err)
		}
		t.Logf("command %d: %s", i, what)
		checkRebuilt(t, r)
	}
	if patched := r.patchRuns - runs; patched < commands/2 {
		t.Errorf("%d indices patched in %d commands; most changes should patch", patched, commands)
	}

	// apt takes the patched indices and knows what the database holds.
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Base)))
	defer srv.Close()
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ bookworm main\n", pub, srv.URL))
	apt.Update()
	entries, err := r.List(ctx, "bookworm", Selection{Architectures: []string{"amd64"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		if v, ok := want[e.Package]; !ok || v < e.Version {
			want[e.Package] = e.Version
		}
	}
	var args []string
	for n, v := range want {
		args = append(args, n+"="+v)
	}
	out := apt.MustRun(append([]string{"install", "-s"}, args...)...)
	if got := strings.Count(out, "\nInst "); got != len(want) {
		t.Errorf("apt would install %d packages, want %d:\n%s", got, len(want), out)
	}
	for _, p := range pkgs {
		if _, ok := want[p.name]; !ok {
			if out, err := apt.Run("install", "-s", p.name); err == nil {
				t.Errorf("apt knows %s, which is not in the repository:\n%s", p.name, out)
			}
			break
		}
	}
}

// checkRebuilt compares the published index files of every target of
// bookworm with a full rebuild from the database, and the Release file's
// entries with their checksums.
func checkRebuilt(t *testing.T, r *Repo) {
	t.Helper()
	d, err := r.Conf.Distribution("bookworm")
	if err != nil {
		t.Fatal(err)
	}
	release := readFile(t, filepath.Join(r.Base, "dists", "bookworm", "Release"))
	err = r.view(func(tx *bolt.Tx) error {
		for _, tg := range d.Targets() {
			s := newPkgStream()
			s.every = r.chunkEvery
			var free freeList
			defer free.free()
			if err := readPackages(tx, tg, 0, &free, nil, s); err != nil {
				return err
			}
			files, _, err := buildIndex(d, tg, s, &free)
			if err != nil {
				return err
			}
			for _, f := range files {
				if !f.written {
					continue
				}
				got, err := os.ReadFile(filepath.Join(r.Base, "dists", "bookworm", f.rel))
				if err != nil {
					return err
				}
				if string(got) != string(f.data) {
					t.Errorf("%s: published %d bytes differ from the %d of a rebuild", f.rel, len(got), len(f.data))
				}
				c := sumBytes(f.data)
				for _, sum := range []string{c.MD5, c.SHA1, c.SHA256, c.SHA512} {
					if line := fmt.Sprintf(" %s %d %s\n", sum, c.Size, f.rel); !strings.Contains(release, line) {
						t.Errorf("Release lacks%q", line)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}
