package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// versionsIn lists the versions of name in codename's amd64 list, in List's order.
func versionsIn(t *testing.T, r *Repo, codename, name string) []string {
	t.Helper()
	es, err := r.List(context.Background(), codename, Selection{Architectures: []string{"amd64"}}, []string{name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Version)
	}
	return out
}

// TestRepreproVersionRules: with Options.RepreproRules an older version is
// skipped only when Limit newer ones are there, versions list newest first
// in dpkg's order, remove and copy take NAME=VERSION and report what they
// did not find, and a move may downgrade.
func TestRepreproVersionRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conf := "Codename: buster\nArchitectures: amd64\nComponents: main\nLimit: -1\n\n" +
		"Codename: bullseye\nArchitectures: amd64\nComponents: main\nLimit: 2\n"
	r := newTestRepo(t, conf, Options{RepreproRules: true})
	debs := t.TempDir()
	deb := func(v string) string {
		return buildDeb(t, debs, pkgSpec{name: "hello", version: v, arch: "amd64", plain: true})
	}
	for _, v := range []string{"2.9-2", "2.9-10", "2.9-1", "2.9-2+deb8u1"} {
		mustInclude(t, r, "buster", deb(v))
	}
	// Limit -1: every older version added; the same file again: nothing.
	mustInclude(t, r, "buster", deb("2.9-1"))
	four := []string{"2.9-10", "2.9-2+deb8u1", "2.9-2", "2.9-1"}
	if got := versionsIn(t, r, "buster", "hello"); !reflect.DeepEqual(got, four) {
		t.Fatalf("buster: %v, want %v", got, four)
	}
	lines, err := r.Ls(ctx, Selection{}, "hello")
	if err != nil || len(lines) != 4 || lines[0].Version != "2.9-10" || lines[3].Codename != "buster" {
		t.Fatalf("ls: %+v %v", lines, err)
	}

	// Limit 2: older than both kept ones → skipped; between them → added.
	mustInclude(t, r, "bullseye", deb("2.9-10"))
	mustInclude(t, r, "bullseye", deb("2.9-2"))
	res := mustInclude(t, r, "bullseye", deb("2.9-1"))
	if len(res.Changes) != 1 || res.Changes[0].Action != "skip" || res.Changes[0].OldVersion != "2.9-2" {
		t.Fatalf("older than the Limit-th: %+v", res.Changes)
	}
	res = mustInclude(t, r, "bullseye", deb("2.9-2+deb8u1"))
	if got := versionsIn(t, r, "bullseye", "hello"); !reflect.DeepEqual(got, []string{"2.9-10", "2.9-2+deb8u1"}) || res.Changes[0].OldVersion != "2.9-2" {
		t.Fatalf("bullseye after 2.9-2+deb8u1: %v %+v", got, res.Changes)
	}

	// remove: NAME=VERSION, a missing name reported, not fatal.
	res, err = r.Remove(ctx, "buster", Selection{}, []string{"hello=2.9-2+deb8u1", "hellox", "hello=2.9-2+deb8u1"})
	if err != nil || !reflect.DeepEqual(res.NotFound, []string{"hellox", "hello=2.9-2+deb8u1"}) {
		t.Fatalf("remove: %+v %v", res, err)
	}
	// NAME alone: the newest only.
	if _, err := r.Remove(ctx, "buster", Selection{}, []string{"hello"}); err != nil {
		t.Fatal(err)
	}
	if got := versionsIn(t, r, "buster", "hello"); !reflect.DeepEqual(got, []string{"2.9-2", "2.9-1"}) {
		t.Fatalf("buster after removes: %v", got)
	}

	// move NAME=VERSION downgrades bullseye (Limit 2: 2.9-2+deb8u1 goes)
	// and leaves buster.
	if _, err := r.Move(ctx, "bullseye", "buster", Selection{}, []string{"hello=2.9-1"}); err != nil {
		t.Fatal(err)
	}
	if got := versionsIn(t, r, "bullseye", "hello"); !reflect.DeepEqual(got, []string{"2.9-10", "2.9-1"}) {
		t.Fatalf("bullseye after move: %v", got)
	}
	if got := versionsIn(t, r, "buster", "hello"); !reflect.DeepEqual(got, []string{"2.9-2"}) {
		t.Fatalf("buster after move: %v", got)
	}
	// The file of 2.9-2+deb8u1 is needed by nobody now.
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hello/hello_2.9-2+deb8u1_amd64.deb")); !os.IsNotExist(err) {
		t.Errorf("pool file of a version nothing holds: %v", err)
	}
	if _, err := r.Remove(ctx, "buster", Selection{}, []string{"hello=2.9=1"}); !errors.Is(err, ErrArgument) {
		t.Errorf("remove hello=2.9=1: %v", err)
	}
}

