//go:build !unix

package localfs

import (
	"errors"
	"os"
)

// Without raw system calls the raw operations are the plain ones.

func readSmallRaw(path string, max int64) ([]byte, int64, error) { return readSmallPlain(path, max) }
func writeNewRaw(path string, data []byte) error                 { return writeNewPlain(path, data) }
func rawMkdir(dir string) error                                  { return os.Mkdir(dir, 0o755) }

// TouchNow would set the modification time of path to the file system's
// current time; without utimensat there is no clock-free way to ask for
// it (publishing needs flock(2) anyway, which such systems lack).
func TouchNow(path string) error {
	return &os.PathError{Op: "utimes", Path: path, Err: errors.ErrUnsupported}
}
