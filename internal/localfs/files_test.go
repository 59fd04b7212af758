package localfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFilesBothWays: raw system calls and the os package read, create
// and make directories alike: the same bytes, sizes and errors.
func TestFilesBothWays(t *testing.T) {
	for _, f := range []Files{{Plain: false}, {Plain: true}} {
		name := "raw"
		if f.Plain {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			sub := filepath.Join(dir, "pool")
			if err := f.Mkdir(sub); err != nil {
				t.Fatalf("mkdir: %v", err)
			}
			if err := f.Mkdir(sub); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("mkdir again: %v, want fs.ErrExist", err)
			}
			if err := f.Mkdir(filepath.Join(dir, "no", "parent")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("mkdir without parent: %v, want fs.ErrNotExist", err)
			}
			data := bytes.Repeat([]byte("lampi\n"), 1000)
			p := filepath.Join(sub, "hi.deb")
			if err := f.WriteNew(p, data); err != nil {
				t.Fatalf("write: %v", err)
			}
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o644&^umask(t) {
				t.Fatalf("written file: %v %v", st, err)
			}
			if err := f.WriteNew(p, []byte("x")); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("write over an existing file: %v, want fs.ErrExist", err)
			}
			if err := f.WriteNew(filepath.Join(dir, "gone", "x"), data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("write into a missing directory: %v, want fs.ErrNotExist", err)
			}
			got, size, err := f.ReadSmall(p, 1<<20)
			if err != nil || size != int64(len(data)) || !bytes.Equal(got, data) {
				t.Fatalf("read: %d bytes, size %d, %v", len(got), size, err)
			}
			got, size, err = f.ReadSmall(p, 100)
			if err != nil || got != nil || size != int64(len(data)) {
				t.Fatalf("read of a larger file: %v, %d, %v; want nil and its size", got, size, err)
			}
			empty := filepath.Join(sub, "empty")
			if err := f.WriteNew(empty, nil); err != nil {
				t.Fatal(err)
			}
			if got, size, err := f.ReadSmall(empty, 100); err != nil || len(got) != 0 || got == nil || size != 0 {
				t.Fatalf("read of an empty file: %v, %d, %v", got, size, err)
			}
			if _, _, err := f.ReadSmall(sub, 100); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("read of a directory: %v, want ErrNotRegular", err)
			}
			if _, _, err := f.ReadSmall(filepath.Join(dir, "missing"), 100); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("read of a missing file: %v, want fs.ErrNotExist", err)
			}
		})
	}
}

// umask returns the process's umask (which WriteNew's mode passes
// through), read back from a file created with 0777.
func umask(t *testing.T) fs.FileMode {
	p := filepath.Join(t.TempDir(), "m")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ st.Mode().Perm()
}
