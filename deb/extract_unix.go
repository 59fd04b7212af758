//go:build unix

package deb

import (
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// lchtimes sets the modification time of the symbolic link name itself,
// relative to its parent directory opened inside root, without following
// the link (os.Root has no Lchtimes).
func lchtimes(root *os.Root, name string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.UtimesNanoAt(int(d.Fd()), path.Base(name), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lutimes", Path: name, Err: err}
	}
	return nil
}
