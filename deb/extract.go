package deb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/ctxio"
)

// ErrSpecialFile: the data member holds a device node or a FIFO, which
// Extract never creates.
var ErrSpecialFile = errors.New("special file not extracted")

// ExtractOptions tunes Extract.
type ExtractOptions struct {
	// Control also writes the control tarball's files to DIR/DEBIAN, as
	// "dpkg-deb --raw-extract" does.
	Control bool
	// PreserveOwner gives files the archive's numeric owner and group and
	// keeps their setuid and setgid bits, as tar does when run by root.
	// Without it files belong to the caller and setuid/setgid bits are
	// dropped (a setuid file owned by the wrong user is a hazard).
	PreserveOwner bool
	// SkipSpecial skips device nodes and FIFOs instead of failing with
	// ErrSpecialFile; OnSkip, if set, is told about each one.
	SkipSpecial bool
	OnSkip      func(e *Entry)
	// OnEntry, if set, is called after each data entry has been written.
	OnEntry func(e *Entry)
}

// Extract writes the payload (data member) of the .deb read from r into
// dir, creating dir if needed, like "dpkg-deb --extract". It treats the
// archive as hostile and never writes outside dir:
//
//   - all writes go through an os.Root opened on dir, so the operating
//     system refuses any path that would leave it;
//   - entries with an absolute path or a ".." component, a path that
//     appears twice, a parent directory that is a symbolic link (a link
//     planted by an earlier entry or already in dir), a relative symbolic
//     link that climbs above dir, or a hard link to anything but a regular
//     file extracted earlier from the same archive, are errors wrapping
//     ErrUnsafePath that name the member and entry;
//   - device nodes and FIFOs are never created (ErrSpecialFile, or skipped
//     with SkipSpecial).
//
// Symbolic links with an absolute target ("/etc/alternatives/x") are
// created as stored, as dpkg-deb does: they are meant relative to the
// system root once installed. Nothing is ever written through them, but
// programs reading dir later may follow them out of it.
//
// Modes and modification times are set from the archive (directories at
// the end, so read-only directories can still be filled); dir itself takes
// those of the archive's "./" entry, as with dpkg-deb. Ownership is set
// only with PreserveOwner, which needs root. Existing files in dir are
// replaced; existing directories are kept. On error, what was extracted so
// far stays in dir.
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) error {
	dr, err := NewReader(r)
	if err != nil {
		return err
	}
	defer dr.Close()
	ctl, err := dr.Control()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create destination: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	x := &extractor{
		root:  root,
		opts:  opts,
		seen:  map[string]bool{".": false},
		dirs:  map[string]bool{".": true},
		files: map[string]bool{},
	}
	err = x.run(ctx, dr, ctl)
	if ferr := x.finish(); err == nil {
		err = ferr
	}
	return err
}

// extractor holds the state of one extraction.
type extractor struct {
	root  *os.Root
	opts  ExtractOptions
	seen  map[string]bool // every path written by this extraction
	dirs  map[string]bool // paths known to be real directories
	files map[string]bool // regular files written, valid hard link targets
	attrs []dirAttr       // directory modes and times, applied last
	// skipped is set when the current entry was skipped (SkipSpecial).
	skipped bool
}

type dirAttr struct {
	path     string
	mode     fs.FileMode
	mtime    time.Time
	uid, gid int
}

func (x *extractor) run(ctx context.Context, dr *Reader, ctl *ControlInfo) error {
	if x.opts.Control {
		if err := x.control(ctx, ctl); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := dr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := x.entry(ctx, e, dr); err != nil {
			return fmt.Errorf("member %s: entry %s: %w", dr.data.Name, quoteName(e.Name), err)
		}
		if x.opts.OnEntry != nil && !x.skipped {
			x.opts.OnEntry(e)
		}
		x.skipped = false
	}
}

// control writes the control tarball's files into DEBIAN/.
func (x *extractor) control(ctx context.Context, ctl *ControlInfo) error {
	// DEBIAN takes the mode and time of the control tarball's top
	// directory, as with dpkg-deb --raw-extract.
	d := &Entry{Name: "DEBIAN", Type: TypeDir, Mode: 0o755}
	if ctl.Root != nil {
		d.Mode, d.ModTime = ctl.Root.Mode, ctl.Root.ModTime
	}
	if err := x.write(ctx, "DEBIAN", d, nil); err != nil {
		return fmt.Errorf("control member %s: %w", ctl.Member.Name, err)
	}
	for i := range ctl.Files {
		f := &ctl.Files[i]
		var err error
		if f.Type != TypeFile && f.Type != TypeDir {
			err = fmt.Errorf("%w: a control member may only hold files and directories, not a %s", ErrUnsafePath, f.Type)
		} else {
			err = x.write(ctx, path.Join("DEBIAN", f.Path), &f.Entry, bytes.NewReader(f.Data))
		}
		if err != nil {
			return fmt.Errorf("member %s: entry %s: %w", ctl.Member.Name, quoteName(f.Name), err)
		}
	}
	return nil
}

// entry checks one data entry's path and writes it.
func (x *extractor) entry(ctx context.Context, e *Entry, content io.Reader) error {
	p, err := cleanArchivePath(e.Name)
	if err != nil {
		return err
	}
	return x.write(ctx, p, e, content)
}

