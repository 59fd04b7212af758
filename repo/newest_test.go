package repo

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
)

// TestNewest: the newest version of each package over every distribution,
// by dpkg's order (1.10 after 1.9, ~rc before the release, an epoch wins).
func TestNewest(t *testing.T) {
	r := newTestRepo(t, testDistributions, Options{})
	dir := t.TempDir()
	mustInclude(t, r, "bookworm",
		buildDeb(t, dir, pkgSpec{name: "hi", version: "1.9", plain: true}),
		buildDeb(t, dir, pkgSpec{name: "lamp", version: "2.0", plain: true}))
	mustInclude(t, r, "trixie",
		buildDeb(t, dir, pkgSpec{name: "hi", version: "1.10~rc1", plain: true}),
		buildDeb(t, dir, pkgSpec{name: "lamp", version: "1:0.1", plain: true}),
		buildDeb(t, dir, pkgSpec{name: "only-testing", version: "0.1", plain: true}))
	got, err := r.Newest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hi": "1.10~rc1", "lamp": "1:0.1", "only-testing": "0.1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Newest = %v, want %v", got, want)
	}
	if !newerVersion("1.10", "1.9") || newerVersion("1.0~rc1", "1.0") || newerVersion("junk version", "1.0") || !newerVersion("1.0", "junk version") {
		t.Fatal("newerVersion does not follow dpkg's order")
	}
}

// TestLookup: a codename wins over a suite; a suite names the first
// distribution that has it; Config.Distribution takes codenames only and
// says which codename a suite belongs to.
func TestLookup(t *testing.T) {
	c := &Config{Dir: "conf", Distributions: []*Distribution{
		{Codename: "bookworm", Suite: "stable"},
		{Codename: "trixie", Suite: "bookworm"},
		{Codename: "sid", Suite: "unstable"},
		{Codename: "forky", Suite: "unstable"},
		{Codename: "nosuite"},
	}}
	for name, want := range map[string]string{"bookworm": "bookworm", "stable": "bookworm", "trixie": "trixie", "unstable": "sid", "nosuite": "nosuite"} {
		if d := c.Lookup(name); d == nil || d.Codename != want {
			t.Errorf("Lookup(%q) = %v, want %s", name, d, want)
		}
	}
	for _, name := range []string{"", "experimental"} {
		if d := c.Lookup(name); d != nil {
			t.Errorf("Lookup(%q) = %s, want nil", name, d.Codename)
		}
	}
	if d, err := c.Distribution("stable"); d != nil || !errors.Is(err, ErrUnknownCodename) || err.Error() != `unknown distribution: "stable" is the suite of "bookworm"; commands take the codename` {
		t.Errorf("Distribution(stable) = %v, %v", d, err)
	}
	if d, err := c.Distribution("sid"); err != nil || d.Codename != "sid" {
		t.Errorf("Distribution(sid) = %v, %v", d, err)
	}
}

// TestLayout: the paths every command and the server share.
func TestLayout(t *testing.T) {
	l := Layout{Base: "/srv/repo"}
	for got, want := range map[string]string{
		l.Conf(): "/srv/repo/conf", l.KeyDir(): "/srv/repo/conf/keys", l.DB(): "/srv/repo/db",
		l.Dists(): "/srv/repo/dists", l.Pool(): "/srv/repo/pool", l.Tokens(): "/srv/repo/db/tokens.db",
		l.FleetDB(): "/srv/repo/db/fleet.db", l.ServeDates(): "/srv/repo/db/serve-dates.db",
		l.Uploads(): "/srv/repo/db/uploads", l.Release("bookworm", "InRelease"): "/srv/repo/dists/bookworm/InRelease",
	} {
		if got != filepath.FromSlash(want) {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
