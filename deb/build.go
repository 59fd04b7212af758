package deb

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BuildOptions tune Build. The zero value builds like dpkg-deb: xz at
// level 6, times clamped to the newest file of the tree.
type BuildOptions struct {
	// Compression of both tar members; "" means xz.
	Compression Compression
	// Level is the compression level; 0 means the compressor's default
	// (gzip 9, xz 6, zstd 3, as dpkg-deb).
	Level int
	// Mtime clamps every timestamp in the package: no entry is newer,
	// and the ar headers carry it. Zero means the newest modification
	// time found in the tree, so that rebuilding an unchanged tree gives
	// the same bytes. Set it from SOURCE_DATE_EPOCH for reproducible builds.
	Mtime time.Time
	// TempDir holds the spooled data member while the control member is
	// written ("" = os.TempDir()).
	TempDir string
	// Progress, if set, is called as payload bytes are archived.
	Progress func(done, total int64)
	// Workers bounds the goroutines compressing the data member (0 =
	// GOMAXPROCS). The package's bytes do not depend on it.
	Workers int
	// Owners declares the owner, group and mode of payload paths (see
	// ParseOwners); every other entry is root:root. nil declares nothing.
	Owners *Owners
	// Umask lists permission bits to clear from every payload entry, for
	// trees checked out with a loose umask (0o022 drops group and other
	// write). Zero keeps the tree's modes, as dpkg-deb does; a warning
	// lists what it changed. Modes declared in Owners are applied after it.
	Umask fs.FileMode
}

// BuildResult describes a package Build wrote.
type BuildResult struct {
	// Control is the control file as packaged (with Installed-Size).
	Control *Paragraph
	// Filename is the canonical file name: <Package>_<Version without
	// epoch>_<Architecture>.deb.
	Filename string
	// Conffiles as written to DEBIAN/conffiles.
	Conffiles []string
	// Warnings are what lintian would flag; the package was built anyway.
	Warnings []Warning
	// Size is the size of the .deb in bytes.
	Size int64
	// InstalledSize in KiB, by dpkg-gencontrol's rule.
	InstalledSize int64
	// Entries counts the payload's archive entries.
	Entries int
}