// write creates the clean relative path p for entry e.
func (x *extractor) write(ctx context.Context, p string, e *Entry, content io.Reader) error {
	if p == "." {
		if e.Type != TypeDir {
			return fmt.Errorf("%w: the archive root is a %s, not a directory", ErrUnsafePath, e.Type)
		}
		if x.seen["."] {
			return fmt.Errorf("%w: the archive root appears twice", ErrUnsafePath)
		}
		x.seen["."] = true
		x.attrs = append(x.attrs, x.dirAttr(".", e))
		return nil
	}
	if x.seen[p] {
		return fmt.Errorf("%w: %s appears twice in the archive; refusing to overwrite it", ErrUnsafePath, p)
	}
	x.seen[p] = true
	if err := x.parents(p); err != nil {
		return err
	}
	switch e.Type {
	case TypeDir:
		return x.mkdir(p, e)
	case TypeFile:
		return x.file(ctx, p, e, content)
	case TypeSymlink:
		return x.symlink(p, e)
	case TypeHardlink:
		return x.hardlink(p, e)
	}
	what := map[EntryType]string{TypeCharDev: "character device", TypeBlockDev: "block device", TypeFIFO: "FIFO"}[e.Type]
	if x.opts.SkipSpecial {
		if x.opts.OnSkip != nil {
			x.opts.OnSkip(e)
		}
		x.skipped = true
		return nil
	}
	return fmt.Errorf("%w: it is a %s; device nodes and FIFOs are never extracted", ErrSpecialFile, what)
}

// parents makes sure every parent of p is a real directory inside the
// root, creating missing ones, and refuses symbolic links on the way.
func (x *extractor) parents(p string) error {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		d := strings.Join(parts[:i], "/")
		if x.dirs[d] {
			continue
		}
		fi, err := x.root.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(d, 0o755); err != nil {
				return fmt.Errorf("create parent directory: %w", err)
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: its parent %s is a symbolic link; refusing to write through it", ErrUnsafePath, d)
		case !fi.IsDir():
			return fmt.Errorf("%w: its parent %s is not a directory", ErrUnsafePath, d)
		}
		x.dirs[d] = true
	}
	return nil
}

// clear removes whatever non-directory exists at p, so that a new entry
// never writes through an existing file, link or hard link.
func (x *extractor) clear(p string) error {
	fi, err := x.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: a directory %s already exists there", ErrUnsafePath, p)
	}
	return x.root.Remove(p)
}

func (x *extractor) mode(e *Entry) fs.FileMode {
	m := e.Mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if !x.opts.PreserveOwner {
		m &^= fs.ModeSetuid | fs.ModeSetgid
	}
	return m
}

func (x *extractor) dirAttr(p string, e *Entry) dirAttr {
	return dirAttr{path: p, mode: x.mode(e), mtime: e.ModTime, uid: e.UID, gid: e.GID}
}

func (x *extractor) mkdir(p string, e *Entry) error {
	fi, err := x.root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Owner-writable until finish applies the final mode.
		if err := x.root.Mkdir(p, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: a symbolic link %s already exists there", ErrUnsafePath, p)
	case !fi.IsDir():
		return fmt.Errorf("%w: a file %s already exists there", ErrUnsafePath, p)
	}
	x.dirs[p] = true
	x.attrs = append(x.attrs, x.dirAttr(p, e))
	return nil
}

func (x *extractor) file(ctx context.Context, p string, e *Entry, content io.Reader) error {
	if err := x.clear(p); err != nil {
		return err
	}
	f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if content != nil {
		_, err = io.Copy(f, ctxio.Reader(ctx, content))
	}
	if err == nil && x.opts.PreserveOwner {
		err = f.Chown(e.UID, e.GID)
	}
	if err == nil {
		err = f.Chmod(x.mode(e))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = x.root.Chtimes(p, e.ModTime, e.ModTime)
	}
	if err != nil {
		return err
	}
	x.files[p] = true
	return nil
}

func (x *extractor) symlink(p string, e *Entry) error {
	t := e.Linkname
	if strings.ContainsRune(t, 0) {
		return fmt.Errorf("%w: symbolic link target contains a NUL byte", ErrUnsafePath)
	}
	if !path.IsAbs(t) {
		if j := path.Join(path.Dir(p), t); j == ".." || strings.HasPrefix(j, "../") {
			return fmt.Errorf("%w: symbolic link to %s points outside the destination", ErrUnsafePath, quoteName(t))
		}
	}
	if err := x.clear(p); err != nil {
		return err
	}
	if err := x.root.Symlink(t, p); err != nil {
		return err
	}
	if x.opts.PreserveOwner {
		if err := x.root.Lchown(p, e.UID, e.GID); err != nil {
			return err
		}
	}
	return lchtimes(x.root, p, e.ModTime)
}

func (x *extractor) hardlink(p string, e *Entry) error {
	t, err := cleanArchivePath(e.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %s: %w", quoteName(e.Linkname), err)
	}
	if !x.files[t] {
		return fmt.Errorf("%w: hard link to %s, which is not a regular file extracted earlier from this archive", ErrUnsafePath, quoteName(e.Linkname))
	}
	if err := x.clear(p); err != nil {
		return err
	}
	return x.root.Link(t, p)
}

// finish applies directory modes, owners and times, deepest first so that
// setting a child's time does not change its parent's afterwards.
func (x *extractor) finish() error {
	depth := func(p string) int {
		if p == "." {
			return -1
		}
		return strings.Count(p, "/")
	}
	sort.SliceStable(x.attrs, func(i, j int) bool { return depth(x.attrs[i].path) > depth(x.attrs[j].path) })
	var first error
	for _, a := range x.attrs {
		err := x.root.Chmod(a.path, a.mode)
		if err == nil && x.opts.PreserveOwner {
			err = x.root.Lchown(a.path, a.uid, a.gid)
			if err == nil {
				err = x.root.Chmod(a.path, a.mode) // chown clears setgid
			}
		}
		if err == nil {
			err = x.root.Chtimes(a.path, a.mtime, a.mtime)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("set attributes of %s: %w", a.path, err)
		}
	}
	return first
}
