package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// deleteMirror makes a mirroring repository: codename "mirror", amd64,
// main, the Update field update, conf/updates updates, unsigned, more
// distribution fields in extra.
func deleteMirror(t testing.TB, update, updates, extra string, opts Options) *Repo {
	t.Helper()
	conf := fmt.Sprintf("Codename: mirror\nArchitectures: amd64\nComponents: main\nUpdate: %s\n%s", update, extra)
	r := newTestRepo(t, conf, opts)
	if err := os.WriteFile(filepath.Join(r.Base, "conf", "updates"), []byte(updates), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// itemsString formats an update plan for comparison.
func itemsString(items []UpdateItem) string {
	var out []string
	for _, it := range items {
		switch {
		case it.Delete:
			out = append(out, "delete "+it.Package+" "+it.OldVersion)
		case it.OldVersion != "":
			out = append(out, it.Package+" "+it.OldVersion+">"+it.Version)
		default:
			out = append(out, "new "+it.Package+" "+it.Version)
		}
	}
	return strings.Join(out, "\n")
}

// TestUpdateDeleteVanished is "Update: - base": what the upstream no
// longer offers disappears from the mirror (index and pool), a package
// FilterList marks deinstall goes although the upstream still has it, a
// held one stays, a local package no rule offers goes, an upstream that
// went back to an older version takes the mirror back with it; checkupdate
// lists all that before. The same upstream mirrored with "Update: base"
// deletes nothing.
func TestUpdateDeleteVanished(t *testing.T) {
	t.Parallel()
	up, upPub := signedRepo(t, nil)
	kr, fpr := upstreamKey(t, upPub)
	debs := t.TempDir()
	ctx := context.Background()
	mustInclude(t, up, "bookworm",
		buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
		buildDeb(t, debs, pkgSpec{name: "gone", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "held", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "deinst", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "old", version: "2.0", arch: "amd64"}))
	updates := fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\nFilterList: install base.list\n", up.Base, fpr)
	mine := buildDeb(t, debs, pkgSpec{name: "mine", version: "1.0"})
	var mirrors []*Repo
	for _, update := range []string{"- base", "base"} {
		m := deleteMirror(t, update, updates, "", Options{})
		os.WriteFile(filepath.Join(m.Base, "conf", "base.list"), []byte("# nothing yet\n"), 0o644)
		if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil {
			t.Fatalf("%s: first update: %v", update, err)
		}
		mustInclude(t, m, "mirror", mine)
		os.WriteFile(filepath.Join(m.Base, "conf", "base.list"), []byte("held hold\ndeinst deinstall\n"), 0o644)
		mirrors = append(mirrors, m)
	}
	all := "mirror|main|amd64: deinst 1.0\nmirror|main|amd64: gone 1.0\nmirror|main|amd64: held 1.0\nmirror|main|amd64: hi 0.1\nmirror|main|amd64: mine 1.0\nmirror|main|amd64: old 2.0"
	if got := listed(t, mirrors[0], "mirror"); got != all {
		t.Fatalf("after the first update the mirror lists\n%s\nwant\n%s", got, all)
	}

	// Upstream: gone removed, held upgraded, old back to 1.5.
	if _, err := up.Remove(ctx, "bookworm", Selection{}, []string{"gone", "old"}); err != nil {
		t.Fatal(err)
	}
	mustInclude(t, up, "bookworm",
		buildDeb(t, debs, pkgSpec{name: "held", version: "1.1"}),
		buildDeb(t, debs, pkgSpec{name: "old", version: "1.5", arch: "amd64"}))

	check, err := mirrors[0].Update(ctx, nil, UpdateOptions{Keyring: kr, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := "delete deinst 1.0\ndelete gone 1.0\ndelete mine 1.0\nold 2.0>1.5"
	if got := itemsString(check.Items); got != wantPlan {
		t.Fatalf("checkupdate with \"-\" plans\n%s\nwant\n%s", got, wantPlan)
	}
	res, err := mirrors[0].Update(ctx, nil, UpdateOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if got := itemsString(res.Items); got != wantPlan {
		t.Fatalf("update with \"-\" did\n%s\nwant\n%s", got, wantPlan)
	}
	want := "mirror|main|amd64: held 1.0\nmirror|main|amd64: hi 0.1\nmirror|main|amd64: old 1.5"
	if got := listed(t, mirrors[0], "mirror"); got != want {
		t.Fatalf("with \"-\" the mirror lists\n%s\nwant\n%s", got, want)
	}
	pkgs := readFile(t, filepath.Join(mirrors[0].Base, "dists/mirror/main/binary-amd64/Packages"))
	for _, gone := range []string{"Package: gone", "Package: deinst", "Package: mine", "Version: 2.0"} {
		if strings.Contains(pkgs, gone) {
			t.Fatalf("the published Packages still has %q:\n%s", gone, pkgs)
		}
	}
	for _, f := range []string{"pool/main/g/gone/gone_1.0_all.deb", "pool/main/o/old/old_2.0_amd64.deb", "pool/main/m/mine/mine_1.0_all.deb"} {
		if _, err := os.Stat(filepath.Join(mirrors[0].Base, f)); !os.IsNotExist(err) {
			t.Fatalf("%s is still in the pool (%v)", f, err)
		}
	}
	// Again: nothing to do.
	if res, err := mirrors[0].Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil || len(res.Items) != 0 || len(res.Changes) != 0 {
		t.Fatalf("second update: %+v, %v; want nothing", res, err)
	}

	// Without "-": nothing goes, nothing is downgraded.
	res, err = mirrors[1].Update(ctx, nil, UpdateOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 0 {
		t.Fatalf("update without \"-\" did %s", itemsString(res.Items))
	}
	if got := listed(t, mirrors[1], "mirror"); got != all {
		t.Fatalf("without \"-\" the mirror lists\n%s\nwant\n%s", got, all)
	}
}

// TestUpdateDeleteFailedUpstream: under "Update: - base other", a rule
// whose upstream cannot be fetched deletes nothing — the command fails
// and the mirror is byte for byte as before — and a rule whose Release
// does not list an index the package list needs keeps that list's
// packages (reprepro's "missing" index), with a warning.
func TestUpdateDeleteFailedUpstream(t *testing.T) {
	t.Parallel()
	up, upPub := signedRepo(t, nil)
	kr, fpr := upstreamKey(t, upPub)
	debs := t.TempDir()
	ctx := context.Background()
	mustInclude(t, up, "bookworm",
		buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
		buildDeb(t, debs, pkgSpec{name: "gone", version: "1.0"}))
	other := t.TempDir() // becomes the second upstream: a copy of up
	base := fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\n\n", up.Base, fpr)
	updates := base + fmt.Sprintf("Name: other\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\n", other, fpr)
	var warned []string
	m := deleteMirror(t, "- base other", updates, "Log: mirror.log\n", Options{Warn: func(s string) { warned = append(warned, s) }})
	os.CopyFS(other, os.DirFS(up.Base))
	if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Remove(ctx, "bookworm", Selection{}, []string{"gone"}); err != nil {
		t.Fatal(err)
	}

	// other fails: its Release is gone.
	os.RemoveAll(filepath.Join(other, "dists"))
	before := repoState(t, m)
	if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err == nil || !strings.Contains(err.Error(), "rule other") {
		t.Fatalf("update with a failing upstream: %v; want an error naming rule other", err)
	}
	if after := repoState(t, m); after != before {
		t.Fatalf("a failed update changed the mirror:\nbefore\n%s\nafter\n%s", before, after)
	}

	// other lists no main/binary-amd64 (its component is another): main
	// is incomplete, nothing is deleted from it.
	os.WriteFile(filepath.Join(m.Base, "conf", "updates"), []byte(base+fmt.Sprintf("Name: other\nMethod: file://%s\nSuite: bookworm\nComponents: nosuch>main\nVerifyRelease: %s\n", up.Base, fpr)), 0o644)
	res, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 0 {
		t.Fatalf("update with a missing index did %s; want nothing", itemsString(res.Items))
	}
	if got := listed(t, m, "mirror"); got != "mirror|main|amd64: gone 1.0\nmirror|main|amd64: hi 0.1" {
		t.Fatalf("mirror lists %q", got)
	}
	if !strings.Contains(strings.Join(warned, "\n"), "lists no nosuch/binary-amd64/Packages") {
		t.Fatalf("no warning about the missing index: %q", warned)
	}

	// Both upstreams whole: gone goes.
	os.WriteFile(filepath.Join(m.Base, "conf", "updates"), []byte(base+fmt.Sprintf("Name: other\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\n", up.Base, fpr)), 0o644)
	if res, err = m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil || itemsString(res.Items) != "delete gone 1.0" {
		t.Fatalf("update: %+v, %v; want gone deleted", res, err)
	}
}

// TestUpdateDeleteUnderLimit keeps reprepro's behaviour under Limit: the
// update sees the newest version of each name; a name no longer offered
// loses that version per update, the older versions Limit kept go one
// update at a time.
func TestUpdateDeleteUnderLimit(t *testing.T) {
	t.Parallel()
	up, upPub := signedRepo(t, nil)
	kr, fpr := upstreamKey(t, upPub)
	debs := t.TempDir()
	ctx := context.Background()
	m := deleteMirror(t, "- base", fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\n", up.Base, fpr), "Limit: 3\n", Options{})
	for _, v := range []string{"1.0", "2.0"} {
		mustInclude(t, up, "bookworm", buildDeb(t, debs, pkgSpec{name: "xx", version: v}), buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
		if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil {
			t.Fatal(err)
		}
	}
	if got := listed(t, m, "mirror"); got != "mirror|main|amd64: hi 2.0\nmirror|main|amd64: hi 1.0\nmirror|main|amd64: xx 2.0\nmirror|main|amd64: xx 1.0" {
		t.Fatalf("under Limit: 3 the mirror lists\n%s", got)
	}
	if _, err := up.Remove(ctx, "bookworm", Selection{}, []string{"xx"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mirror|main|amd64: hi 2.0\nmirror|main|amd64: hi 1.0\nmirror|main|amd64: xx 1.0", "mirror|main|amd64: hi 2.0\nmirror|main|amd64: hi 1.0"} {
		if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil {
			t.Fatal(err)
		}
		if got := listed(t, m, "mirror"); got != want {
			t.Fatalf("the mirror lists\n%s\nwant\n%s", got, want)
		}
	}
}
