//go:build !race

// The real Debian packages rebuilt and judged by dpkg-deb, lintian and
// md5sums: format fidelity on megabytes of real data, compute-heavy under
// the race detector (gzip and xz of whole packages, 10-40 times slower),
// so left out of its build like heavy_test.go: "make test" runs them in
// its second pass without -race (HEAVY_TESTS). The concurrency of Build
// and Extract is checked under the race detector by the tests on the
// fixture trees (TestParallelCompressionDeterministic among them).

package deb_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// The packages the issue named (lampi-pkg's build lost hard-link names,
// modes and owners on them); the tests use every package in the cache,
// these must be among them.
var issuePackages = []string{"perl-base", "bzip2", "gzip", "base-files", "sudo", "tzdata", "libutempter0", "ucf"}

// listed is one entry of "dpkg-deb --contents", normalised for comparison:
// hard links read as the regular file they name (which name of a set is
// the first one depends on the builder's order).
type listed struct {
	perm, owner, size, date, link string
}

// dpkgContents runs the real dpkg-deb --contents and parses its lines.
func dpkgContents(t *testing.T, pkg string) map[string]listed {
	t.Helper()
	out := mustRun(t, "env", "TZ=UTC", "dpkg-deb", "--contents", pkg)
	entries := map[string]listed{}
	hard := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.SplitN(line, " ", 6)
		for len(f) == 6 && f[2] == "" { // the size column is right-aligned
			f = append(f[:2], strings.SplitN(f[3]+" "+strings.Join(f[4:], " "), " ", 4)...)
		}
		if len(f) != 6 {
			t.Fatalf("%s: unexpected dpkg-deb --contents line %q", pkg, line)
		}
		e := listed{perm: f[0], owner: f[1], size: f[2], date: f[3] + " " + f[4]}
		name := f[5]
		if n, target, ok := strings.Cut(name, " -> "); ok && e.perm[0] == 'l' {
			name, e.link = n, target
		}
		if n, target, ok := strings.Cut(name, " link to "); ok && e.perm[0] == 'h' {
			name, hard[n] = n, target
			e.perm = "-" + e.perm[1:]
		}
		entries[name] = e
	}
	for name, target := range hard {
		e := entries[name]
		e.size = entries[target].size
		entries[name] = e
	}
	return entries
}

// ownersFile declares what the original says of every entry that is not
// plain root:root: its owner and group (with the ids stored, for names
// without a fixed Debian id), and root:root again for setuid and setgid
// entries, which the build otherwise warns about.
func ownersFile(t *testing.T, orig string) (manifest string, special []string) {
	t.Helper()
	f, err := os.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := deb.Contents(f)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		p := filepath.Clean("/" + strings.TrimPrefix(e.Name, "./"))
		setid := e.Mode&(os.ModeSetuid|os.ModeSetgid) != 0 && e.Type != deb.TypeSymlink
		if setid {
			special = append(special, p)
		}
		if e.User == "root" && e.Group == "root" && !setid || e.Type == deb.TypeHardlink {
			continue
		}
		fmt.Fprintf(&b, "%s:%d %s:%d - %s\n", e.User, e.UID, e.Group, e.GID, p)
	}
	return b.String(), special
}

// rawExtract unpacks a package with the real dpkg-deb --raw-extract.
func rawExtract(t *testing.T, pkg string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	mustRun(t, "dpkg-deb", "--raw-extract", pkg, dir)
	return dir
}

func buildWith(t *testing.T, tree string, opts deb.BuildOptions) ([]byte, *deb.BuildResult) {
	t.Helper()
	root, err := os.OpenRoot(tree)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), root.FS(), &buf, opts)
	if err != nil {
		t.Fatalf("build %s: %v", tree, err)
	}
	return buf.Bytes(), res
}

// md5sumsOf returns the sorted lines of a package's md5sums, read by the
// real dpkg-deb; none for a package without (only directories and links).
func md5sumsOf(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("dpkg-deb", "--info", pkg, "md5sums")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "contains no control component 'md5sums'") {
			return nil
		}
		t.Fatalf("dpkg-deb --info %s md5sums: %v\n%s", pkg, err, out)
	}
	return sortedLines(string(out))
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return l
}