// Build writes to w the .deb built from the package tree fsys: a DEBIAN
// directory (control, optional conffiles and maintainer scripts) and the
// payload. fsys should not follow symbolic links out of the tree (use
// os.Root's FS); Build itself never follows them: links are stored as
// links. Entries keep the tree's mode bits (less opts.Umask) and are owned
// by root:root, whoever runs Build, unless opts.Owners declares otherwise;
// a setuid or setgid entry left root:root undeclared is warned about.
//
// Build refuses what dpkg-deb refuses, and special files; errors wrap
// ErrSyntax, ErrMissingField, ErrInvalidField, ErrInvalidVersion or
// ErrInvalidTree and name the file, line and field at fault. Nothing is
// written to w before the tree has been checked.
func Build(ctx context.Context, fsys fs.FS, w io.Writer, opts BuildOptions) (*BuildResult, error) {
	comp := opts.Compression
	if comp == "" {
		comp = CompressXZ
	}
	level, err := comp.checkLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	t, err := scanTree(fsys)
	if err != nil {
		return nil, err
	}
	clamp := opts.Mtime
	if clamp.IsZero() {
		clamp = t.newest
	}
	clamp = clamp.Truncate(time.Second)
	res, err := describe(t, opts)
	if err != nil {
		return nil, err
	}
	conffiles := res.Conffiles

	// The data member goes first into a spool, computing md5sums on the
	// way; control.tar (which carries them) is then written before it.
	spool, err := os.CreateTemp(opts.TempDir, "lampi-build-*.data")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", res.Filename, err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sums, err := writeData(ctx, fsys, t.entries, spool, comp, level, workers, clamp, conffiles, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("build %s: data.tar: %w", res.Filename, err)
	}
	dataSize, err := spool.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	var control bytes.Buffer
	if err := writeControl(&control, res.Control, t.scripts, conffiles, sums, comp, level, 1, clamp); err != nil {
		return nil, fmt.Errorf("build %s: control.tar: %w", res.Filename, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cw := &countingWriter{w: w}
	if _, err := io.WriteString(cw, arMagic); err != nil {
		return nil, err
	}
	if err := writeMembers(cw, comp, &control, spool, dataSize, clamp); err != nil {
		return nil, fmt.Errorf("build %s: %w", res.Filename, err)
	}
	res.Size = cw.n
	return res, nil
}

// describe applies the tree's conffiles, the umask and the declared owners
// to its entries, and returns what the package will be: its control
// paragraph with the computed Installed-Size, its file name, conffiles and
// warnings.
func describe(t *tree, opts BuildOptions) (*BuildResult, error) {
	conffiles, err := resolveConffiles(t.conffiles, t.entries)
	if err != nil {
		return nil, err
	}
	warns := append(t.warnings, applyUmask(t.entries, opts.Umask)...)
	ownerWarns, err := opts.Owners.apply(t.entries)
	if err != nil {
		return nil, err
	}
	warns = append(warns, ownerWarns...)
	res := &BuildResult{Control: t.control.Clone(), Conffiles: conffiles, Warnings: warns, Entries: len(t.entries)}
	res.InstalledSize = installedSize(t.entries)
	if f, ok := res.Control.Field("Installed-Size"); ok && f.Value != strconv.FormatInt(res.InstalledSize, 10) {
		res.Warnings = append(res.Warnings, Warning{File: "DEBIAN/control", Line: f.Line,
			Msg: fmt.Sprintf("Installed-Size %s replaced by the computed %d", f.Value, res.InstalledSize)})
	}
	res.Control.SetAfter("Architecture", "Installed-Size", strconv.FormatInt(res.InstalledSize, 10))
	v, _ := ParseVersion(res.Control.Get("Version"))
	res.Filename = fmt.Sprintf("%s_%s_%s.deb", res.Control.Get("Package"), v.WithoutEpoch(), res.Control.Get("Architecture"))
	return res, nil
}

// writeMembers writes the .deb's ar members after the ar magic:
// debian-binary, the control member, then dataSize bytes of the data
// member from data.
func writeMembers(w io.Writer, comp Compression, control *bytes.Buffer, data io.Reader, dataSize int64, clamp time.Time) error {
	members := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"debian-binary", strings.NewReader("2.0\n"), 4},
		{"control.tar" + comp.Ext(), control, int64(control.Len())},
		{"data.tar" + comp.Ext(), data, dataSize},
	}
	for _, m := range members {
		if err := writeArMember(w, m.name, m.r, m.size, clamp); err != nil {
			return err
		}
	}
	return nil
}

// installedSize applies dpkg-gencontrol's rule: regular files and symlinks
// count their size in KiB rounded up (hard links once), every other entry
// (directories) counts 1.
func installedSize(entries []entry) int64 {
	var kib int64
	for _, e := range entries {
		switch {
		case e.hardlink != "":
		case e.mode.IsRegular():
			kib += (e.size + 1023) / 1024
		case e.mode&fs.ModeSymlink != 0:
			kib += (int64(len(e.link)) + 1023) / 1024
		default:
			kib++
		}
	}
	return kib
}

type md5sum struct {
	path string // without the leading "./"
	sum  string
}

// writeData writes the compressed data.tar of entries to w and returns the
// md5sums of its regular files, every name of hard links included
// (conffiles excluded, as dh_md5sums does).
func writeData(ctx context.Context, fsys fs.FS, entries []entry, w io.Writer, comp Compression, level, workers int, clamp time.Time, conffiles []string, progress func(int64, int64)) ([]md5sum, error) {
	isConf := map[string]bool{}
	for _, c := range conffiles {
		isConf[c] = true
	}
	var total, done int64
	for _, e := range entries {
		total += e.size
	}
	zw, err := newCompressor(w, comp, level, workers, total+512*int64(len(entries)))
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	var sums []md5sum
	// Every name of a hard-linked file is listed, as dh_md5sums does:
	// the sum of a link is that of its first name.
	linked := map[string]string{}
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr := tarHeader(e.name, e.mode, clamp, e.user, e.group)
		if e.mtime.Before(clamp) {
			hdr.ModTime = e.mtime.Truncate(time.Second)
		}
		switch {
		case e.hardlink != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.hardlink
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.link, 0o777
		case e.mode.IsDir():
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.src, err)
		}
		var sum string
		switch hdr.Typeflag {
		case tar.TypeLink:
			sum = linked[e.hardlink]
		case tar.TypeReg:
			if sum, err = copyFile(fsys, e, tw, buf); err != nil {
				return nil, err
			}
			linked[e.name] = sum
		default:
			continue
		}
		if rel := strings.TrimPrefix(e.name, "./"); !isConf["/"+rel] {
			sums = append(sums, md5sum{path: rel, sum: sum})
		}
		done += e.size
		if progress != nil {
			progress(done, total)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return sums, zw.Close()
}

