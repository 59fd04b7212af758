//go:build unix

package localfs

import (
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func readSmallRaw(path string, max int64) ([]byte, int64, error) {
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
		return nil, 0, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if st.Size > max {
		return nil, st.Size, nil
	}
	// Exactly the size fstat gave: one read for a small file.
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

func writeNewRaw(path string, data []byte) error {
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

// TouchNow sets the modification time of path to the file system's
// current time (utimensat with no times), through the ordinary
// system-call path.
func TouchNow(path string) error {
	if err := unix.Utimes(path, nil); err != nil {
		return &fs.PathError{Op: "utimes", Path: path, Err: err}
	}
	return nil
}
