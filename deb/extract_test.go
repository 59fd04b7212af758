package deb_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// rdSnapshot describes every entry under dir, one line each: type, mode,
// owner (when asked, else without setuid/setgid bits), size, content hash,
// link target, mtime, link count.
func rdSnapshot(t *testing.T, dir string, owners bool, skip func(rel string) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if skip != nil && skip(rel) {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		if !owners {
			// Without root, tar keeps setuid/setgid bits and we drop them.
			mode &^= fs.ModeSetuid | fs.ModeSetgid
		}
		desc := fmt.Sprintf("%v size=%d mtime=%d nlink=%d", mode, fi.Size(), fi.ModTime().UnixNano(), st.Nlink)
		if fi.IsDir() {
			desc = fmt.Sprintf("%v mtime=%d", mode, fi.ModTime().UnixNano())
		}
		if owners {
			desc += fmt.Sprintf(" owner=%d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" sha256=%x", sha256.Sum256(data))
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rdCompareTrees(t *testing.T, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s:\n got: %s\nwant: %s", k, got[k], want[k])
		}
	}
}

func rdExtractFile(t *testing.T, pkg, dir string, opts deb.ExtractOptions) error {
	t.Helper()
	f, err := os.Open(pkg)
	rdMust(t, err)
	defer f.Close()
	return deb.Extract(context.Background(), f, dir, opts)
}

// TestExtractMatchesDpkg extracts the same packages with dpkg-deb
// --extract (and --raw-extract for the control files) and compares every
// file's type, mode, size, content, link target, mtime and link count, and
// owner when running as root.
func TestExtractMatchesDpkg(t *testing.T) {
	testutil.Heavy(t, "builds packages in every compression and extracts them with lampi-pkg and dpkg-deb")
	root := os.Geteuid() == 0
	tree := rdMakeTree(t, false)
	for _, comp := range rdCompressions {
		t.Run(comp, func(t *testing.T) {
			pkg := rdBuildTree(t, tree, comp)
			want, got := filepath.Join(t.TempDir(), "dpkg"), filepath.Join(t.TempDir(), "ours")
			rdRun(t, "dpkg-deb", "--extract", pkg, want)
			rdMust(t, rdExtractFile(t, pkg, got, deb.ExtractOptions{PreserveOwner: root}))
			rdCompareTrees(t, rdDirTimesAside(t, rdSnapshot(t, got, root, nil), got, pkg), rdDirTimesAside(t, rdSnapshot(t, want, root, nil), want, nil))

			wantRaw, gotRaw := filepath.Join(t.TempDir(), "dpkg"), filepath.Join(t.TempDir(), "ours")
			rdRun(t, "dpkg-deb", "--raw-extract", pkg, wantRaw)
			rdMust(t, rdExtractFile(t, pkg, gotRaw, deb.ExtractOptions{PreserveOwner: root, Control: true}))
			// dpkg-deb gives DEBIAN the control tarball's "./" times; we do not.
			skip := func(rel string) bool { return rel == "DEBIAN" || rel == "." }
			rdCompareTrees(t, rdDirTimesAside(t, rdSnapshot(t, gotRaw, root, skip), gotRaw, pkg), rdDirTimesAside(t, rdSnapshot(t, wantRaw, root, skip), wantRaw, nil))
		})
	}
}

// rdDirTimesAside removes the mtime of directories that hold a symbolic
// link from a snapshot. GNU tar (under dpkg-deb) creates such links after
// restoring their directory's time, which leaves the extraction time there;
// we keep the archive's. With pkg set, it checks that every directory of
// dir has the archive's time.
func rdDirTimesAside(t *testing.T, snap map[string]string, dir string, pkg any) map[string]string {
	t.Helper()
	for rel, desc := range snap {
		if strings.Contains(desc, " -> ") {
			parent := filepath.Dir(rel)
			snap[parent] = rdMtime.ReplaceAllString(snap[parent], "")
		}
	}
	if p, ok := pkg.(string); ok {
		f, err := os.Open(p)
		rdMust(t, err)
		defer f.Close()
		entries, err := deb.Contents(f)
		rdMust(t, err)
		for _, e := range entries {
			if e.Type != deb.TypeDir {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, e.Name))
			rdMust(t, err)
			if !fi.ModTime().Equal(e.ModTime) {
				t.Errorf("%s: mtime %v, archive says %v", e.Name, fi.ModTime(), e.ModTime)
			}
		}
	}
	return snap
}

var rdMtime = regexp.MustCompile(` mtime=\d+`)

func TestExtractWithoutOwnerDropsSetuid(t *testing.T) {
	pkg := rdBuildWithDpkg(t, "gzip")
	dir := t.TempDir()
	rdMust(t, rdExtractFile(t, pkg, dir, deb.ExtractOptions{}))
	fi, err := os.Stat(filepath.Join(dir, "opt/hi/bin/hi"))
	rdMust(t, err)
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, want -rwxr-xr-x", fi.Mode())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() {
		t.Errorf("owner %d, want the caller %d", st.Uid, os.Geteuid())
	}
	if fi, _ := os.Stat(filepath.Join(dir, "var/tmp-hi")); fi.Mode()&fs.ModeSticky == 0 {
		t.Errorf("sticky bit lost: %v", fi.Mode())
	}
}

