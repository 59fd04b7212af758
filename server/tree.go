package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// tree is a directory files are served from: nothing outside it can be
// opened through it, whatever the name or the symbolic links inside. It
// stays open while it is the directory at its path (see
// fileServer.revalidate) and while requests use it.
type tree struct {
	root *os.Root
	fast fastDir     // Linux: openat2(RESOLVE_BENEATH) on a directory fd
	info fs.FileInfo // the directory opened
	refs atomic.Int64
}

// openTree opens dir; both handles are checked to be the same directory
// (dir was not replaced between the two opens).
func openTree(dir string) (*tree, error) {
	for range 3 {
		r, err := os.OpenRoot(dir)
		if err != nil {
			return nil, err
		}
		info, err := r.Stat(".")
		if err != nil {
			r.Close()
			return nil, err
		}
		fast := openFastDir(dir)
		if fast.is(info) {
			t := &tree{root: r, fast: fast, info: info}
			t.refs.Store(1) // the fileServer's reference
			return t, nil
		}
		fast.close()
		r.Close()
	}
	return nil, errors.New("open " + dir + ": it keeps being replaced")
}

// acquire takes a reference for one open; false once the tree is closed.
func (t *tree) acquire() bool {
	for {
		n := t.refs.Load()
		if n <= 0 {
			return false
		}
		if t.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one closes the directory.
func (t *tree) release() {
	if t.refs.Add(-1) == 0 {
		t.fast.close()
		t.root.Close()
	}
}

// open opens name (slash-separated, relative) for reading; the caller
// holds a reference.
func (t *tree) open(name string) (*os.File, error) {
	if f, ok, err := t.fast.open(name); ok {
		return f, err
	}
	return openNoWait(t.root, name)
}

// openNoWait opens name in r for reading with O_NONBLOCK: a FIFO opens
// at once rather than waiting for a writer (with an OS thread pinned);
// the caller refuses it, as anything else that is not a regular file.
func openNoWait(r *os.Root, name string) (*os.File, error) {
	return r.OpenFile(name, os.O_RDONLY|noBlock, 0)
}

// lookups adds to dirs the directories the kernel looks p up through,
// each with the entries it looks up there, following symbolic links as
// path resolution does: replacing any of those entries changes what p
// is. A missing entry ends the walk (its directory is listed: the entry
// appearing is a change too).
func lookups(p string, dirs map[string][]string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	dir, rest := "/", strings.Split(strings.TrimPrefix(abs, "/"), "/")
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir) // dir has no links: ".." is lexical
			continue
		}
		if !slices.Contains(dirs[dir], name) {
			dirs[dir] = append(dirs[dir], name)
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		if err != nil {
			return nil
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			dir = next
			continue
		}
		if links++; links > 40 {
			return fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil
		}
		if filepath.IsAbs(target) {
			dir = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return nil
}
