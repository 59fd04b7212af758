package deb_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// modeTree has the special modes of base-files and libutempter0: sticky
// world-writable /tmp, setgid group-writable /var/local, a setgid helper.
func modeTree() fstest.MapFS {
	fsys := tree(map[string]string{"DEBIAN/control": goodControl})
	fsys["tmp"] = &fstest.MapFile{Mode: fs.ModeDir | fs.ModeSticky | 0o777}
	fsys["var/local"] = &fstest.MapFile{Mode: fs.ModeDir | fs.ModeSetgid | 0o775}
	fsys["usr/lib/utempter/utempter"] = &fstest.MapFile{Data: []byte("\x7fELF"), Mode: fs.ModeSetgid | 0o755}
	fsys["srv/www/index.html"] = &fstest.MapFile{Data: []byte("hi"), Mode: 0o664}
	return fsys
}

func headers(t *testing.T, fsys fstest.MapFS, opts deb.BuildOptions) (map[string]string, *deb.BuildResult) {
	t.Helper()
	opts.Compression, opts.Mtime = deb.CompressNone, time.Unix(1700000000, 0)
	pkg, res, err := buildMap(t, fsys, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range readData(t, pkg) {
		got[h.Name] = fmt.Sprintf("%04o %s %s %d %d", h.Mode, h.Uname, h.Gname, h.Uid, h.Gid)
	}
	return got, res
}

// TestBuildKeepsModeBits: every mode bit of the tree is kept (sticky,
// setgid, group and other write), as dpkg-deb keeps them.
func TestBuildKeepsModeBits(t *testing.T) {
	got, res := headers(t, modeTree(), deb.BuildOptions{})
	for name, want := range map[string]string{
		"./tmp/":                      "1777 root root 0 0",
		"./var/local/":                "2775 root root 0 0",
		"./usr/lib/utempter/utempter": "2755 root root 0 0",
		"./srv/www/index.html":        "0664 root root 0 0",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	// Both setgid entries are left root:root undeclared: each is warned about.
	var warned []string
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "root:root") {
			warned = append(warned, w.File)
		}
	}
	if strings.Join(warned, ",") != "usr/lib/utempter/utempter,var/local" {
		t.Errorf("setgid warnings for %v, want utempter and var/local; all: %v", warned, res.Warnings)
	}
}

// TestBuildUmask: an explicit umask clears bits and the build says what
// it changed.
func TestBuildUmask(t *testing.T) {
	got, res := headers(t, modeTree(), deb.BuildOptions{Umask: 0o022})
	for name, want := range map[string]string{
		"./tmp/":               "1755 root root 0 0",
		"./var/local/":         "2755 root root 0 0",
		"./srv/www/index.html": "0644 root root 0 0",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	found := false
	for _, w := range res.Warnings {
		found = found || strings.Contains(w.Msg, "umask 0022 changed the mode of 3 entries") && strings.Contains(w.Msg, "./tmp/ 1777→1755")
	}
	if !found {
		t.Errorf("no warning listing what the umask changed: %v", res.Warnings)
	}
}

// TestBuildOwners: an owners file (dpkg-statoverride's format) gives
// owner, group and mode by path or glob, by name with the ids of Debian's
// base-passwd or given ones; the last matching line wins.
func TestBuildOwners(t *testing.T) {
	owners, err := deb.ParseOwners(strings.NewReader(`# libutempter0 and a web root
root utmp 2755 /usr/lib/utempter/utempter
root staff - /var/local
www-data www-data 0640 /srv/www/*
www-data www-data 0750 /srv/www
app:999 app:998 - /srv/www/index.html
`), "owners.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, res := headers(t, modeTree(), deb.BuildOptions{Owners: owners})
	for name, want := range map[string]string{
		"./usr/lib/utempter/utempter": "2755 root utmp 0 43",
		"./var/local/":                "2775 root staff 0 50",
		"./srv/www/":                  "0750 www-data www-data 33 33",
		"./srv/www/index.html":        "0664 app app 999 998",
		"./tmp/":                      "1777 root root 0 0",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "root:root") {
			t.Errorf("warning for a declared entry: %s", w)
		}
	}
}

func TestOwnersErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"root utmp /usr/bin/x", "owners.txt:1: want 'OWNER GROUP MODE PATH'"},
		{"crontab crontab - /usr/bin/crontab", `"crontab" has no id fixed by Debian's base-passwd; write it as crontab:ID`},
		{"root root 9755 /x", `mode "9755"`},
		{"root root 0755 usr/bin/x", "must be absolute"},
		{"\n\nroot ro:ot 0755 /x", "owners.txt:3: group"},
	} {
		_, err := deb.ParseOwners(strings.NewReader(c.file), "owners.txt")
		if err == nil || !errors.Is(err, deb.ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want ErrSyntax with %q", c.file, err, c.want)
		}
	}
	// A line matching nothing is an error: a typo would leave a file
	// root-owned.
	owners, err := deb.ParseOwners(strings.NewReader("root utmp 2755 /usr/lib/utemper/utempter\n"), "owners.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = buildMap(t, modeTree(), deb.BuildOptions{Owners: owners})
	if !errors.Is(err, deb.ErrInvalidTree) || !strings.Contains(err.Error(), "owners.txt:1: /usr/lib/utemper/utempter matches nothing") {
		t.Errorf("unmatched line: %v", err)
	}
}
