package deb_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

var rdCompressions = []string{"xz", "gzip", "zstd", "none"}

// rdToolEnv is the environment real tools run in: UTC times, a UTF-8
// locale, no SOURCE_DATE_EPOCH.
var rdToolEnv = []string{"TZ=UTC", "LC_ALL=C.UTF-8", "PATH=" + os.Getenv("PATH")}

func rdRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, name), args...)
	cmd.Env = rdToolEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rdMakeTree writes a package tree with every kind of entry dpkg-deb takes
// from a directory: modes with special bits, links, odd names, a FIFO, a
// file large enough to stream, and distinct mtimes.
func rdMakeTree(t testing.TB, withFIFO bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	big := make([]byte, 300<<10)
	rand.Read(big)
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"DEBIAN/control", 0o644, []byte("Package: hi\nVersion: 1:1.2.3~rc1-2\nArchitecture: all\nMaintainer: Lamp Team <lamps@example.org>\nDepends: libc6 (>= 2.36)\nDescription: a test package\n It has a long description.\n .\n Over several lines.\n")},
		{"DEBIAN/postinst", 0o755, []byte("#!/bin/sh\nset -e\necho configured\n")},
		{"DEBIAN/prerm", 0o755, []byte("#!   /bin/bash -e\ntrue\n")},
		{"DEBIAN/conffiles", 0o644, []byte("/etc/hi.conf\n")},
		{"DEBIAN/templates", 0o644, []byte("no newline at the end")},
		{"etc/hi.conf", 0o644, []byte("answer=42\n")},
		{"opt/hi/bin/hi", os.ModeSetuid | 0o755, []byte("#!/bin/sh\necho hi\n")},
		{"opt/hi/lib/big.bin", 0o644, big},
		{"opt/hi/secret", 0o600, []byte("s")},
		{"opt/hi/odd", 0o604, nil},
		{"usr/share/doc/hi/ünï cöde\\name", 0o644, []byte("x")},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		rdMust(t, os.MkdirAll(filepath.Dir(p), 0o755))
		rdMust(t, os.WriteFile(p, f.data, 0o644))
		rdMust(t, os.Chmod(p, f.mode))
	}
	rdMust(t, os.MkdirAll(filepath.Join(root, "var/tmp-hi"), 0o755))
	rdMust(t, os.Chmod(filepath.Join(root, "var/tmp-hi"), os.ModeSticky|0o777))
	rdMust(t, os.MkdirAll(filepath.Join(root, "srv/shared"), 0o755))
	rdMust(t, os.Chmod(filepath.Join(root, "srv/shared"), os.ModeSetgid|0o775))
	rdMust(t, os.MkdirAll(filepath.Join(root, "empty"), 0o755))
	rdMust(t, os.Symlink("hi", filepath.Join(root, "opt/hi/bin/hello")))
	rdMust(t, os.Symlink("/etc/hi.conf", filepath.Join(root, "opt/hi/conf")))
	rdMust(t, os.Symlink("../../usr/share/doc", filepath.Join(root, "opt/hi/doc")))
	rdMust(t, os.Link(filepath.Join(root, "etc/hi.conf"), filepath.Join(root, "etc/hi.conf.hard")))
	if withFIFO {
		rdMust(t, syscall.Mkfifo(filepath.Join(root, "opt/hi/fifo"), 0o644))
	}
	// Distinct times, set deepest first so directory times stick.
	i := 0
	var paths []string
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { paths = append(paths, p); return nil })
	for k := len(paths) - 1; k >= 0; k-- {
		i++
		mt := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 97 * time.Minute)
		rdMust(t, rdLchtimes(paths[k], mt))
	}
	return root
}

func rdLchtimes(p string, t time.Time) error {
	ts := []syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil // dpkg-deb keeps them; times of links checked through extraction
	}
	return syscall.UtimesNano(p, ts)
}

func rdMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// rdBuildWithDpkg builds the test tree with the real dpkg-deb.
func rdBuildWithDpkg(t testing.TB, comp string) string {
	return rdBuildTree(t, rdMakeTree(t, false), comp)
}

func rdBuildTree(t testing.TB, tree, comp string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hi_"+comp+".deb")
	rdRun(t, "dpkg-deb", "--root-owner-group", "-Z"+comp, "--build", tree, out)
	return out
}

func TestContentsMatchesDpkg(t *testing.T) {
	testutil.Heavy(t, "builds packages in every compression and lists them with lampi-pkg and dpkg-deb")
	tree := rdMakeTree(t, true)
	for _, comp := range rdCompressions {
		t.Run(comp, func(t *testing.T) {
			pkg := rdBuildTree(t, tree, comp)
			want := rdRun(t, "dpkg-deb", "--contents", pkg)
			for _, seekable := range []bool{true, false} {
				f, err := os.Open(pkg)
				rdMust(t, err)
				defer f.Close()
				var r io.Reader = f
				if !seekable {
					r = rdPipe{f}
				}
				entries, err := deb.Contents(r)
				rdMust(t, err)
				var got bytes.Buffer
				cw := deb.NewContentsWriter(&got, time.UTC)
				for i := range entries {
					rdMust(t, cw.Write(&entries[i]))
				}
				if got.String() != want {
					t.Errorf("seekable=%v: listing differs from dpkg-deb --contents\n got:\n%s\nwant:\n%s", seekable, got.String(), want)
				}
			}
		})
	}
}