// TestStrictRulesStayDefault: without Options.RepreproRules (release, the
// upload API) an older version and a missing name are errors that change
// nothing.
func TestStrictRulesStayDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conf := "Codename: buster\nArchitectures: amd64\nComponents: main\nLimit: -1\n"
	r := newTestRepo(t, conf, Options{})
	debs := t.TempDir()
	mustInclude(t, r, "buster", buildDeb(t, debs, pkgSpec{name: "hello", version: "2.9-2", arch: "amd64", plain: true}))
	older := buildDeb(t, debs, pkgSpec{name: "hello", version: "2.9-1", arch: "amd64", plain: true})
	if _, err := r.IncludeDeb(ctx, "buster", []string{older}, IncludeOptions{}); !errors.Is(err, ErrOlderVersion) {
		t.Errorf("older version: %v", err)
	}
	if _, err := r.Remove(ctx, "buster", Selection{}, []string{"hello", "hellox"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove of a missing name: %v", err)
	}
	if got := versionsIn(t, r, "buster", "hello"); !reflect.DeepEqual(got, []string{"2.9-2"}) {
		t.Errorf("after refusals: %v", got)
	}
}

// TestClearVanished: a package list of a distribution no longer
// configured is kept while it holds packages, forgotten with del, and the
// distribution configured again starts empty.
func TestClearVanished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one := "Codename: buster\nArchitectures: amd64\nComponents: main\n"
	two := one + "\nCodename: bullseye\nArchitectures: amd64\nComponents: main\n"
	r := newTestRepo(t, two, Options{RepreproRules: true})
	debs := t.TempDir()
	mustInclude(t, r, "bullseye", buildDeb(t, debs, pkgSpec{name: "hello", version: "2.9-2", arch: "amd64", plain: true}))
	reopen := func(conf string) *Repo {
		writeConf(t, r.Base, conf)
		r2, err := Open(r.Base, Options{Now: fixedNow, RepreproRules: true})
		if err != nil {
			t.Fatal(err)
		}
		return r2
	}
	r = reopen(one)
	res, err := r.ClearVanished(ctx, false)
	if err != nil || len(res.Vanished) != 0 {
		t.Fatalf("without del: %+v %v", res, err)
	}
	if res, err = r.ClearVanished(ctx, true); err != nil || !reflect.DeepEqual(res.Vanished, []string{"bullseye|main|amd64"}) {
		t.Fatalf("with del: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hello/hello_2.9-2_amd64.deb")); !os.IsNotExist(err) {
		t.Errorf("pool file of a forgotten list: %v", err)
	}
	r = reopen(two)
	mustInclude(t, r, "bullseye", buildDeb(t, debs, pkgSpec{name: "hello", version: "2.9-10", arch: "amd64", plain: true}))
	if got := versionsIn(t, r, "bullseye", "hello"); !reflect.DeepEqual(got, []string{"2.9-10"}) {
		t.Errorf("bullseye configured again: %v", got)
	}
}
