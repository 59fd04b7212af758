//go:build unix

package repo

import (
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// Small package files are read and written with plain system calls: the
// os package registers every descriptor with the runtime poller (four
// fcntl and one epoll_ctl per file), which dominates importing thousands
// of small packages.

// readSmall reads a regular file of at most max bytes. It returns
// (nil, size, nil) when the file is larger, and an error wrapping
// ErrBadPackage when it is not a regular file.
func readSmall(path string, max int64) ([]byte, int64, error) {
	fd, err := rawOpen(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer rawClose(fd)
	var st syscall.Stat_t
	if err := rawFstat(fd, &st); err != nil {
		return nil, 0, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, 0, fmt.Errorf("%s: %w: not a regular file", path, ErrBadPackage)
	}
	if st.Size > max {
		return nil, st.Size, nil
	}
	// Read exactly the size fstat gave (one read for a small file); bytes
	// appended meanwhile are not read, and what was read is what is
	// hashed and published.
	buf := make([]byte, st.Size)
	n := 0
	for n < len(buf) {
		k, err := rawRead(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, 0, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if k == 0 {
			break
		}
		n += k
	}
	return buf[:n], st.Size, nil
}

// writeNew creates path (which must not exist) with data, mode 0644.
func writeNew(path string, data []byte) error {
	fd, err := rawOpen(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	for len(data) > 0 {
		k, err := rawWrite(fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			rawClose(fd)
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[k:]
	}
	if err := rawClose(fd); err != nil {
		return &fs.PathError{Op: "close", Path: path, Err: err}
	}
	return nil
}

// touchNow sets the modification time of path to the file system's
// current time (utimensat with no times).
func touchNow(path string) error {
	if err := unix.Utimes(path, nil); err != nil {
		return &fs.PathError{Op: "utimes", Path: path, Err: err}
	}
	return nil
}
