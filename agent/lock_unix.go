//go:build unix

package agent

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockFree probes dpkg's locks (ADMINDIR/lock-frontend, then ADMINDIR/lock)
// the way dpkg and apt take them (fcntl write locks) and releases them at
// once: true when nobody holds them right now.
func lockFree(adminDir string) (bool, error) {
	for _, name := range []string{"lock-frontend", "lock"} {
		f, err := os.OpenFile(filepath.Join(adminDir, name), os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			return false, err
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if err == nil {
			lk.Type = unix.F_UNLCK
			unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		}
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}
