package repo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpdateWithDependencies mirrors "FilterFormula: Package (== a) |
// Package (== z)" with "WithDependencies: yes": a needs b (>= 1.0),
// which needs c; an alternative "nosuch | d | e" of which d is the first
// the upstream has; and "virt", which only p provides. z needs
// missing (>= 2.0), which the upstream has only at 1.0. The mirror gets
// a, b, c, d, p and z, not e, missing or the unrelated package, with a
// warning naming z and its dependency; the real apt-get then installs a
// from a client that knows only the mirror. Without WithDependencies
// only a and z come.
func TestUpdateWithDependencies(t *testing.T) {
	t.Parallel()
	up, upPub := signedRepo(t, nil)
	kr, fpr := upstreamKey(t, upPub)
	debs := t.TempDir()
	ctx := context.Background()
	mustInclude(t, up, "bookworm",
		buildDeb(t, debs, pkgSpec{name: "aa", version: "1.0", arch: "amd64", extra: "Depends: bb (>= 1.0), nosuch | dd | ee, virt\nRecommends: rec\n"}),
		buildDeb(t, debs, pkgSpec{name: "bb", version: "1.2", extra: "Pre-Depends: cc\n"}),
		buildDeb(t, debs, pkgSpec{name: "cc", version: "3.0"}),
		buildDeb(t, debs, pkgSpec{name: "dd", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "ee", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "pp", version: "1.0", extra: "Provides: virt\n"}),
		buildDeb(t, debs, pkgSpec{name: "rec", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "zz", version: "1.0", extra: "Depends: missing (>= 2.0)\n"}),
		buildDeb(t, debs, pkgSpec{name: "missing", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "unrelated", version: "1.0"}))
	sec, mPub := testKeyFile(t)
	for _, c := range []struct{ with, want string }{
		{"", "aa zz"},
		{"WithDependencies: yes\n", "aa bb cc dd pp zz"},
		{"WithDependencies: recommends\n", "aa bb cc dd pp rec zz"},
	} {
		t.Run(strings.TrimSpace(c.with), func(t *testing.T) {
			var warned []string
			updates := fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: bookworm\nVerifyRelease: %s\nFilterFormula: Package (== aa) | Package (== zz)\n%s", up.Base, fpr, c.with)
			m := deleteMirror(t, "base", updates, "SignWith: "+sec+"\n", Options{Warn: func(s string) { warned = append(warned, s) }})
			check, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr, Check: true})
			if err != nil {
				t.Fatal(err)
			}
			warned = nil
			res, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, it := range res.Items {
				names = append(names, it.Package)
			}
			if got := strings.Join(names, " "); got != c.want {
				t.Fatalf("update took %q, want %q", got, c.want)
			}
			if itemsString(check.Items) != itemsString(res.Items) {
				t.Fatalf("checkupdate planned\n%s\nupdate did\n%s", itemsString(check.Items), itemsString(res.Items))
			}
			warn := strings.Join(warned, "\n")
			if c.with == "" {
				if warn != "" {
					t.Fatalf("warnings without WithDependencies: %s", warn)
				}
				return
			}
			if !strings.Contains(warn, "zz 1.0 Depends \"missing (>= 2.0)\"") || strings.Count(warn, "\n") != 0 {
				t.Fatalf("warnings %q; want one naming zz and missing (>= 2.0)", warn)
			}
			for _, it := range res.Items {
				if it.Package == "cc" && it.Also != "bb" || it.Package == "aa" && it.Also != "" {
					t.Fatalf("%s is marked as needed by %q", it.Package, it.Also)
				}
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(m.Base)))
			defer srv.Close()
			apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ mirror main\n", mPub, srv.URL))
			apt.Update()
			apt.MustRun("install", "aa")
			for _, n := range []string{"aa", "bb", "cc", "dd", "pp"} {
				if _, err := os.Stat(filepath.Join(apt.Root, "usr/share", n, "data")); err != nil {
					t.Fatalf("apt-get install a aa did not install %s: %v", n, err)
				}
			}
		})
	}
}
