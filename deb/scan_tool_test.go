package deb_test

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// TestBuildLeavesOutToolFiles: the configuration of git and bumpversion at
// the top of a tree is not packaged (dpkg would install /.bumpversion.cfg,
// /.git/…), with a warning each; deeper down the same names are packaged.
// The package is byte for byte the one built without them, even when they
// are the newest files of the tree (a bump writes .bumpversion.cfg).
func TestBuildLeavesOutToolFiles(t *testing.T) {
	files := map[string]string{"DEBIAN/control": goodControl, "opt/hi/hi": "#!/bin/sh\necho hi\n",
		"opt/hi/setup.cfg": "[x]\n", "opt/hi/.gitignore": "*.pyc\n"}
	plain := tree(files)
	withTools := tree(files)
	newer := time.Unix(1700000000, 0)
	for name, data := range map[string]string{".bumpversion.cfg": "[bumpversion]\ncurrent_version = 0.1\n",
		"setup.cfg": "[bumpversion]\n", ".gitignore": "*.deb\n", ".git/HEAD": "ref: refs/heads/main\n", ".git/objects/ab/cdef": "x"} {
		withTools[name] = &fstest.MapFile{Data: []byte(data), Mode: 0o644, ModTime: newer}
	}
	withTools[".git"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: newer}
	withTools[".git/objects"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: newer}
	withTools[".git/objects/ab"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755, ModTime: newer}

	want, _, err := buildMap(t, plain, deb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, res, err := buildMap(t, withTools, deb.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the package with tool files at the top differs from the one without them")
	}
	var warned []string
	for _, w := range res.Warnings {
		if strings.Contains(w.Msg, "left out of the package") {
			warned = append(warned, w.File)
		}
	}
	if strings.Join(warned, " ") != ".bumpversion.cfg .git .gitignore setup.cfg" {
		t.Errorf("warnings for %v; want .bumpversion.cfg .git .gitignore setup.cfg (all: %v)", warned, res.Warnings)
	}
	list, err := deb.Contents(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, e := range list {
		entries = append(entries, e.Name)
	}
	names := strings.Join(entries, " ")
	for _, must := range []string{"./opt/hi/setup.cfg", "./opt/hi/.gitignore"} {
		if !strings.Contains(names, must) {
			t.Errorf("%s is deeper than the top and must be packaged; entries: %s", must, names)
		}
	}
	for _, e := range entries {
		switch {
		case e == "./.bumpversion.cfg", e == "./setup.cfg", e == "./.gitignore", strings.HasPrefix(e, "./.git/"):
			t.Errorf("%s was packaged", e)
		}
	}
}
