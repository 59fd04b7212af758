package repo

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestPinOutlivesLimit: with Limit 1, a pinned version stays published
// (index and pool) through the includes that would replace it; unpinned,
// the next include prunes it.
func TestPinOutlivesLimit(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{}) // bookworm: Limit 1 (the default)
	dir := t.TempDir()
	versions := func() []string {
		t.Helper()
		es, err := r.List(ctx, "bookworm", Selection{Architectures: []string{"amd64"}}, []string{"hi"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Version)
		}
		return out
	}
	mustInclude(t, r, "bookworm", buildDeb(t, dir, pkgSpec{name: "hi", version: "0.1", plain: true}))
	if err := r.Pin(ctx, Pin{Codename: "bookworm", Package: "hi", Version: "0.1", Reason: "rollout bookworm/hi/0.2"}); err != nil {
		t.Fatal(err)
	}
	mustInclude(t, r, "bookworm", buildDeb(t, dir, pkgSpec{name: "hi", version: "0.2", plain: true}))
	if got := versions(); !reflect.DeepEqual(got, []string{"0.2", "0.1"}) {
		t.Fatalf("with 0.1 pinned: %v", got)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hi/hi_0.1_all.deb")); err != nil {
		t.Fatalf("the pinned version's pool file: %v", err)
	}
	pins, err := r.Pins(ctx)
	if err != nil || len(pins) != 1 || pins[0] != (Pin{"bookworm", "hi", "0.1", "rollout bookworm/hi/0.2"}) {
		t.Fatalf("Pins = %+v, %v", pins, err)
	}
	if err := r.Pin(ctx, Pin{Codename: "nowhere", Package: "hi", Version: "0.1"}); err == nil {
		t.Fatal("a pin in an unknown distribution was accepted")
	}
	if err := r.Unpin(ctx, "bookworm", "hi", "0.1"); err != nil {
		t.Fatal(err)
	}
	mustInclude(t, r, "bookworm", buildDeb(t, dir, pkgSpec{name: "hi", version: "0.3", plain: true}))
	if got := versions(); !reflect.DeepEqual(got, []string{"0.3"}) {
		t.Fatalf("after unpinning: %v", got)
	}
	if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hi/hi_0.1_all.deb")); !os.IsNotExist(err) {
		t.Fatalf("the unpinned version's pool file: %v", err)
	}
}
