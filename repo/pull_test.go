package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pullRepo makes a repository with conf/distributions conf and the conf
// files in files (name → content, relative to conf/).
func pullRepo(t testing.TB, conf string, files map[string]string) *Repo {
	t.Helper()
	r := newTestRepo(t, conf, Options{})
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.Base, "conf", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// includeC includes files into one component of a distribution.
func includeC(t testing.TB, r *Repo, codename, component string, files ...string) {
	t.Helper()
	if _, err := r.IncludeDeb(context.Background(), codename, files, IncludeOptions{Component: component}); err != nil {
		t.Fatalf("includedeb %s %s: %v", codename, component, err)
	}
}

func mustPull(t testing.TB, r *Repo, o PullOptions, codenames ...string) *PullResult {
	t.Helper()
	res, err := r.Pull(context.Background(), codenames, o)
	if err != nil {
		t.Fatalf("pull %v: %v", codenames, err)
	}
	return res
}

func wantListed(t testing.TB, r *Repo, codename, want string) {
	t.Helper()
	if got := listed(t, r, codename); got != strings.TrimSpace(want) {
		t.Fatalf("list %s:\n%s\nwant:\n%s", codename, got, strings.TrimSpace(want))
	}
}

const pullDists = `Codename: testing
Architectures: amd64 i386
Components: main contrib

Codename: stable
Architectures: amd64 i386
Components: main contrib
`

// TestPullTestingToStable promotes testing to stable through a rule with
// a FilterFormula and a FilterList that holds one package: the formula's
// reject and the held package stay out, an older version in testing does
// not replace a newer one in stable, and checkpull tells it all before
// without changing a byte.
func TestPullTestingToStable(t *testing.T) {
	t.Parallel()
	r := pullRepo(t, pullDists+"Pull: fromtesting\n", map[string]string{
		"pulls":     "Name: fromtesting\nFrom: testing\nFilterFormula: Package (!= extra)\nFilterList: install hold.list\n",
		"hold.list": "held hold\n",
	})
	dir := t.TempDir()
	deb := func(name, version, arch string) string {
		return buildDeb(t, dir, pkgSpec{name: name, version: version, arch: arch})
	}
	includeC(t, r, "stable", "main", deb("hello", "1.0", "amd64"), deb("held", "1.0", "amd64"), deb("newer", "2.0", "amd64"))
	includeC(t, r, "testing", "main", deb("hello", "2.0", "amd64"), deb("held", "2.0", "amd64"), deb("extra", "1.0", "amd64"),
		deb("tool", "1.0", "all"), deb("newer", "1.5", "amd64"))

	before := repoState(t, r)
	check := mustPull(t, r, PullOptions{Check: true})
	if after := repoState(t, r); after != before {
		t.Fatal("checkpull changed the repository")
	}
	var got []string
	for _, pt := range check.Targets {
		for _, it := range pt.Items {
			got = append(got, pt.Target.String()+" "+it.Action+" "+it.Package+" "+it.OldVersion+">"+it.Version+" best="+it.Best)
		}
	}
	want := []string{
		"stable|main|i386 add tool >1.0 best=",
		"stable|main|amd64 keep held 1.0> best=",
		"stable|main|amd64 upgrade hello 1.0>2.0 best=",
		"stable|main|amd64 keep newer 2.0> best=1.5",
		"stable|main|amd64 add tool >1.0 best=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("checkpull:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", `
stable|main|amd64: held 1.0
stable|main|amd64: hello 2.0
stable|main|amd64: newer 2.0
stable|main|amd64: tool 1.0
stable|main|i386: tool 1.0`)
	pk := readFile(t, filepath.Join(r.Base, "dists", "stable", "main", "binary-amd64", "Packages"))
	if !strings.Contains(pk, "Package: hello\nVersion: 2.0\n") || strings.Contains(pk, "Package: extra") {
		t.Fatalf("published stable Packages:\n%s", pk)
	}
	// Nothing left to do: a second pull changes nothing.
	before = repoState(t, r)
	res := mustPull(t, r, PullOptions{})
	if len(res.Changes) != 0 || repoState(t, r) != before {
		t.Fatalf("second pull changed %v", res.Changes)
	}
}

// TestPullComponentsAndArchitectures: Components limits what is pulled
// (a component is never mapped onto another: that is refused with the
// file and line), and Architectures amd64>i386 carries only
// Architecture: all packages, as reprepro's pull does.
func TestPullComponentsAndArchitectures(t *testing.T) {
	t.Parallel()
	r := pullRepo(t, pullDists+"Pull: contribonly\n", map[string]string{
		"pulls": "Name: contribonly\nFrom: testing\nComponents: contrib\nArchitectures: amd64 amd64>i386\n",
	})
	dir := t.TempDir()
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "mainpkg", version: "1", arch: "amd64"}))
	includeC(t, r, "testing", "contrib", buildDeb(t, dir, pkgSpec{name: "cbin", version: "1", arch: "amd64"}),
		buildDeb(t, dir, pkgSpec{name: "call", version: "1", arch: "all"}), buildDeb(t, dir, pkgSpec{name: "ci386", version: "1", arch: "i386"}))
	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", `
stable|contrib|amd64: call 1
stable|contrib|amd64: cbin 1
stable|contrib|i386: call 1`)

	if err := os.WriteFile(filepath.Join(r.Base, "conf", "pulls"), []byte("Name: contribonly\nFrom: testing\n\nName: x\nFrom: testing\nComponents: main>contrib\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.Pull(context.Background(), nil, PullOptions{})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "pulls:6: ") || !strings.Contains(err.Error(), "one component to another") {
		t.Fatalf("component mapping: %v", err)
	}
}

// TestPullDeleteRule: "-" first deletes what no later rule offers and
// lets an older version back in (reprepro's downgrade, with its
// warning); without it both stay.
func TestPullDeleteRule(t *testing.T) {
	t.Parallel()
	for _, field := range []string{"fromtesting", "- fromtesting"} {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			var warns []string
			base := t.TempDir()
			writeConf(t, base, pullDists+"Pull: "+field+"\n")
			os.WriteFile(filepath.Join(base, "conf", "pulls"), []byte("Name: fromtesting\nFrom: testing\n"), 0o644)
			r, err := Open(base, Options{Now: fixedNow, Warn: func(s string) { warns = append(warns, s) }})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			includeC(t, r, "stable", "main", buildDeb(t, dir, pkgSpec{name: "gone", version: "1.0", arch: "amd64"}),
				buildDeb(t, dir, pkgSpec{name: "tool", version: "1.0", arch: "amd64"}))
			includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "tool", version: "0.9", arch: "amd64"}))
			mustPull(t, r, PullOptions{})
			if field == "fromtesting" {
				wantListed(t, r, "stable", "stable|main|amd64: gone 1.0\nstable|main|amd64: tool 1.0")
				return
			}
			wantListed(t, r, "stable", "stable|main|amd64: tool 0.9")
			if !strings.Contains(strings.Join(warns, "\n"), "downgrading 'tool' from '1.0' to '0.9' in 'stable|main|amd64'!") {
				t.Fatalf("warnings: %q", warns)
			}
			if _, err := os.Stat(filepath.Join(r.Base, "pool", "main", "g", "gone")); !os.IsNotExist(err) {
				t.Fatalf("the deleted package's pool file is still there: %v", err)
			}
		})
	}
}

// TestPullLimit: under Limit: 2 the version in use stays beside the
// pulled one, and the oldest goes when a third comes.
func TestPullLimit(t *testing.T) {
	t.Parallel()
	r := pullRepo(t, pullDists+"Limit: 2\nPull: fromtesting\n", map[string]string{"pulls": "Name: fromtesting\nFrom: testing\n"})
	dir := t.TempDir()
	includeC(t, r, "stable", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "1.0", arch: "amd64"}))
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "2.0", arch: "amd64"}))
	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", "stable|main|amd64: hello 2.0\nstable|main|amd64: hello 1.0")
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "3.0", arch: "amd64"}))
	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", "stable|main|amd64: hello 3.0\nstable|main|amd64: hello 2.0")
}

// TestPullRefusesBadRules: a rule naming an unknown distribution, a
// Pull field naming an unknown rule and a field lampi-pkg does not read
// each stop the command with file:line, before anything changes.
func TestPullRefusesBadRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ pull, pulls, want string }{
		{"fromtesting", "Name: fromtesting\nFrom: nosuch\n", `pulls:1: repository configuration error: From: pull rule "fromtesting" names distribution "nosuch"`},
		{"nosuchrule", "Name: fromtesting\nFrom: testing\n", `distributions:8: repository configuration error: Pull: no rule "nosuchrule"`},
		{"fromtesting", "Name: fromtesting\nFrom: testing\nMethod: file:///srv\n", "pulls:3: repository configuration error: Method: not a field of conf/pulls"},
		{"fromtesting", "Name: fromtesting\nFrom: testing\nFilterList: supersede x.list\n", "pulls:3: repository configuration error: FilterList: action supersede is not implemented"},
		{"fromtesting", "Name: fromtesting\n", `pulls:1: repository configuration error: pull rule "fromtesting" has no From`},
	} {
		r := pullRepo(t, pullDists+"Pull: "+c.pull+"\n", map[string]string{"pulls": c.pulls})
		dir := t.TempDir()
		includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "2.0", arch: "amd64"}))
		before := repoState(t, r)
		_, err := r.Pull(context.Background(), nil, PullOptions{})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.pulls, err, c.want)
		}
		if repoState(t, r) != before {
			t.Errorf("%q: the refused pull changed the repository", c.pulls)
		}
	}
}

// TestPullAllOrNothing: when the second distribution of a pull fails —
// a FilterList "error", or a SignWith key that cannot be loaded — the
// first, which had work to do, is left as it was too.
func TestPullAllOrNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, extra, list, want string }{
		{"filterlist-error", "", "hello error\n", "marks error"},
		{"signing", "SignWith: " + filepath.Join(t.TempDir(), "missing.key") + "\n", "", "missing.key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conf := pullDists + "Pull: fromtesting\n\nCodename: other\nArchitectures: amd64\nComponents: main\nPull: strict\n" + c.extra
			r := pullRepo(t, conf, map[string]string{
				"pulls":       "Name: fromtesting\nFrom: testing\n\nName: strict\nFrom: testing\nFilterList: install strict.list\n",
				"strict.list": c.list,
			})
			dir := t.TempDir()
			includeC(t, r, "stable", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "1.0", arch: "amd64"}))
			includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "2.0", arch: "amd64"}))
			before := repoState(t, r)
			_, err := r.Pull(context.Background(), nil, PullOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("pull: %v, want an error with %q", err, c.want)
			}
			if after := repoState(t, r); after != before {
				t.Fatalf("the failed pull changed the repository:\n%s", lineDiff(before, after))
			}
			wantListed(t, r, "stable", "stable|main|amd64: hello 1.0")
		})
	}
}

// TestPullUsesStateBefore: stable pulls from testing and testing from
// unstable in one command; stable gets what testing had before, as
// reprepro computes every list before it changes any.
func TestPullUsesStateBefore(t *testing.T) {
	t.Parallel()
	conf := "Codename: unstable\nArchitectures: amd64\nComponents: main\n\n" +
		"Codename: testing\nArchitectures: amd64\nComponents: main\nPull: fromunstable\n\n" +
		"Codename: stable\nArchitectures: amd64\nComponents: main\nPull: fromtesting\n"
	r := pullRepo(t, conf, map[string]string{"pulls": "Name: fromtesting\nFrom: testing\n\nName: fromunstable\nFrom: unstable\n"})
	dir := t.TempDir()
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "2.0", arch: "amd64"}))
	includeC(t, r, "unstable", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "3.0", arch: "amd64"}))
	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", "stable|main|amd64: hello 2.0")
	wantListed(t, r, "testing", "testing|main|amd64: hello 3.0")
}

// TestPullPublishFailureRollsBack: the second distribution cannot be
// published (a file stands where its component directory must go);
// the first, already published, and the database are put back as they
// were.
func TestPullPublishFailureRollsBack(t *testing.T) {
	t.Parallel()
	conf := pullDists + "Pull: fromtesting\n\nCodename: other\nArchitectures: amd64\nComponents: main\nPull: fromtesting\n"
	r := pullRepo(t, conf, map[string]string{"pulls": "Name: fromtesting\nFrom: testing\n"})
	dir := t.TempDir()
	includeC(t, r, "stable", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "1.0", arch: "amd64"}))
	includeC(t, r, "other", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "1.0", arch: "amd64"}))
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "hello", version: "2.0", arch: "amd64"}))
	blocker := filepath.Join(r.Base, "dists", "other", "main")
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := repoState(t, r)
	if _, err := r.Pull(context.Background(), nil, PullOptions{}); err == nil {
		t.Fatal("pull published into a blocked directory")
	}
	if after := repoState(t, r); after != before {
		t.Fatalf("the failed pull changed the repository:\n%s", lineDiff(before, after))
	}
	wantListed(t, r, "stable", "stable|main|amd64: hello 1.0")
	wantListed(t, r, "other", "other|main|amd64: hello 1.0")
}

// lineDiff lists the lines only one of a and b has.
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for l := range ma {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestPullWarnsOnce: a FilterList "warning" prints reprepro's "Loudly
// rejecting" once per package and pull, and the package stays out.
func TestPullWarnsOnce(t *testing.T) {
	t.Parallel()
	var warns []string
	base := t.TempDir()
	writeConf(t, base, pullDists+"Pull: fromtesting\n")
	os.WriteFile(filepath.Join(base, "conf", "pulls"), []byte("Name: fromtesting\nFrom: testing\nFilterList: install warn.list\n"), 0o644)
	os.WriteFile(filepath.Join(base, "conf", "warn.list"), []byte("warnme warning\n"), 0o644)
	r, err := Open(base, Options{Now: fixedNow, Warn: func(s string) { warns = append(warns, s) }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	includeC(t, r, "testing", "main", buildDeb(t, dir, pkgSpec{name: "warnme", version: "1.0", arch: "amd64"}),
		buildDeb(t, dir, pkgSpec{name: "hello", version: "1.0", arch: "amd64"}))
	mustPull(t, r, PullOptions{})
	wantListed(t, r, "stable", "stable|main|amd64: hello 1.0")
	want := "Loudly rejecting 'warnme' '1.0' to enter 'stable|main|amd64'!"
	if len(warns) != 1 || warns[0] != want {
		t.Fatalf("warnings %q, want once %q", warns, want)
	}
}

// FuzzLoadPullRules: whatever conf/pulls holds, LoadPullRules returns
// rules or an error wrapping ErrConfig, and never panics.
func FuzzLoadPullRules(f *testing.F) {
	f.Add([]byte("Name: a\nFrom: testing\nComponents: main\nArchitectures: amd64 amd64>i386\nFilterFormula: Package (!= x)\n"))
	f.Add([]byte("Name: a\nFrom: t\nFilterList: install hold.list\nFilterSrcList: deinstall hold.list\n\nName: b\nFrom: t\nUDebComponents:\n"))
	f.Add([]byte("Name: -\nFrom: t\nComponents: a>b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "pulls"), data, 0o644)
		os.WriteFile(filepath.Join(dir, "hold.list"), []byte("x hold\n"), 0o644)
		rules, err := LoadPullRules(dir)
		if err != nil {
			if !errors.Is(err, ErrConfig) && !strings.Contains(err.Error(), "read") {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		for name, r := range rules {
			if name == "" || name != r.Name || r.From == "" {
				t.Fatalf("rule %q: %+v", name, r)
			}
		}
	})
}
