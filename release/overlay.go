package release

import (
	"bytes"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/bump"
)

// overlay is a tree as a bump plan would leave it: the files the plan
// changes have their new content (and mtime, the release's time); every
// other name is the base tree's. A dry run builds from it, so that it
// builds what a real run would without writing a byte to the tree.
type overlay struct {
	base  fs.FS
	files map[string]*memFile
}

func newOverlay(base fs.FS, plan *bump.Plan, now time.Time) fs.FS {
	o := &overlay{base: base, files: map[string]*memFile{}}
	for _, f := range plan.Files {
		if filepath.IsAbs(f.Path) {
			continue
		}
		name := path.Clean(filepath.ToSlash(f.Path))
		if name == ".." || strings.HasPrefix(name, "../") {
			continue
		}
		info, err := fs.Lstat(base, name)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		o.files[name] = &memFile{name: path.Base(name), data: f.New(), mode: info.Mode(), mtime: now}
	}
	return o
}

var (
	_ fs.ReadDirFS  = (*overlay)(nil)
	_ fs.ReadLinkFS = (*overlay)(nil)
	_ fs.StatFS     = (*overlay)(nil)
)

func (o *overlay) Open(name string) (fs.File, error) {
	if m, ok := o.files[name]; ok {
		return &openMem{memFile: m, r: bytes.NewReader(m.data)}, nil
	}
	return o.base.Open(name)
}

func (o *overlay) Stat(name string) (fs.FileInfo, error) {
	if m, ok := o.files[name]; ok {
		return m, nil
	}
	return fs.Stat(o.base, name)
}

func (o *overlay) Lstat(name string) (fs.FileInfo, error) {
	if m, ok := o.files[name]; ok {
		return m, nil
	}
	return fs.Lstat(o.base, name)
}

func (o *overlay) ReadLink(name string) (string, error) { return fs.ReadLink(o.base, name) }

func (o *overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(o.base, name)
	for i, e := range ents {
		if m, ok := o.files[path.Join(name, e.Name())]; ok {
			ents[i] = fs.FileInfoToDirEntry(m)
		}
	}
	return ents, err
}

// memFile is a changed file's content and metadata.
type memFile struct {
	name  string
	data  []byte
	mode  fs.FileMode
	mtime time.Time
}

func (m *memFile) Name() string       { return m.name }
func (m *memFile) Size() int64        { return int64(len(m.data)) }
func (m *memFile) Mode() fs.FileMode  { return m.mode }
func (m *memFile) ModTime() time.Time { return m.mtime }
func (m *memFile) IsDir() bool        { return false }
func (m *memFile) Sys() any           { return nil }

type openMem struct {
	*memFile
	r *bytes.Reader
}

func (f *openMem) Stat() (fs.FileInfo, error) { return f.memFile, nil }
func (f *openMem) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *openMem) Close() error               { return nil }
