package localfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Files makes the small-file operations of a batch. The zero value makes
// them as raw system calls (local file systems only); with Plain set they
// go through the os package. Both behave the same otherwise.
type Files struct {
	// Plain uses the os package instead of raw system calls: for a
	// network file system (see the package documentation).
	Plain bool
}

// ReadSmall reads a regular file of at most max bytes. It returns
// (nil, size, nil) when the file is larger, and an error wrapping
// ErrNotRegular when it is not a regular file. It reads exactly the size
// the file had when opened: bytes appended meanwhile are not read, so
// what was read is what is hashed and published.
func (f Files) ReadSmall(path string, max int64) ([]byte, int64, error) {
	if f.Plain {
		return readSmallPlain(path, max)
	}
	return readSmallRaw(path, max)
}

// WriteNew creates path, which must not exist (else an error matching
// fs.ErrExist), with data and mode 0644; its directory must exist (else
// an error matching fs.ErrNotExist).
func (f Files) WriteNew(path string, data []byte) error {
	if f.Plain {
		return writeNewPlain(path, data)
	}
	return writeNewRaw(path, data)
}

// Mkdir is os.Mkdir(dir, 0755): one call when the parent exists.
func (f Files) Mkdir(dir string) error {
	if f.Plain {
		return os.Mkdir(dir, 0o755)
	}
	return rawMkdir(dir)
}

func readSmallPlain(path string, max int64) ([]byte, int64, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	if st.Size() > max {
		return nil, st.Size(), nil
	}
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(fd, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, 0, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	return buf[:n], st.Size(), nil
}

func writeNewPlain(path string, data []byte) error {
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = fd.Write(data)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}