// copyFile streams one regular file into the tar writer, checking that it
// did not change size since the scan, and returns its md5 in hex.
func copyFile(fsys fs.FS, e entry, w io.Writer, buf []byte) (string, error) {
	f, err := fsys.Open(e.src)
	if err != nil {
		return "", fmt.Errorf("%w: open %s: %v", ErrInvalidTree, e.src, err)
	}
	defer f.Close()
	h := md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(f, e.size), buf)
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.src, err)
	}
	if n != e.size {
		return "", fmt.Errorf("%w: %s shrank from %d to %d bytes while it was being packaged", ErrInvalidTree, e.src, e.size, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tarHeader is the common header: GNU format (as dpkg-deb writes), every
// permission and special bit of mode, owner and group by name and id.
func tarHeader(name string, mode fs.FileMode, mtime time.Time, user, group account) *tar.Header {
	return &tar.Header{Name: name, Mode: int64(unixMode(mode)), ModTime: mtime,
		Uname: user.Name, Uid: user.ID, Gname: group.Name, Gid: group.ID, Format: tar.FormatGNU}
}

// applyUmask clears the bits of umask from every entry but symbolic links
// and returns one warning that says what changed.
func applyUmask(entries []entry, umask fs.FileMode) []Warning {
	umask &= fs.ModePerm
	if umask == 0 {
		return nil
	}
	var changed []string
	for k := range entries {
		e := &entries[k]
		if e.mode&fs.ModeSymlink != 0 || e.mode&umask == 0 {
			continue
		}
		old := unixMode(e.mode)
		e.mode &^= umask
		changed = append(changed, fmt.Sprintf("%s %04o→%04o", e.name, old, unixMode(e.mode)))
	}
	if len(changed) == 0 {
		return nil
	}
	const shown = 5
	list := strings.Join(changed[:min(len(changed), shown)], ", ")
	if len(changed) > shown {
		list += fmt.Sprintf(" and %d more", len(changed)-shown)
	}
	return []Warning{{Msg: fmt.Sprintf("umask %04o changed the mode of %d entries: %s", unixMode(umask), len(changed), list)}}
}

// writeControl writes the compressed control.tar: ./, control, md5sums,
// conffiles, then the other DEBIAN files, in name order.
func writeControl(w io.Writer, ctl *Paragraph, extra []controlFile, conffiles []string, sums []md5sum, comp Compression, level, workers int, clamp time.Time) error {
	files := []controlFile{{name: "control", mode: 0o644, data: []byte(ctl.String())}}
	if len(sums) > 0 {
		var b strings.Builder
		for _, s := range sums {
			fmt.Fprintf(&b, "%s  %s\n", s.sum, s.path)
		}
		files = append(files, controlFile{name: "md5sums", mode: 0o644, data: []byte(b.String())})
	}
	if len(conffiles) > 0 {
		files = append(files, controlFile{name: "conffiles", mode: 0o644, data: []byte(strings.Join(conffiles, "\n") + "\n")})
	}
	files = append(files, extra...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	zw, err := newCompressor(w, comp, level, workers, 0)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	dir := tarHeader("./", fs.ModeDir|0o755, clamp, rootAccount, rootAccount)
	dir.Typeflag = tar.TypeDir
	if err := tw.WriteHeader(dir); err != nil {
		return err
	}
	for _, f := range files {
		hdr := tarHeader("./"+f.name, fs.FileMode(f.mode), clamp, rootAccount, rootAccount)
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
