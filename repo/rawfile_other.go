//go:build !unix

package repo

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// readSmall reads a regular file of at most max bytes; see the unix
// version.
func readSmall(path string, max int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %w: not a regular file", path, ErrBadPackage)
	}
	if st.Size() > max {
		return nil, st.Size(), nil
	}
	data, err := io.ReadAll(io.LimitReader(f, st.Size()+1))
	if err == nil && int64(len(data)) > st.Size() {
		err = fmt.Errorf("read %s: the file grew while being read", path)
	}
	return data, st.Size(), err
}

// writeNew creates path (which must not exist) with data, mode 0644.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// touchNow would set the modification time of path to the file system's
// current time; without utimensat there is no clock-free way to ask for
// it (publishing needs flock(2) anyway, which such systems lack).
func touchNow(path string) error {
	return &os.PathError{Op: "utimes", Path: path, Err: errors.ErrUnsupported}
}
