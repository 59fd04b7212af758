package deb_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

const goodControl = "Package: hi\nVersion: 0.1\nArchitecture: all\nMaintainer: A <a@example.org>\nSection: misc\nPriority: optional\nDescription: hi\n"

func tree(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(data, "#!") {
			mode = 0o755
		}
		m[name] = &fstest.MapFile{Data: []byte(data), Mode: mode, ModTime: time.Unix(1600000000, 0)}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			m[dir] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: time.Unix(1600000000, 0)}
		}
	}
	m["."] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: time.Unix(1600000000, 0)}
	return m
}

func buildMap(t *testing.T, fsys fs.FS, opts deb.BuildOptions) ([]byte, *deb.BuildResult, error) {
	t.Helper()
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), fsys, &buf, opts)
	return buf.Bytes(), res, err
}

func TestBuildRefusesBadTrees(t *testing.T) {
	fifo := tree(map[string]string{"DEBIAN/control": goodControl})
	fifo["run/pipe"] = &fstest.MapFile{Mode: fs.ModeNamedPipe | 0o644}
	dev := tree(map[string]string{"DEBIAN/control": goodControl})
	dev["dev/sda"] = &fstest.MapFile{Mode: fs.ModeDevice | 0o644}
	linkScript := tree(map[string]string{"DEBIAN/control": goodControl, "bin/x": "#!/bin/sh\n"})
	linkScript["DEBIAN/postinst"] = &fstest.MapFile{Data: []byte("../bin/x"), Mode: fs.ModeSymlink | 0o777}
	cases := []struct {
		name string
		fsys fs.FS
		is   error
		want string
	}{
		{"no DEBIAN", tree(map[string]string{"opt/x": "x"}), deb.ErrInvalidTree, "no DEBIAN directory"},
		{"no control", tree(map[string]string{"DEBIAN/postinst": "#!/bin/sh\nset -e\n"}), deb.ErrInvalidTree, "DEBIAN/control is missing"},
		{"missing field", tree(map[string]string{"DEBIAN/control": strings.Replace(goodControl, "Maintainer: A <a@example.org>\n", "", 1)}),
			deb.ErrMissingField, `DEBIAN/control: missing mandatory field "Maintainer"`},
		{"bad version", tree(map[string]string{"DEBIAN/control": strings.Replace(goodControl, "0.1", "0.1-", 1)}),
			deb.ErrInvalidVersion, "DEBIAN/control:2: field Version"},
		{"bad name", tree(map[string]string{"DEBIAN/control": strings.Replace(goodControl, "hi", "Hi_There", 1)}),
			deb.ErrInvalidField, "DEBIAN/control:1: field Package"},
		{"bad arch", tree(map[string]string{"DEBIAN/control": strings.Replace(goodControl, "all", "linux-any", 1)}),
			deb.ErrInvalidField, "DEBIAN/control:3: field Architecture"},
		{"duplicate", tree(map[string]string{"DEBIAN/control": goodControl + "package: again\n"}),
			deb.ErrSyntax, `DEBIAN/control:8: control file syntax error: duplicate field "package" (first at line 1)`},
		{"blank line", tree(map[string]string{"DEBIAN/control": strings.Replace(goodControl, "Section", "\nSection", 1)}),
			deb.ErrSyntax, "DEBIAN/control:6: control file syntax error: a second paragraph starts here"},
		{"no final newline", tree(map[string]string{"DEBIAN/control": strings.TrimSuffix(goodControl, "\n")}),
			deb.ErrSyntax, "DEBIAN/control:7: control file syntax error: the file does not end with a newline"},
		{"whitespace line", tree(map[string]string{"DEBIAN/control": goodControl + " long\n \n more\n"}),
			deb.ErrSyntax, "DEBIAN/control:9: control file syntax error: line holds only white space inside field \"Description\""},
		{"crlf", tree(map[string]string{"DEBIAN/control": strings.ReplaceAll(goodControl, "\n", "\r\n")}),
			deb.ErrSyntax, "DEBIAN/control:1: control file syntax error: line ends with a carriage return"},
		{"continuation first", tree(map[string]string{"DEBIAN/control": " " + goodControl}),
			deb.ErrSyntax, "DEBIAN/control:1: control file syntax error: continuation line"},
		{"no colon", tree(map[string]string{"DEBIAN/control": goodControl + "Oops\n"}),
			deb.ErrSyntax, `DEBIAN/control:8: control file syntax error: "Oops" is not a field`},
		{"bad depends", tree(map[string]string{"DEBIAN/control": goodControl + "Depends: foo (>> 1\n"}),
			deb.ErrInvalidField, "DEBIAN/control:8: field Depends"},
		{"arch restriction", tree(map[string]string{"DEBIAN/control": goodControl + "Depends: foo [amd64]\n"}),
			deb.ErrInvalidField, "architecture restrictions"},
		{"empty depends entry", tree(map[string]string{"DEBIAN/control": goodControl + "Depends: foo,, bar\n"}),
			deb.ErrInvalidField, "empty entry between commas"},
		{"conflicts alternative", tree(map[string]string{"DEBIAN/control": goodControl + "Conflicts: a | b\n"}),
			deb.ErrInvalidField, "alternatives ('|') are not allowed"},
		{"essential", tree(map[string]string{"DEBIAN/control": goodControl + "Essential: maybe\n"}),
			deb.ErrInvalidField, "field Essential"},
		{"empty value", tree(map[string]string{"DEBIAN/control": goodControl + "Homepage:\n"}),
			deb.ErrSyntax, `field "Homepage" has an empty value`},
		{"script without #!", tree(map[string]string{"DEBIAN/control": goodControl, "DEBIAN/postinst": "echo hi\n"}),
			deb.ErrInvalidTree, "DEBIAN/postinst: a maintainer script must start with an interpreter line"},
		{"script symlink", linkScript, deb.ErrInvalidTree, "DEBIAN/postinst is not a regular file (a symbolic link)"},
		{"relative conffile", tree(map[string]string{"DEBIAN/control": goodControl, "DEBIAN/conffiles": "etc/x\n", "etc/x": "x"}),
			deb.ErrInvalidTree, `DEBIAN/conffiles:1: conffile "etc/x" is not an absolute path`},
		{"absent conffile", tree(map[string]string{"DEBIAN/control": goodControl, "DEBIAN/conffiles": "/etc/y\n", "etc/x": "x"}),
			deb.ErrInvalidTree, "conffile /etc/y is not a regular file in the package tree"},
		{"fifo", fifo, deb.ErrInvalidTree, "run/pipe is a FIFO (named pipe)"},
		{"device", dev, deb.ErrInvalidTree, "dev/sda is a block device"},
		{"newline in name", tree(map[string]string{"DEBIAN/control": goodControl, "opt/a\nb": "x"}), deb.ErrInvalidTree, "newline in a file name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := buildMap(t, c.fsys, deb.BuildOptions{Compression: deb.CompressNone})
			if err == nil {
				t.Fatalf("built a package, want an error containing %q", c.want)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q does not wrap %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nwant it to contain %q", err, c.want)
			}
			if len(out) != 0 {
				t.Errorf("%d bytes written despite the error", len(out))
			}
		})
	}
}

