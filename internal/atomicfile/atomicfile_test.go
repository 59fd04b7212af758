package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries lists dir's names, so a test can see a leftover temporary file.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileReplacesAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "state.json")
	if err := os.WriteFile(name, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []fs.FileMode{0o600, 0o755, 0o644} {
		if err := WriteFile(name, []byte("new "+perm.String()), perm); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("mode %v, want %v", st.Mode().Perm(), perm)
		}
		if b, _ := os.ReadFile(name); string(b) != "new "+perm.String() {
			t.Errorf("content %q", b)
		}
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "state.json" {
		t.Errorf("directory holds %v, want only state.json", got)
	}
}

// failingReader hands out some bytes, then fails: a download or a build
// that breaks halfway.
type failingReader struct{ n int }

var errMidway = errors.New("broken midway")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errMidway
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestFailedWriteLeavesOldFileAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "pkg.deb")
	if err := os.WriteFile(name, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func() error {
		f, err := Create(dir, ".pkg.deb.*.tmp")
		if err != nil {
			return err
		}
		defer f.Abort()
		if _, err := io.Copy(f, &failingReader{n: 1 << 20}); err != nil {
			return err
		}
		return f.Commit(name, 0o644)
	}
	if err := write(); !errors.Is(err, errMidway) {
		t.Fatalf("write: %v, want the reader's error", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "old content" {
		t.Errorf("old file now holds %d bytes, want it intact", len(b))
	}
	if got := entries(t, dir); len(got) != 1 {
		t.Errorf("directory holds %v, want only pkg.deb (temporary file left behind)", got)
	}
}

func TestCommitFailureRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should go: the rename fails.
	target := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("data"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		t.Errorf("target changed: %v %v", st, err)
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "target" {
		t.Errorf("directory holds %v, want only target", got)
	}
}

func TestCommitOutsideDirRefused(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	f, err := Create(dir, ".x.*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	err = f.Commit(filepath.Join(other, "x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "not in") {
		t.Fatalf("Commit into another directory: %v", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("temporary file left behind: %v", got)
	}
	if _, err := os.Stat(filepath.Join(other, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file appeared in the other directory: %v", err)
	}
}

func TestAbortAfterCommitKeepsFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "k")
	f, err := Create(dir, ".k.*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("key"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(name, 0o600); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if b, err := os.ReadFile(name); err != nil || string(b) != "key" {
		t.Fatalf("after Abort: %q %v", b, err)
	}
}