// TestRebuildRealPackages unpacks real Debian packages with dpkg-deb -R,
// rebuilds each tree with Build and an owners file declaring what the
// original's data says, and judges the result with the real tools: the
// md5sums list every name (hard links too), and every entry has the
// original's mode bits, owner and group, size, time and link target. A
// setuid or setgid entry built without a declaration is warned about.
func TestRebuildRealPackages(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb")
	debs := testutil.RealDebs(t, issuePackages...)
	names := make([]string, 0, len(debs))
	for name := range debs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		orig := debs[name]
		t.Run(name, func(t *testing.T) {
			tree := rawExtract(t, orig)
			manifest, special := ownersFile(t, orig)
			owners, err := deb.ParseOwners(strings.NewReader(manifest), "owners")
			if err != nil {
				t.Fatalf("owners file:\n%s\n%v", manifest, err)
			}
			// gzip: what is judged here does not depend on the compressor
			// (xz is judged by TestXZSizeNearXZ6OnRealPackages), and gzip
			// is many times cheaper under the race detector.
			data, res := buildWith(t, tree, deb.BuildOptions{Owners: owners, Compression: deb.CompressGzip})
			ours := filepath.Join(t.TempDir(), res.Filename)
			if err := os.WriteFile(ours, data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, w := range res.Warnings {
				if strings.Contains(w.Msg, "owner") {
					t.Errorf("warning although the owners file declares everything: %s", w)
				}
			}

			// md5sums: the same lines as the original's, hard links included.
			want, got := md5sumsOf(t, orig), md5sumsOf(t, ours)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("md5sums differ from the original's:\n%s", lineDiff(want, got))
			}

			// Every entry as the original has it.
			a, b := dpkgContents(t, orig), dpkgContents(t, ours)
			for p, e := range a {
				g, ok := b[p]
				if e.perm[0] == 'd' {
					// dpkg-deb -R leaves some directories with the time of
					// the extraction: the tree is not the original there.
					g.date = e.date
				}
				if !ok {
					t.Errorf("%s: missing from the rebuilt package", p)
				} else if g != e {
					t.Errorf("%s: rebuilt as %+v, original %+v", p, g, e)
				}
			}
			if len(b) != len(a) {
				t.Errorf("rebuilt package has %d entries, the original %d", len(b), len(a))
			}

			// Without the owners file, each setuid/setgid entry is named
			// in a warning, as it is left root:root.
			_, plain := buildWith(t, tree, deb.BuildOptions{Compression: deb.CompressNone})
			for _, p := range special {
				found := false
				for _, w := range plain.Warnings {
					found = found || w.File == strings.TrimPrefix(p, "/") && strings.Contains(w.Msg, "root:root")
				}
				if !found {
					t.Errorf("no warning that setuid/setgid %s is left root:root; warnings: %v", p, plain.Warnings)
				}
			}
		})
	}
}

func lineDiff(want, got []string) string {
	in := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range l {
			m[s] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			b.WriteString("- " + s + "\n")
		}
	}
	for _, s := range got {
		if !w[s] {
			b.WriteString("+ " + s + "\n")
		}
	}
	return b.String()
}

// lintianSlow are left out of the lintian comparison: lintian spends
// about 50 s on passwd alone (measured here; 4-10 s on each other
// package, perl-base and tzdata included), and passwd is none of the
// packages lintian flagged in the issue.
var lintianSlow = map[string]bool{"passwd": true}