func TestExtractSpecialFiles(t *testing.T) {
	fifo := rdEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "./run/fifo", Mode: 0o644, ModTime: rdEpoch}}
	dev := rdEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: rdEpoch}}
	pkg := rdDeb(t, rdDir("./"), rdDir("./dev/"), dev, rdDir("./run/"), fifo, rdFile("./ok", "fine"))
	err := deb.Extract(context.Background(), bytes.NewReader(pkg), t.TempDir(), deb.ExtractOptions{})
	if !errors.Is(err, deb.ErrSpecialFile) || !strings.Contains(err.Error(), "entry ./dev/null") || !strings.Contains(err.Error(), "character device") {
		t.Errorf("err = %v, want ErrSpecialFile naming ./dev/null", err)
	}
	dir := t.TempDir()
	var skipped, written []string
	opts := deb.ExtractOptions{SkipSpecial: true,
		OnSkip:  func(e *deb.Entry) { skipped = append(skipped, e.Name) },
		OnEntry: func(e *deb.Entry) { written = append(written, e.Name) }}
	rdMust(t, deb.Extract(context.Background(), bytes.NewReader(pkg), dir, opts))
	if fmt.Sprint(skipped) != "[./dev/null ./run/fifo]" || len(written) != 4 {
		t.Errorf("skipped %v, written %v", skipped, written)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dev/null")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("device node created: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ok")); string(b) != "fine" {
		t.Errorf("ok = %q", b)
	}
}

func TestExtractCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, err := os.Open(rdBuildWithDpkg(t, "xz"))
	rdMust(t, err)
	defer f.Close()
	if err := deb.Extract(ctx, f, t.TempDir(), deb.ExtractOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestExtractHostile runs crafted archives against a destination whose
// parent holds a victim file and directory: each must fail with the right
// error naming the entry, and nothing may appear or change outside it.
func TestExtractHostile(t *testing.T) {
	tests := []struct {
		name    string
		entries func(parent string) []rdEntry
		pre     func(t *testing.T, parent, out string)
		want    error
		message string
	}{
		{"dotdot", func(string) []rdEntry { return []rdEntry{rdFile("../victim", "pwned")} }, nil, deb.ErrUnsafePath, `entry ../victim: unsafe path in archive: path contains ".."`},
		{"dotdot inside", func(string) []rdEntry { return []rdEntry{rdDir("./a/"), rdFile("./a/../../victim", "pwned")} }, nil, deb.ErrUnsafePath, "entry ./a/../../victim"},
		{"absolute", func(p string) []rdEntry { return []rdEntry{rdFile(filepath.Join(p, "victim"), "pwned")} }, nil, deb.ErrUnsafePath, "absolute path"},
		{"write through absolute symlink", func(p string) []rdEntry {
			return []rdEntry{rdSym("./link", filepath.Join(p, "victimdir")), rdFile("./link/planted", "pwned")}
		}, nil, deb.ErrUnsafePath, "entry ./link/planted: unsafe path in archive: its parent link is a symbolic link"},
		{"write through relative symlink", func(string) []rdEntry {
			return []rdEntry{rdDir("./d/"), rdSym("./d/up", ".."), rdFile("./d/up/x", "pwned")}
		}, nil, deb.ErrUnsafePath, "its parent d/up is a symbolic link"},
		{"symlink chain", func(string) []rdEntry {
			return []rdEntry{rdSym("./b", "."), rdSym("./a", "b/.."), rdFile("./a/victim", "pwned")}
		}, nil, deb.ErrUnsafePath, "its parent a is a symbolic link"},
		{"relative symlink escapes", func(string) []rdEntry { return []rdEntry{rdDir("./d/"), rdSym("./d/link", "../../victim")} }, nil, deb.ErrUnsafePath, "entry ./d/link: unsafe path in archive: symbolic link to ../../victim points outside"},
		{"symlink then file over it", func(p string) []rdEntry {
			return []rdEntry{rdSym("./link", filepath.Join(p, "victim")), rdFile("./link", "pwned")}
		}, nil, deb.ErrUnsafePath, "appears twice"},
		{"hard link absolute", func(p string) []rdEntry { return []rdEntry{rdLink("./h", filepath.Join(p, "victim"))} }, nil, deb.ErrUnsafePath, "hard link target"},
		{"hard link dotdot", func(string) []rdEntry { return []rdEntry{rdLink("./h", "../victim")} }, nil, deb.ErrUnsafePath, `hard link target ../victim`},
		{"hard link through symlink", func(p string) []rdEntry {
			return []rdEntry{rdSym("./l", p), rdLink("./h", "./l/victim")}
		}, nil, deb.ErrUnsafePath, "not a regular file extracted earlier"},
		{"hard link to symlink", func(p string) []rdEntry {
			return []rdEntry{rdSym("./l", filepath.Join(p, "victim")), rdLink("./h", "./l")}
		}, nil, deb.ErrUnsafePath, "not a regular file extracted earlier"},
		{"duplicate file", func(string) []rdEntry { return []rdEntry{rdFile("./a", "1"), rdFile("a", "2")} }, nil, deb.ErrUnsafePath, "entry a: unsafe path in archive: a appears twice"},
		{"dir then file", func(string) []rdEntry { return []rdEntry{rdDir("./a/"), rdFile("./a", "2")} }, nil, deb.ErrUnsafePath, "appears twice"},
		{"root is a file", func(string) []rdEntry { return []rdEntry{rdFile(".", "x")} }, nil, deb.ErrUnsafePath, "archive root"},
		{"pre-existing symlink in destination", func(string) []rdEntry { return []rdEntry{rdFile("./pre/x", "pwned")} },
			func(t *testing.T, parent, out string) {
				rdMust(t, os.MkdirAll(out, 0o755))
				rdMust(t, os.Symlink(filepath.Join(parent, "victimdir"), filepath.Join(out, "pre")))
			}, deb.ErrUnsafePath, "its parent pre is a symbolic link"},
		{"device node", func(string) []rdEntry {
			return []rdEntry{{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "./sda", Mode: 0o666, Devmajor: 8}}}
		}, nil, deb.ErrSpecialFile, "entry ./sda"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			rdMust(t, os.WriteFile(filepath.Join(parent, "victim"), []byte("original"), 0o644))
			rdMust(t, os.Mkdir(filepath.Join(parent, "victimdir"), 0o755))
			out := filepath.Join(parent, "out")
			if tc.pre != nil {
				tc.pre(t, parent, out)
			}
			outside := func(rel string) bool { return rel == "." || rel == "out" || strings.HasPrefix(rel, "out/") }
			before := rdSnapshot(t, parent, false, outside)
			pkg := rdDeb(t, tc.entries(parent)...)
			err := deb.Extract(context.Background(), bytes.NewReader(pkg), out, deb.ExtractOptions{})
			t.Log(err)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("err = %v\nwant %v containing %q", err, tc.want, tc.message)
			}
			if err != nil && !strings.Contains(err.Error(), "member data.tar: entry ") {
				t.Errorf("error does not name the member: %v", err)
			}
			after := rdSnapshot(t, parent, false, outside)
			rdCompareTrees(t, after, before)
		})
	}
}

// FuzzExtract extracts arbitrary archives into a directory inside a
// sentinel parent: nothing may appear outside it.
func FuzzExtract(f *testing.F) {
	f.Add(rdDeb(f, rdDir("./"), rdFile("./a", "x"), rdSym("./l", "/tmp"), rdFile("./l/x", "y")))
	f.Add(rdDeb(f, rdSym("./l", ".."), rdLink("./h", "./l/a"), rdFile("../x", "y")))
	f.Add(rdDeb(f, rdDir("./d/"), rdSym("./d/s", "../.."), rdFile("./d/s/z", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		_ = deb.Extract(context.Background(), bytes.NewReader(data), out, deb.ExtractOptions{SkipSpecial: true})
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "out" {
				t.Fatalf("extraction wrote %s outside its destination", e.Name())
			}
		}
		// Make everything removable for t.TempDir's cleanup.
		filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}
