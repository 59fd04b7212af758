package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestBadInputLeavesRepositoryUntouched feeds includedeb what it must
// refuse and checks that dists/, pool/ and db/ stay byte for byte the
// same, and that the error says what is wrong.
func TestBadInputLeavesRepositoryUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	good := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"})
	mustInclude(t, r, "bookworm", good)
	mustInclude(t, r, "trixie", good)

	bad := t.TempDir()
	notDeb := filepath.Join(bad, "notes.deb")
	os.WriteFile(notDeb, []byte("this is not a package\n"), 0o644)
	data, _ := os.ReadFile(good)
	truncated := filepath.Join(bad, "truncated.deb")
	os.WriteFile(truncated, data[:len(data)-100], 0o644)
	empty := filepath.Join(bad, "empty.deb")
	os.WriteFile(empty, nil, 0o644)
	i386 := buildDeb(t, bad, pkgSpec{name: "tool", version: "1.0", arch: "i386"})
	older := buildDeb(t, t.TempDir(), pkgSpec{name: "hi", version: "0.1"})
	clash := buildDeb(t, t.TempDir(), pkgSpec{name: "hi", version: "0.2", payload: "rebuilt\n"})
	fresh := buildDeb(t, t.TempDir(), pkgSpec{name: "fresh", version: "1.0"})
	noSection := buildDeb(t, t.TempDir(), pkgSpec{name: "nosect", control: "Package: nosect\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nPriority: optional\nDescription: no section\n"})

	cases := []struct {
		name     string
		codename string
		files    []string
		opts     IncludeOptions
		want     error
		msg      string
	}{
		{"not a deb", "bookworm", []string{notDeb}, IncludeOptions{}, ErrBadPackage, "notes.deb"},
		{"truncated", "bookworm", []string{truncated}, IncludeOptions{}, ErrBadPackage, "truncated"},
		{"empty", "bookworm", []string{empty}, IncludeOptions{}, ErrBadPackage, "empty"},
		{"missing file", "bookworm", []string{filepath.Join(bad, "nope.deb")}, IncludeOptions{}, os.ErrNotExist, "nope.deb"},
		{"architecture", "bookworm", []string{i386}, IncludeOptions{}, ErrArchitecture, "i386"},
		{"unknown codename", "sid", []string{fresh}, IncludeOptions{}, ErrUnknownCodename, `"sid"`},
		{"suite instead of codename", "stable", []string{fresh}, IncludeOptions{}, ErrUnknownCodename, "suite of"},
		{"unknown component", "bookworm", []string{fresh}, IncludeOptions{Component: "non-free"}, ErrComponent, "non-free"},
		{"older version", "bookworm", []string{older}, IncludeOptions{}, ErrOlderVersion, "already has hi 0.2"},
		{"version clash", "bookworm", []string{clash}, IncludeOptions{}, ErrVersionClash, "new version"},
		{"no section", "bookworm", []string{noSection}, IncludeOptions{}, ErrBadPackage, "-S"},
		{"one bad among good", "bookworm", []string{fresh, notDeb}, IncludeOptions{}, ErrBadPackage, "notes.deb"},
		{"good then clash", "trixie", []string{fresh, clash}, IncludeOptions{}, ErrVersionClash, "hi"},
	}
	before := testutil.TreeSum(t, r.Base, "dists", "pool", "db")
	for _, c := range cases {
		_, err := r.IncludeDeb(ctx, c.codename, c.files, c.opts)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
		if after := testutil.TreeSum(t, r.Base, "dists", "pool", "db"); after != before {
			t.Fatalf("%s changed the repository", c.name)
		}
	}

	// A broken conf/distributions: Open reports file:line.
	writeConf(t, r.Base, testDistributions+"\nCodename bad line\n")
	_, err := Open(r.Base, Options{Now: fixedNow})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "distributions:20:") {
		t.Errorf("broken conf: %v", err)
	}
	if after := testutil.TreeSum(t, r.Base, "dists", "pool", "db"); after != before {
		t.Fatal("broken conf changed the repository")
	}
}
