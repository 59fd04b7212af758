package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

func TestCopyPhaseAndUnreferenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{KeepUnreferenced: true})
	debs := t.TempDir()
	mustInclude(t, r, "trixie", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	mustInclude(t, r, "trixie", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))

	// Promote: only the newest version, only where bookworm has the
	// component and architecture (armhf, amd64 — trixie has no arm64).
	res, err := r.Copy(ctx, "bookworm", "trixie", Selection{}, []string{"hi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) != 2 || res.Changes[0].Version != "0.2" || res.Exported[0] != "bookworm" {
		t.Fatalf("copy: %+v", res)
	}
	if _, err := r.Copy(ctx, "bookworm", "trixie", Selection{}, []string{"nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("copy of a missing package: %v", err)
	}

	res, err = r.Phase(ctx, "bookworm", Selection{}, "hi", 20)
	if err != nil {
		t.Fatal(err)
	}
	pk := readFile(t, filepath.Join(r.Base, "dists/bookworm/main/binary-amd64/Packages"))
	if !strings.Contains(pk, "\nPhased-Update-Percentage: 20\n") {
		t.Errorf("phase 20:\n%s", pk)
	}
	if _, err := r.Phase(ctx, "bookworm", Selection{}, "hi", 100); err != nil {
		t.Fatal(err)
	}
	if pk := readFile(t, filepath.Join(r.Base, "dists/bookworm/main/binary-amd64/Packages")); strings.Contains(pk, "Phased") {
		t.Errorf("phase 100 kept the field:\n%s", pk)
	}

	// Removing from both leaves 0.1 and 0.2 unreferenced but kept. A
	// name alone removes the newest version only.
	for c, names := range map[string][]string{"trixie": {"hi", "hi=0.1"}, "bookworm": {"hi"}} {
		if _, err := r.Remove(ctx, c, Selection{}, names); err != nil {
			t.Fatal(err)
		}
	}
	un, err := r.DumpUnreferenced(ctx)
	if err != nil || strings.Join(un, " ") != "pool/main/h/hi/hi_0.1_all.deb pool/main/h/hi/hi_0.2_all.deb" {
		t.Fatalf("dumpunreferenced: %v %v", un, err)
	}
	if problems, err := r.Check(ctx); err != nil {
		t.Fatalf("check: %v %v", problems, err)
	}
	res, err = r.DeleteUnreferenced(ctx)
	if err != nil || len(res.Deleted) != 2 {
		t.Fatalf("deleteunreferenced: %+v %v", res, err)
	}
	if un, _ := r.DumpUnreferenced(ctx); len(un) != 0 {
		t.Errorf("still unreferenced: %v", un)
	}
}

func TestCheckAndCheckPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, testDistributions, Options{})
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}), buildDeb(t, debs, pkgSpec{name: "ho", version: "1"}))
	if p, err := r.Check(ctx); err != nil {
		t.Fatalf("check: %v %v", p, err)
	}
	if p, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", p, err)
	}
	os.WriteFile(filepath.Join(r.Base, "pool/main/h/hi/hi_0.1_all.deb"), []byte("damaged"), 0o644)
	os.Remove(filepath.Join(r.Base, "pool/main/h/ho/ho_1_all.deb"))
	os.Remove(filepath.Join(r.Base, "dists/bookworm/main/binary-armhf/by-hash/SHA256/"+sha256Of(t, filepath.Join(r.Base, "dists/bookworm/main/binary-armhf/Packages.gz"))))
	p, err := r.CheckPool(ctx, false)
	if !errors.Is(err, ErrCheck) || len(p) != 2 || !strings.Contains(p[0], "size 7") || !strings.Contains(p[1], "ho_1_all.deb") {
		t.Errorf("checkpool: %v %v", p, err)
	}
	if p, err := r.CheckPool(ctx, true); len(p) != 1 || err == nil {
		t.Errorf("checkpool fast: %v %v", p, err)
	}
	p, err = r.Check(ctx, "bookworm")
	if !errors.Is(err, ErrCheck) || !strings.Contains(strings.Join(p, "\n"), "ho_1_all.deb: missing from the pool") ||
		!strings.Contains(strings.Join(p, "\n"), "binary-armhf/by-hash/SHA256/") {
		t.Errorf("check: %v %v", p, err)
	}
}