// TestRebuiltRealPackagesLintian runs the real lintian on the original
// packages and on their rebuilds (tree from dpkg-deb -R, owners declared
// as in the original): the rebuild may not draw a tag the original does
// not have. The originals' verdicts are lintian's from an earlier run on
// the same bytes with the same lintian, when there was one
// (referenceLintianTags): it halves the test's time.
func TestRebuiltRealPackagesLintian(t *testing.T) {
	testutil.RequireTool(t, "lintian")
	testutil.RequireTool(t, "dpkg-deb")
	debs := testutil.RealDebs(t, issuePackages...)
	var origs, ours []string
	for name, orig := range debs {
		if lintianSlow[name] {
			continue
		}
		manifest, _ := ownersFile(t, orig)
		owners, err := deb.ParseOwners(strings.NewReader(manifest), "owners")
		if err != nil {
			t.Fatal(err)
		}
		data, res := buildWith(t, rawExtract(t, orig), deb.BuildOptions{Owners: owners, Compression: deb.CompressGzip})
		p := filepath.Join(t.TempDir(), res.Filename)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		origs, ours = append(origs, orig), append(ours, p)
	}
	var (
		origTags map[string][]string
		origErr  error
	)
	done := make(chan struct{})
	go func() { defer close(done); origTags, origErr = referenceLintianTags(origs...) }()
	ourTags, err := lintianTags(ours...)
	<-done
	if err != nil || origErr != nil {
		t.Fatal(err, origErr)
	}
	if len(origTags) == 0 {
		t.Fatalf("lintian reported no tag for any original package: its output was not read")
	}
	for pkg, tags := range ourTags {
		seen := map[string]bool{}
		for _, tag := range origTags[pkg] {
			seen[tag] = true
		}
		for _, tag := range tags {
			if !seen[tag] {
				t.Errorf("%s: lintian reports %s for the rebuild but not for the original", pkg, tag)
			}
		}
	}
}

// TestInfoMatchesDpkgDebOnRealPackages compares Inspect's text with the
// real dpkg-deb --info, byte for byte, on the real packages (ucf's
// templates start with an empty line) and on their rebuilds.
func TestInfoMatchesDpkgDebOnRealPackages(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb")
	debs := testutil.RealDebs(t, issuePackages...)
	for name, orig := range debs {
		data, res := buildWith(t, rawExtract(t, orig), deb.BuildOptions{Compression: deb.CompressGzip})
		rebuilt := filepath.Join(t.TempDir(), res.Filename)
		if err := os.WriteFile(rebuilt, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{orig, rebuilt} {
			want := mustRun(t, "dpkg-deb", "--info", p)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			info, err := deb.Inspect(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got bytes.Buffer
			if err := info.WriteText(&got); err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("%s: info differs from dpkg-deb --info:\n%s", p, lineDiff(strings.Split(want, "\n"), strings.Split(got.String(), "\n")))
			}
		}
	}
}

// TestExtractControlLikeRawExtract extracts real packages with Extract
// (Control, owners kept when root) and with the real dpkg-deb
// --raw-extract, and compares every path's type, mode and modification
// time, DEBIAN/ included (it takes the control archive's time).
func TestExtractControlLikeRawExtract(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb")
	debs := testutil.RealDebs(t, issuePackages...)
	for name, orig := range debs {
		want := rawExtract(t, orig)
		got := filepath.Join(t.TempDir(), "ours")
		f, err := os.Open(orig)
		if err != nil {
			t.Fatal(err)
		}
		err = deb.Extract(context.Background(), f, got, deb.ExtractOptions{Control: true, PreserveOwner: os.Geteuid() == 0})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, b := treeStat(t, want), treeStat(t, got)
		for p, s := range a {
			if p == "." {
				continue // dpkg-deb -R leaves the time of DEBIAN's creation there
			}
			g := b[p]
			if strings.HasPrefix(s, "d") && p != "DEBIAN" {
				// GNU tar (under dpkg-deb -R) creates some symbolic links
				// last, through placeholders, which gives their directories
				// the time of the extraction.
				g, s = dropTime(g), dropTime(s)
			}
			if g != s {
				t.Errorf("%s: %s: extracted as %q, dpkg-deb -R gives %q", name, p, g, s)
			}
		}
		if len(a) != len(b) {
			t.Errorf("%s: %d paths extracted, dpkg-deb -R gives %d", name, len(b), len(a))
		}
	}
}

// treeStat describes every path under dir by type, mode and time (and
// owner when run as root), as stat(1) sees it.
func treeStat(t *testing.T, dir string) map[string]string {
	t.Helper()
	format := "%n\t%A %Y"
	if os.Geteuid() == 0 {
		format += " %U:%G"
	}
	out := mustRun(t, "sh", "-c", `cd "$1" && find . -exec stat -c "$2" {} +`, "sh", dir, format)
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		p, s, _ := strings.Cut(line, "\t")
		m[filepath.Clean(p)] = s
	}
	return m
}

func dropTime(stat string) string {
	f := strings.Fields(stat)
	if len(f) > 1 {
		f[1] = "-"
	}
	return strings.Join(f, " ")
}
