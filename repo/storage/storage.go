package storage

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
)

// Storage is where the published tree lives: pool/ and dists/, under
// slash-separated names relative to its root ("pool/main/h/hi/hi_0.1_all.deb",
// "dists/stable/InRelease"). The repository writes through it only, so a
// local directory ([DirStorage]) and object storage are equal
// implementations.
//
// Every write must be atomic per name: a reader sees the old content or
// the new, never a mix or a truncated file. A write that replaces a name
// under dists/ outside by-hash/ — InRelease, Release, Release.gpg, the
// indices by name: what apt fetches by name and revalidates with
// If-Modified-Since — must give it a modification time (a file's mtime,
// an object's Last-Modified) strictly later, in whole seconds, than the
// content it replaces, waiting for the storage's clock if need be (see
// dates.go).
type Storage interface {
	// WriteFile creates or replaces name with data.
	WriteFile(ctx context.Context, name string, data []byte) error
	// PutFile creates or replaces name with the content of the local
	// file src, which the storage may move (src is gone afterwards).
	PutFile(ctx context.Context, name, src string) error
	// Copy creates or replaces dst with the content of src (a hard link
	// or server-side copy; no data needs to pass through the caller).
	Copy(ctx context.Context, src, dst string) error
	// Open opens name for reading; a missing name gives an error
	// matching fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Exists reports whether name exists.
	Exists(ctx context.Context, name string) (bool, error)
	// Remove deletes name; a missing name is not an error.
	Remove(ctx context.Context, name string) error
	// List returns the names of all files under dir, recursively.
	List(ctx context.Context, dir string) ([]string, error)
	// Sync makes everything written so far durable.
	Sync(ctx context.Context) error
}

// checkName makes sure name is a clean relative slash-separated path
// inside the storage's root.
func checkName(name string) error {
	clean := path.Clean(name)
	if name == "" || path.IsAbs(name) || clean != name || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("storage: %w %q", ErrInvalidName, name)
	}
	return nil
}