func TestInfoMatchesDpkg(t *testing.T) {
	testutil.Heavy(t, "builds packages in every compression and compares lampi-pkg info with dpkg-deb --info")
	tree := rdMakeTree(t, false)
	for _, comp := range rdCompressions {
		t.Run(comp, func(t *testing.T) {
			pkg := rdBuildTree(t, tree, comp)
			want := rdRun(t, "dpkg-deb", "--info", pkg)
			f, err := os.Open(pkg)
			rdMust(t, err)
			defer f.Close()
			info, err := deb.Inspect(rdPipe{f})
			rdMust(t, err)
			var got bytes.Buffer
			rdMust(t, info.WriteText(&got))
			if got.String() != want {
				t.Errorf("differs from dpkg-deb --info\n got:\n%s\nwant:\n%s", got.String(), want)
			}
			if v := info.Control.Paragraph.Get("version"); v != "1:1.2.3~rc1-2" {
				t.Errorf("Version = %q", v)
			}
			if _, err := deb.ParseVersion(info.Control.Paragraph.Get("Version")); err != nil {
				t.Errorf("ParseVersion: %v", err)
			}
			cf := info.Control.File("conffiles")
			if cf == nil || string(cf.Data) != "/etc/hi.conf\n" {
				t.Errorf("conffiles = %+v", cf)
			}
			if len(info.Members) != 3 || info.Members[2].Kind != deb.KindData || string(info.Members[2].Compression) != comp {
				t.Errorf("members = %+v", info.Members)
			}
			st, _ := os.Stat(pkg)
			if info.Size != st.Size() {
				t.Errorf("Size = %d, file has %d bytes", info.Size, st.Size())
			}
		})
	}
}

// TestReaderStreams reads the data of every entry through the streaming
// API and compares it with the tree.
func TestReaderStreams(t *testing.T) {
	tree := rdMakeTree(t, false)
	pkg := rdBuildTree(t, tree, "xz")
	f, err := os.Open(pkg)
	rdMust(t, err)
	defer f.Close()
	r, err := deb.NewReader(rdPipe{f})
	rdMust(t, err)
	defer r.Close()
	ctl, err := r.Control()
	rdMust(t, err)
	if ctl.Paragraph.Get("Package") != "hi" || !bytes.HasPrefix(ctl.Raw, []byte("Package: hi\n")) {
		t.Fatalf("control = %q", ctl.Raw)
	}
	files := 0
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		rdMust(t, err)
		if e.Type != deb.TypeFile {
			continue
		}
		got, err := io.ReadAll(r)
		rdMust(t, err)
		want, err := os.ReadFile(filepath.Join(tree, e.Name))
		rdMust(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", e.Name)
		}
		files++
	}
	if files < 5 {
		t.Errorf("only %d files read", files)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
}

// FuzzReader feeds arbitrary bytes through the whole reader: no panic, no
// unbounded allocation, every error wraps a sentinel.
func FuzzReader(f *testing.F) {
	small := filepath.Join(f.TempDir(), "small")
	rdMust(f, os.MkdirAll(filepath.Join(small, "DEBIAN"), 0o755))
	rdMust(f, os.MkdirAll(filepath.Join(small, "etc"), 0o755))
	rdMust(f, os.WriteFile(filepath.Join(small, "DEBIAN/control"), []byte(rdControl), 0o644))
	rdMust(f, os.WriteFile(filepath.Join(small, "DEBIAN/postinst"), []byte("#!/bin/sh\n"), 0o755))
	rdMust(f, os.WriteFile(filepath.Join(small, "etc/hi.conf"), []byte("x=1\n"), 0o644))
	rdMust(f, os.Symlink("hi.conf", filepath.Join(small, "etc/link")))
	for _, comp := range rdCompressions {
		raw, err := os.ReadFile(rdBuildTree(f, small, comp))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add(rdDeb(f, rdDir("./"), rdFile("./a", "hello"), rdSym("./l", "a"), rdLink("./h", "./a")))
	f.Add([]byte("!<arch>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := deb.NewReader(bytes.NewReader(data))
		if err != nil {
			rdCheckSentinel(t, err)
			return
		}
		defer r.Close()
		if _, err := r.Control(); err != nil {
			rdCheckSentinel(t, err)
			return
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				rdCheckSentinel(t, err)
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				rdCheckSentinel(t, err)
				return
			}
		}
	})
}

func rdCheckSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range []error{deb.ErrNotDeb, deb.ErrTruncated, deb.ErrCompression, deb.ErrCorrupt, deb.ErrTooLarge, deb.ErrSyntax, deb.ErrUnsafePath} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Errorf("error wraps no sentinel: %v", err)
}
