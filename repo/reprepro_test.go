package repo

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/ulikunitz/xz"
)

// The configuration both tools get. No Limit (reprepro 5.3 rejects it).
const compareDistributions = `Origin: Lampi
Label: Lampi
Suite: stable
Codename: bookworm
Version: 12.0
Architectures: armhf arm64 amd64
Components: main contrib
Description: lampi test repository

# a comment, and one after a value
Origin: Lampi
Suite: testing
Codename: trixie
Architectures: amd64 armhf # the devices
Components: main
Description: lampi testing
ValidFor: 7d
NotAutomatic: yes
ButAutomaticUpgrades: yes
DebIndices: Packages Release .gz .xz
`

// TestSameAsReprepro runs reprepro (the Debian package) and lampi-pkg on
// the same conf/distributions and .debs, and compares the published
// trees: the same files under dists/ and pool/ (ours also has by-hash/),
// equal Packages stanzas but for the SHA512 we add, byte-equal
// per-architecture Release files and equal top-level Release files but
// for Date, Valid-Until, Acquire-By-Hash and the checksums of Packages
// files (ours hold SHA512 lines; gzip and xz encoders differ).
func TestSameAsReprepro(t *testing.T) {
	testutil.Heavy(t, "runs the real reprepro beside lampi-pkg on the same operations")
	t.Parallel()
	reprepro := testutil.RequireTool(t, "reprepro")
	ctx := context.Background()
	debs := t.TempDir()
	batches := [][]string{
		{
			buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
			buildDeb(t, debs, pkgSpec{name: "libfoo1", version: "1:1.0-1+b1", arch: "armhf",
				extra: "Source: libfoo (1.0-1)\nDepends: hi (>= 0.1)\nMulti-Arch: same\nHomepage: https://example.org/\n"}),
			buildDeb(t, debs, pkgSpec{name: "lampi-net", version: "2.0~rc1", arch: "amd64", extra: "Installed-Size: 12\n", gzip: true}),
			buildDeb(t, debs, pkgSpec{name: "zz-top", version: "1.0", arch: "amd64"}),
		},
		{buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"})},
	}
	netDeb := buildDeb(t, t.TempDir(), pkgSpec{name: "netcat-lampi", version: "1.0", arch: "amd64"})

	ours := newTestRepo(t, compareDistributions, Options{})
	theirs := t.TempDir()
	writeConf(t, theirs, compareDistributions)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(reprepro, append([]string{"-b", theirs, "--export=changed"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("reprepro %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, codename := range []string{"bookworm", "trixie"} {
		for _, b := range batches {
			run(append([]string{"includedeb", codename}, b...)...)
			mustInclude(t, ours, codename, b...)
		}
	}
	run("-C", "contrib", "includedeb", "bookworm", netDeb)
	if _, err := ours.IncludeDeb(ctx, "bookworm", []string{netDeb}, IncludeOptions{Component: "contrib"}); err != nil {
		t.Fatal(err)
	}
	run("remove", "trixie", "zz-top")
	if _, err := ours.Remove(ctx, "trixie", Selection{}, []string{"zz-top"}); err != nil {
		t.Fatal(err)
	}

	ourFiles, theirFiles := publishedFiles(t, ours.Base), publishedFiles(t, theirs)
	if strings.Join(ourFiles, "\n") != strings.Join(theirFiles, "\n") {
		t.Fatalf("published files differ\nours:\n%s\nreprepro:\n%s", strings.Join(ourFiles, "\n"), strings.Join(theirFiles, "\n"))
	}
	for _, f := range ourFiles {
		switch base := filepath.Base(f); {
		case strings.HasPrefix(base, "Packages"):
			a, b := packagesText(t, filepath.Join(ours.Base, f)), packagesText(t, filepath.Join(theirs, f))
			if a != b {
				t.Errorf("%s differs\nours:\n%s\nreprepro:\n%s", f, a, b)
			}
		case base == "Release" && strings.Count(f, "/") == 2:
			a, b := releaseText(t, filepath.Join(ours.Base, f)), releaseText(t, filepath.Join(theirs, f))
			if a != b {
				t.Errorf("%s differs\nours:\n%s\nreprepro:\n%s", f, a, b)
			}
		case strings.HasPrefix(f, "pool/") || base == "Release":
			if a, b := readFile(t, filepath.Join(ours.Base, f)), readFile(t, filepath.Join(theirs, f)); a != b {
				t.Errorf("%s differs", f)
			}
		}
	}
}

// publishedFiles lists the files under dists/ and pool/, without by-hash/.
func publishedFiles(t *testing.T, base string) []string {
	var out []string
	for _, top := range []string{"dists", "pool"} {
		filepath.WalkDir(filepath.Join(base, top), func(p string, d os.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.IsDir() && d.Name() == "by-hash" {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(base, p)
				out = append(out, rel)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// packagesText returns a Packages file's content, decompressed, without
// SHA512 lines.
func packagesText(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	switch filepath.Ext(p) {
	case ".gz":
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	case ".xz":
		if r, err = xz.NewReader(f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var b strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "SHA512: ") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return strings.TrimRight(b.String(), "\n")
}

// releaseText returns a top-level Release without what may differ:
// Date, Valid-Until, Acquire-By-Hash, the SHA512 list and the checksums of
// Packages files (their names stay).
func releaseText(t *testing.T, p string) string {
	var b strings.Builder
	section := ""
	for _, l := range strings.Split(readFile(t, p), "\n") {
		if !strings.HasPrefix(l, " ") {
			section = l
			if strings.HasPrefix(l, "Date:") || strings.HasPrefix(l, "Valid-Until:") || strings.HasPrefix(l, "Acquire-By-Hash:") || l == "SHA512:" {
				continue
			}
		} else if section == "SHA512:" {
			continue
		} else if f := strings.Fields(l); len(f) == 3 && filepath.Base(f[2]) != "Release" {
			// Packages* differ by our SHA512 lines (compared apart) and
			// by the compressors.
			l = " (index) " + f[2]
		}
		b.WriteString(l + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// TestAdoptRepreproRepository takes over a repository reprepro made: the
// first lampi-pkg command keeps every package reprepro published.
func TestAdoptRepreproRepository(t *testing.T) {
	testutil.Heavy(t, "builds a repository with the real reprepro and adopts it")
	t.Parallel()
	reprepro := testutil.RequireTool(t, "reprepro")
	base := t.TempDir()
	writeConf(t, base, compareDistributions)
	debs := t.TempDir()
	old := []string{buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}), buildDeb(t, debs, pkgSpec{name: "tool", version: "2.0", arch: "amd64"})}
	cmd := exec.Command(reprepro, append([]string{"-b", base, "includedeb", "bookworm"}, old...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reprepro: %v\n%s", err, out)
	}
	var warned []string
	r, err := Open(base, Options{Now: fixedNow, Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "new", version: "1.0"}))
	es, err := r.List(context.Background(), "bookworm", Selection{Architectures: []string{"amd64"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.String())
	}
	if want := "bookworm|main|amd64: hi 0.1\nbookworm|main|amd64: new 1.0\nbookworm|main|amd64: tool 2.0"; strings.Join(got, "\n") != want {
		t.Errorf("after adoption:\n%s", strings.Join(got, "\n"))
	}
	pk := readFile(t, filepath.Join(base, "dists/bookworm/main/binary-amd64/Packages"))
	if strings.Count(pk, "Package: ") != 3 || strings.Count(pk, "SHA512: ") != 3 {
		t.Errorf("Packages:\n%s", pk)
	}
	if !strings.Contains(strings.Join(warned, "\n"), "adopted 4 package entries of bookworm") {
		t.Errorf("warnings: %v", warned)
	}
	if p, err := r.CheckPool(context.Background(), false); err != nil {
		t.Errorf("checkpool: %v %v", p, err)
	}
	// Updating the adopted package follows the version rules.
	if _, err := r.IncludeDeb(context.Background(), "bookworm", []string{old[0]}, IncludeOptions{}); err != nil {
		t.Errorf("the adopted file again: %v", err)
	}
}
