// Package atomicfile replaces files so that a reader, or the file system
// after a crash or power cut, sees either the whole old file or the whole
// new one, never a mix or a truncated file.
//
// The content goes to a temporary file in the target's directory; Commit
// sets its mode, fsyncs it, closes it, renames it over the target and
// fsyncs the directory, so the rename itself survives a power cut. Until
// Commit, the target is untouched; Abort (safe to defer) removes the
// temporary file, so a failed write leaves nothing behind.
//
// Temporary files start with a dot, so directory listings and the
// repository's file server skip them.
//
// It is a leaf package: it imports nothing of lampi-pkg, so the agent, the
// signing code and the CLI share it.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File is a temporary file that becomes its target on Commit. Write to it
// as to an *os.File.
type File struct {
	*os.File
	dir  string
	done bool
}

// Create creates a temporary file in dir, named from pattern as
// os.CreateTemp does (the pattern should start with a dot). The file has
// mode 0600 until Commit.
func Create(dir, pattern string) (*File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &File{File: f, dir: filepath.Clean(dir)}, nil
}

// Commit gives the temporary file mode perm, flushes it to disk, and
// renames it to name, which must be in the directory given to Create; then
// it flushes the directory. On an error before the rename the temporary
// file is removed and name is untouched. Calling Commit or Abort again
// after a Commit does nothing.
func (f *File) Commit(name string, perm fs.FileMode) error {
	if f.done {
		return nil
	}
	if d := filepath.Dir(filepath.Clean(name)); d != f.dir {
		f.Abort()
		return fmt.Errorf("atomicfile: %s is not in %s, the directory of its temporary file", name, f.dir)
	}
	err := errors.Join(f.Chmod(perm), f.Sync())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		f.Abort()
		return err
	}
	f.done = true
	return syncDir(f.dir)
}

// Abort closes and removes the temporary file unless it was committed. It
// is meant to be deferred right after Create.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile replaces name with data, mode perm, as described in the
// package comment. The directory must exist.
func WriteFile(name string, data []byte, perm fs.FileMode) error {
	f, err := Create(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit(name, perm)
}

// syncDir makes a rename in dir durable. File systems that cannot sync a
// directory (EINVAL, ENOTSUP) are not an error: there is nothing more to do.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}
