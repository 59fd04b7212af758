package server

import (
	"os"
)

// tree is a directory files are served from: nothing outside it can be
// opened through it, whatever the name or the symbolic links inside.
type tree struct {
	root *os.Root
	fast fastDir // Linux: openat2(RESOLVE_BENEATH) on a directory fd
}

func openTree(dir string) (*tree, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &tree{root: r, fast: openFastDir(dir)}, nil
}

// open opens name (slash-separated, relative) for reading.
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

func (t *tree) close() {
	t.fast.close()
	t.root.Close()
}