func sha256Of(t *testing.T, p string) string {
	return sumBytes([]byte(readFile(t, p))).SHA256
}

func TestSignedExportAndByHashRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := testNow
	clock := func() time.Time { return now }
	keys := t.TempDir()
	k, pub := testKey(t, keys)
	var sec bytes.Buffer
	k.WriteSecret(&sec, true)
	os.WriteFile(filepath.Join(keys, "signing.asc"), sec.Bytes(), 0o600)
	conf := "Codename: c\nSuite: s\nArchitectures: amd64\nComponents: main\nValidFor: 7d\nSignWith: " + k.Fingerprint()[30:] + "\n"
	r := newTestRepo(t, conf, Options{Now: clock, KeyDir: keys, ByHashRetention: time.Hour})
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	kr, err := signing.ReadKeyring(bytes.NewReader([]byte(readFile(t, pub))))
	if err != nil {
		t.Fatal(err)
	}
	in := readFile(t, filepath.Join(r.Base, "dists/c/InRelease"))
	if _, text, err := signing.VerifyClearsigned(ctx, kr, strings.NewReader(in), signing.VerifyOptions{Now: fixedNow}); err != nil ||
		!strings.Contains(string(text), "Valid-Until: Sat, 08 Mar 2025 12:00:00 UTC\n") {
		t.Fatalf("InRelease: %v\n%s", err, text)
	}
	byHash := func() int {
		es, _ := os.ReadDir(filepath.Join(r.Base, "dists/c/main/binary-amd64/by-hash/SHA256"))
		return len(es)
	}
	debs := t.TempDir()
	for i, v := range []string{"1", "2", "3"} {
		now = testNow.Add(time.Duration(i+1) * 40 * time.Minute)
		mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
	}
	// Generations (Packages and Packages.gz each): empty (superseded at
	// +40m, pruned at +120m), v1 (superseded at +80m, kept for an hour),
	// v2 (superseded at +120m: the previous generation), v3 (current).
	if n := byHash(); n != 6 {
		t.Errorf("by-hash holds %d files, want 6", n)
	}
	now = now.Add(24 * time.Hour)
	if _, err := r.Export(ctx); err != nil {
		t.Fatal(err)
	}
	if n := byHash(); n != 2 { // the same content again: only v3 is left
		t.Errorf("after a day by-hash holds %d files, want 2", n)
	}
	if p, err := r.Check(ctx); err != nil {
		t.Fatalf("check: %v %v", p, err)
	}
}

func TestInitAndSymlinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	if err := Init(dir, InitOptions{Codename: "bookworm", Suite: "stable", Architectures: []string{"armhf"}}); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, InitOptions{Codename: "x"}); !errors.Is(err, ErrConfig) {
		t.Errorf("second init: %v", err)
	}
	if err := Init(t.TempDir(), InitOptions{Codename: "a b"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad codename: %v", err)
	}
	r, err := Open(dir, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	made, skipped, err := r.CreateSymlinks(ctx, false)
	if err != nil || len(made) != 1 || len(skipped) != 0 {
		t.Fatalf("createsymlinks: %v %v %v", made, skipped, err)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "dists/stable")); target != "bookworm" {
		t.Errorf("link to %q", target)
	}
	os.Remove(filepath.Join(dir, "dists/stable"))
	os.Symlink("elsewhere", filepath.Join(dir, "dists/stable"))
	if _, skipped, _ := r.CreateSymlinks(ctx, false); len(skipped) != 1 {
		t.Errorf("existing link replaced without --delete")
	}
	if made, _, _ := r.CreateSymlinks(ctx, true); len(made) != 1 {
		t.Errorf("--delete did not replace the link")
	}
}