func TestBuildWarnings(t *testing.T) {
	ctl := strings.Replace(strings.Replace(goodControl, "Section: misc\n", "", 1), "Priority: optional\n", "", 1)
	_, res, err := buildMap(t, tree(map[string]string{"DEBIAN/control": ctl, "DEBIAN/postinst": "#!/bin/sh\necho hi\n",
		"DEBIAN/prerm": "#!/bin/sh -e\necho hi\n", "DEBIAN/postrm": "#!/usr/bin/python3\nprint(1)\n"}), deb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range res.Warnings {
		got = append(got, w.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"no Priority field", "no Section field", "DEBIAN/postinst: the script does not 'set -e'"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, unwanted := range []string{"DEBIAN/prerm", "DEBIAN/postrm"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("no warning expected for %s:\n%s", unwanted, all)
		}
	}
}

// readData returns the headers of the data.tar of an uncompressed .deb.
func readData(t *testing.T, pkg []byte) []*tar.Header {
	t.Helper()
	i := bytes.Index(pkg, []byte("data.tar        "))
	if i < 0 {
		t.Fatal("no data.tar member")
	}
	tr := tar.NewReader(bytes.NewReader(pkg[i+60:]))
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append(hdrs, h)
	}
}

func TestBuildEntries(t *testing.T) {
	fsys := tree(map[string]string{"DEBIAN/control": goodControl, "opt/b": strings.Repeat("x", 2049), "opt/a": "a", "etc/hi.conf": "c"})
	fsys["opt/link"] = &fstest.MapFile{Data: []byte("/etc/passwd"), Mode: fs.ModeSymlink | 0o777}
	fsys["opt/secret"] = &fstest.MapFile{Data: []byte("s"), Mode: 0o664, ModTime: time.Unix(1700000500, 0)}
	pkg, res, err := buildMap(t, fsys, deb.BuildOptions{Compression: deb.CompressNone, Mtime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, h := range readData(t, pkg) {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "root" || h.Gname != "root" {
			t.Errorf("%s owned by %d/%d %s/%s", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		lines = append(lines, h.Name+" "+fs.FileMode(h.Mode).String()+" "+h.Linkname+" "+h.ModTime.UTC().Format("2006-01-02"))
	}
	want := []string{
		"./ -rwxr-xr-x  2020-09-13", "./etc/ -rwxr-xr-x  2020-09-13", "./etc/hi.conf -rw-r--r--  2020-09-13",
		"./opt/ -rwxr-xr-x  2020-09-13", "./opt/a -rw-r--r--  2020-09-13", "./opt/b -rw-r--r--  2020-09-13",
		"./opt/link -rwxrwxrwx /etc/passwd 1970-01-01", "./opt/secret -rw-rw-r--  2023-11-14",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("data.tar:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// 1 (a) + 3 (b: 2049 bytes) + 1 (conf) + 1 (link) + 1 (secret) + 3 dirs.
	if res.InstalledSize != 10 {
		t.Errorf("Installed-Size %d, want 10", res.InstalledSize)
	}
	if got := res.Control.Get("Installed-Size"); got != "10" {
		t.Errorf("control Installed-Size %q", got)
	}
	if strings.Join(res.Conffiles, ",") != "/etc/hi.conf" {
		t.Errorf("conffiles %q", res.Conffiles)
	}
}

func TestBuildReproducible(t *testing.T) {
	fsys := tree(map[string]string{"DEBIAN/control": goodControl, "DEBIAN/postinst": "#!/bin/sh\nset -e\n", "opt/hi/hi": "#!/bin/sh\necho hi\n"})
	for _, comp := range allCompressions {
		a, _, err := buildMap(t, fsys, deb.BuildOptions{Compression: comp})
		if err != nil {
			t.Fatal(err)
		}
		b, _, _ := buildMap(t, fsys, deb.BuildOptions{Compression: comp})
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two builds of the same tree differ", comp)
		}
		c, _, _ := buildMap(t, fsys, deb.BuildOptions{Compression: comp, Mtime: time.Unix(1500000000, 0)})
		if bytes.Equal(a, c) {
			t.Errorf("%s: a different clamp time gave the same bytes", comp)
		}
	}
}

func TestBuildLevels(t *testing.T) {
	fsys := tree(map[string]string{"DEBIAN/control": goodControl})
	for _, c := range []struct {
		comp  deb.Compression
		level int
		ok    bool
	}{{deb.CompressGzip, 1, true}, {deb.CompressGzip, 10, false}, {deb.CompressXZ, 9, true}, {deb.CompressZstd, 19, true},
		{deb.CompressZstd, 20, false}, {deb.CompressNone, 3, false}} {
		_, _, err := buildMap(t, fsys, deb.BuildOptions{Compression: c.comp, Level: c.level})
		if (err == nil) != c.ok {
			t.Errorf("%s level %d: err = %v", c.comp, c.level, err)
		}
		if err != nil && !errors.Is(err, deb.ErrCompression) {
			t.Errorf("%s level %d: %v does not wrap ErrCompression", c.comp, c.level, err)
		}
	}
}
