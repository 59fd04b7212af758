package bump

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// debianArchive is a package at version whose .bumpversion.cfg has no
// parse and no serialize and lists VERSION; extra is added to the
// configuration.
func debianArchive(version, extra string) string {
	return fmt.Sprintf(`
-- DEBIAN/control --
Package: lamp
Version: %[1]s
Architecture: all
Maintainer: LAMPi <lampi@example.org>
Description: the lamp service
 Keeps the lamp on.
-- VERSION --
%[1]s
-- .bumpversion.cfg --
[bumpversion]
current_version = %[1]s

[bumpversion:file:VERSION]
%[2]s
`, version, extra)
}

func debianTree(t *testing.T, version, extra string) string {
	t.Helper()
	return tree(t, debianArchive(version, extra))
}

// dpkgSorts asks the real dpkg whether "a rel b" holds.
func dpkgSorts(t *testing.T, a, rel, b string) bool {
	t.Helper()
	dpkg := testutil.RequireTool(t, "dpkg")
	err := exec.Command(dpkg, "--compare-versions", a, rel, b).Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return err == nil
}

// prepareApply runs a whole bump without git.
func prepareApply(t *testing.T, o Options) *Plan {
	t.Helper()
	ctx := context.Background()
	p, err := Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNewVersionLandsExactly is issue 13 §4: --new-version 1.5.0~rc1 on a
// tree whose configuration has no parse used to write 1.5.0 into the
// files (bump2version's default parse reads three numbers anywhere in the
// version), and release then published 1.5.0. Every file now gets the
// version asked for, whatever Debian form it has.
func TestNewVersionLandsExactly(t *testing.T) {
	// DEBIAN/control follows the configuration, or is listed in it with
	// its own search and replace (then it is rewritten like any file).
	listed := "\n[bumpversion:file:DEBIAN/control]\nsearch = Version: {current_version}\nreplace = Version: {new_version}\n"
	for _, v := range []string{"1.5.0~rc1", "1.5.0", "2:1.5.0", "1.4.10+b1", "1.4.10-2", "1.4.10.1", "1.5~beta2+dfsg-1", "1:1.5.0~rc1-0ubuntu1"} {
		for _, extra := range []string{"", listed} {
			t.Run(fmt.Sprintf("%s listed=%v", v, extra != ""), func(t *testing.T) {
				dir := debianTree(t, "1.4.10", extra)
				p := prepareApply(t, Options{Dir: dir, NewVersion: v})
				if p.New != v || p.ConfigNew != v {
					t.Errorf("plan: package %s, configuration %s; want %s", p.New, p.ConfigNew, v)
				}
				if got := readFile(t, dir, "VERSION"); got != v+"\n" {
					t.Errorf("VERSION = %q, want %q", got, v)
				}
				if got := readFile(t, dir, ".bumpversion.cfg"); !strings.Contains(got, "current_version = "+v+"\n") {
					t.Errorf(".bumpversion.cfg:\n%s", got)
				}
				if got := readFile(t, dir, ControlPath); !strings.Contains(got, "\nVersion: "+v+"\n") {
					t.Errorf("control:\n%s", got)
				}
				if !dpkgSorts(t, v, "gt", "1.4.10") {
					t.Errorf("dpkg does not sort %s after 1.4.10", v)
				}
			})
		}
	}
}

// TestBumpversionLosesThePreRelease shows, with the real bumpversion, the
// behaviour lampi-pkg does not copy: the configuration says 1.5.0~rc1, the
// file says 1.5.0.
func TestBumpversionLosesThePreRelease(t *testing.T) {
	tool := testutil.RequireTool(t, "bumpversion")
	theirs, ours := debianTree(t, "1.4.10", ""), debianTree(t, "1.4.10", "")
	if err := runBumpversion(tool, theirs, []string{"--new-version", "1.5.0~rc1", "patch"}); err != nil {
		t.Fatal(err)
	}
	if err := runOurs(ours, []string{"--new-version", "1.5.0~rc1", "patch"}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, theirs, "VERSION"); got != "1.5.0\n" {
		t.Errorf("bumpversion wrote VERSION %q (this test expects its known loss, 1.5.0)", got)
	}
	if got := readFile(t, ours, "VERSION"); got != "1.5.0~rc1\n" {
		t.Errorf("ours wrote VERSION %q, want 1.5.0~rc1", got)
	}
	if got := readFile(t, theirs, ".bumpversion.cfg"); got != readFile(t, ours, ".bumpversion.cfg") {
		t.Errorf("the configurations differ:\n%s\n%s", got, readFile(t, ours, ".bumpversion.cfg"))
	}
}

// TestDebianPartsWithConfiguration: without parse, the parts step as
// without a configuration, also from a pre-release, and every file gets
// the result; dpkg sorts each after the version before.
func TestDebianPartsWithConfiguration(t *testing.T) {
	for _, tc := range []struct{ old, part, want string }{
		{"1.4.10", Patch, "1.4.11"},
		{"1.4.10", Minor, "1.5.0"},
		{"1.4.10", Major, "2.0.0"},
		{"1.4.10", Pre, "1.4.11~rc1"},
		// from a pre-release: a step that would release it releases it
		{"1.5.0~rc1", Patch, "1.5.0"},
		{"1.5.0~rc1", Minor, "1.5.0"},
		{"1.5.0~rc1", Major, "2.0.0"},
		{"1.5.0~rc1", Pre, "1.5.0~rc2"},
		{"1.5.0~rc1", Final, "1.5.0"},
		{"1.5.1~rc1", Minor, "1.6.0"},
		{"2.0.0~beta3", Patch, "2.0.0"},
		// epochs and revisions in current_version
		{"1:1.4.10-3", Revision, "1:1.4.10-4"},
		{"1:1.4.10-3", Minor, "1:1.5.0-1"},
		{"1:1.5.0~rc2-1", Final, "1:1.5.0-1"},
		{"1.4.10+dfsg", Patch, "1.4.11+dfsg"},
	} {
		t.Run(tc.old+" "+tc.part, func(t *testing.T) {
			dir := debianTree(t, tc.old, "")
			p := prepareApply(t, Options{Dir: dir, Part: tc.part})
			if p.New != tc.want || p.ConfigNew != tc.want {
				t.Errorf("%s → %s (configuration %s), want %s", tc.old, p.New, p.ConfigNew, tc.want)
			}
			if got := readFile(t, dir, "VERSION"); got != tc.want+"\n" {
				t.Errorf("VERSION = %q", got)
			}
			if !dpkgSorts(t, tc.want, "gt", tc.old) {
				t.Errorf("dpkg does not sort %s after %s", tc.want, tc.old)
			}
		})
	}

	// revision of a current_version without one: DEBIAN/control only, as
	// with a parse.
	dir := debianTree(t, "1.4.10", "")
	p := prepareApply(t, Options{Dir: dir, Part: Revision})
	if p.New != "1.4.10-1" || p.ConfigNew != "1.4.10" || readFile(t, dir, "VERSION") != "1.4.10\n" {
		t.Errorf("revision: package %s, configuration %s, VERSION %q", p.New, p.ConfigNew, readFile(t, dir, "VERSION"))
	}
	if _, err := Prepare(context.Background(), Options{Dir: dir, Part: "build"}); !errors.Is(err, ErrPart) || !strings.Contains(err.Error(), "major, minor, patch, revision, pre, final") {
		t.Errorf("unknown part: %v", err)
	}
}

// TestShortFormsInFiles: a file with its own serialize may show a shorter
// form that sorts before the version (as dpkg says), never one that sorts
// after it.
func TestShortFormsInFiles(t *testing.T) {
	sphinx := "\n[bumpversion:file:docs/conf.py]\nserialize = {major}.{minor}\nsearch = version = '{current_version}'\nreplace = version = '{new_version}'\n"
	docker := "\n[bumpversion:file:Dockerfile]\nserialize = v{major}.{minor}.{patch}\nsearch = LABEL version={current_version}\nreplace = LABEL version={new_version}\n"
	files := "-- docs/conf.py --\nversion = '1.4'\n-- Dockerfile --\nLABEL version=v1.4.10\n"
	for _, tc := range []struct {
		new, conf, docker string
	}{
		{"1.5.1", "1.5", "v1.5.1"},
		{"1:1.5.0-2", "1.5", "v1.5.0"},
		{"1.5.0+b1", "1.5", "v1.5.0"},
		{"1.5.1~rc1", "1.5", ""}, // the Dockerfile would say 1.5.1
		{"1.5.0~rc1", "1.5", ""}, // 1.5 < 1.5.0~rc1 < 1.5.0
	} {
		t.Run(tc.new, func(t *testing.T) {
			dir := tree(t, debianArchive("1.4.10", sphinx+docker)+files)
			before := snapshot(t, dir)
			_, err := Prepare(context.Background(), Options{Dir: dir, NewVersion: tc.new})
			if tc.docker == "" {
				if !errors.Is(err, ErrSerialize) || !strings.Contains(err.Error(), "Dockerfile") || !strings.Contains(err.Error(), "serialize = v{major}.{minor}.{patch}{pre}") {
					t.Fatalf("Prepare = %v, want ErrSerialize naming the Dockerfile and a template that shows {pre}", err)
				}
				if !dpkgSorts(t, strings.TrimSuffix(tc.new[:5], "~"), "gt", tc.new) {
					t.Errorf("dpkg does not sort the Dockerfile's %s after %s", tc.new[:5], tc.new)
				}
				if !equalTrees(before, snapshot(t, dir)) {
					t.Errorf("a refused bump changed files")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			prepareApply(t, Options{Dir: dir, NewVersion: tc.new})
			if got := readFile(t, dir, "docs/conf.py"); got != "version = '"+tc.conf+"'\n" {
				t.Errorf("docs/conf.py = %q", got)
			}
			if got := readFile(t, dir, "Dockerfile"); got != "LABEL version="+tc.docker+"\n" {
				t.Errorf("Dockerfile = %q", got)
			}
			for _, short := range []string{tc.conf, strings.TrimPrefix(tc.docker, "v")} {
				if !dpkgSorts(t, short, "le", tc.new) {
					t.Errorf("dpkg sorts the short form %s after %s", short, tc.new)
				}
			}
		})
	}
}

// TestRefusesWhatItCannotWrite: where the configuration would write
// another version than the one asked for, or lose a part of it, nothing
// changes and the error says which parse or serialize would do.
func TestRefusesWhatItCannotWrite(t *testing.T) {
	defaultParse := "-- DEBIAN/control --\nPackage: lamp\nVersion: %[1]s\nArchitecture: all\nMaintainer: L <l@example.org>\nDescription: d\n x\n-- VERSION --\n%[1]s\n-- .bumpversion.cfg --\n[bumpversion]\ncurrent_version = %[1]s\nparse = (?P<major>\\d+)\\.(?P<minor>\\d+)\\.(?P<patch>\\d+)\nserialize = {major}.{minor}.{patch}\n\n[bumpversion:file:VERSION]\n"
	optionalPatch := "-- VERSION --\n0.2\n-- .bumpversion.cfg --\n[bumpversion]\ncurrent_version = 0.2\nparse = (?P<major>\\d+)\\.(?P<minor>\\d+)(\\.(?P<patch>\\d+))?\nserialize =\n\t{major}.{minor}.{patch}\n\t{major}.{minor}\n\n[bumpversion:file:VERSION]\n"
	for _, tc := range []struct {
		name, archive string
		o             Options
		want          error
		says          string
	}{
		{"explicit parse, --new-version with ~", fmt.Sprintf(defaultParse, "1.4.10"), Options{NewVersion: "1.5.0~rc1"}, ErrSerialize, `reads only "1.5.0" of it, so "~rc1" would be lost: remove parse and serialize`},
		{"explicit parse, --new-version with a revision", fmt.Sprintf(defaultParse, "1.4.10"), Options{NewVersion: "1.5.0-1"}, ErrSerialize, `so "-1" would be lost`},
		{"explicit parse, current_version with ~", fmt.Sprintf(defaultParse, "1.5.0~rc1"), Options{Part: Patch}, ErrSerialize, `current_version "1.5.0~rc1": parse = `},
		{"serialize writes it shorter", optionalPatch, Options{NewVersion: "0.3.0"}, ErrSerialize, `would be written "0.3": ask for --new-version 0.3`},
		{"main serialize without {pre}", strings.Replace(debianArchive("1.4.10", ""), "current_version = 1.4.10\n", "current_version = 1.4.10\nserialize = {major}.{minor}.{patch}\n", 1), Options{Part: Pre}, ErrSerialize, "serialize = {major}.{minor}.{patch}{pre}"},
		{"not as dpkg prints it", debianArchive("1.4.10", ""), Options{NewVersion: "0:1.5"}, ErrVersion, "dpkg reads it as 1.5: write it that way"},
		{"not a Debian version", debianArchive("1.4.10", ""), Options{NewVersion: "v1.5"}, ErrVersion, "does not start with a digit"},
		{"file serialize with unknown part", debianArchive("1.4.10", "\n[bumpversion:file:README]\nserialize = {major}.{minor}.{release}\n") + "-- README --\n1.4.10\n", Options{Part: Minor}, ErrConfig, "missing key {release} (without parse in [bumpversion], a serialize template may use {major}"},
		{"four numbers, file serialize", strings.ReplaceAll(debianArchive("1.4.10", "\n[bumpversion:file:README]\nserialize = {major}.{minor}\n"), "1.4.10", "1.4.10.1") + "-- README --\n1.4\n", Options{Part: Minor}, ErrVersion, "not of the form [epoch:]major[.minor[.patch]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.archive)
			before := snapshot(t, dir)
			tc.o.Dir = dir
			_, err := Prepare(context.Background(), tc.o)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Prepare = %v\nwant %v saying %q", err, tc.want, tc.says)
			}
			t.Logf("%v", err)
			if !equalTrees(before, snapshot(t, dir)) {
				t.Errorf("Prepare changed files")
			}
		})
	}
}

// FuzzDebianDefault checks the default without parse on any Debian
// version: it is read whole and written back as it is, its parts put
// together give it back, no file template ever writes a version that sorts
// after it, and every Next step of it can be read again and sorts after it.
func FuzzDebianDefault(f *testing.F) {
	for _, s := range []string{"1.4.10", "1.5.0~rc1", "1:1.5.0~rc1-0ubuntu1", "1.5~beta2+dfsg-1", "1.4.10.1", "0.1", "2:1.0+b1", "1.2a-3", "1.0~~", "9:1.2.3-4~bpo12+1"} {
		f.Add(s, uint8(0))
	}
	cfg, err := ParseConfig(".bumpversion.cfg", []byte("[bumpversion]\ncurrent_version = 1.0\n\n[bumpversion:file:a]\nserialize = {major}.{minor}.{patch}\n\n[bumpversion:file:b]\nserialize =\n\tv{major}.{minor}\n\t{epoch}{major}\n"))
	if err != nil {
		f.Fatal(err)
	}
	none := func(string) (any, bool, error) { return nil, false, nil }
	f.Fuzz(func(t *testing.T, s string, p uint8) {
		v, err := deb.ParseVersion(s)
		if err != nil || v.String() != s {
			return
		}
		dv, err := parseDebianVersion(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got, err := cfg.renderNew(cfg.main, dv, none); err != nil || got != s {
			t.Fatalf("%q written as %q, %v", s, got, err)
		}
		if len(dv.labels) > 0 {
			joined := dv.parts["epoch"].raw + dv.parts["major"].raw
			for _, n := range []string{"minor", "patch"} {
				if r := dv.parts[n].raw; r != "" {
					joined += "." + r
				}
			}
			joined += dv.parts["pre"].raw + dv.parts["build"].raw + dv.parts["revision"].raw
			if joined != s {
				t.Fatalf("%q: parts give %q", s, joined)
			}
		}
		for _, fs := range cfg.files {
			got, err := cfg.renderNew(fs.vc, dv, none)
			if err != nil {
				continue
			}
			named := strings.TrimPrefix(got, "v")
			if gv, err := deb.ParseVersion(named); err != nil || gv.Compare(v) > 0 {
				t.Fatalf("%q: file %s gets %q, which names a later version (%v)", s, fs.path, got, err)
			}
		}
		part := DebianParts[int(p)%len(DebianParts)]
		next, err := Next(v, part)
		if err != nil {
			return
		}
		if _, err := parseDebianVersion(next.String()); err != nil {
			t.Fatalf("%q %s → %q, which cannot be read back: %v", s, part, next, err)
		}
		if next.Compare(v) <= 0 {
			t.Fatalf("%q %s → %q does not sort after", s, part, next)
		}
	})
}
