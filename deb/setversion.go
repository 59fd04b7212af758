package deb

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// SetVersionResult describes a package repacked by SetVersion.
type SetVersionResult struct {
	// Control is the new control paragraph.
	Control *Paragraph
	// Filename is the pool name the new package gets
	// (NAME_VERSION-WITHOUT-EPOCH_ARCH.deb).
	Filename string
	// DroppedSignature is set when the input carried an origin signature
	// (_gpgorigin), which no longer matches and was left out: sign the
	// result again.
	DroppedSignature bool
}

// SetVersion writes to w the package held by r (size bytes) under another
// version: the control file's Version field changes, every other byte of
// the payload stays. The data member is copied byte for byte (so md5sums
// and every installed file are the same), the control member is rebuilt
// with the same entries — order, modes, owners, times, maintainer scripts
// — and the same compression. An origin signature member is dropped, as it
// signed the old bytes. This is how a forward-only revert republishes the
// last good version above a bad one (bad 1.4.1 → good payload as
// 1.4.1+revert1): apt and dpkg see an upgrade, the device gets the old
// files back.
func SetVersion(r io.ReaderAt, size int64, w io.Writer, version string) (*SetVersionResult, error) {
	v, err := ParseVersion(version)
	if err != nil {
		return nil, err
	}
	dr, err := NewReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, err
	}
	info, err := dr.Control()
	if err != nil {
		return nil, err
	}
	ctl := info.Paragraph.Clone()
	ctl.Set("Version", v.String())
	res := &SetVersionResult{Control: ctl,
		Filename: fmt.Sprintf("%s_%s_%s.deb", ctl.Get("Package"), v.WithoutEpoch(), ctl.Get("Architecture"))}
	var control bytes.Buffer
	if err := rewriteControl(&control, info, []byte(ctl.String())); err != nil {
		return nil, fmt.Errorf("member %s: %w", info.Member.Name, err)
	}
	mr, err := NewMemberReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, arMagic); err != nil {
		return nil, err
	}
	for {
		m, err := mr.Next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return nil, err
		}
		switch {
		case m.Kind == KindControl:
			err = writeArMember(w, m.Name, &control, int64(control.Len()), m.ModTime)
		case strings.HasPrefix(m.Name, "_gpg"):
			res.DroppedSignature = true
		default:
			err = writeArMember(w, m.Name, io.NewSectionReader(r, m.Offset, m.Size), m.Size, m.ModTime)
		}
		if err != nil {
			return nil, err
		}
	}
}

// rewriteControl writes info's control tarball again, with control as
// the control file's content and every entry's metadata as it was.
func rewriteControl(w io.Writer, info *ControlInfo, control []byte) error {
	zw, err := newCompressor(w, info.Member.Compression, 0, 1, 0)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if info.Root != nil {
		if err := tw.WriteHeader(entryHeader(info.Root, "./", 0)); err != nil {
			return err
		}
	}
	for i := range info.Files {
		f := &info.Files[i]
		data := f.Data
		if f.Path == "control" {
			data = control
		}
		if err := tw.WriteHeader(entryHeader(&f.Entry, f.Entry.Name, int64(len(data)))); err != nil {
			return err
		}
		if f.Type == TypeFile {
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// entryHeader turns an Entry read from a control tarball back into a tar
// header (GNU format, as dpkg-deb writes).
func entryHeader(e *Entry, name string, size int64) *tar.Header {
	h := tarHeader(name, e.Mode, e.ModTime, account{Name: e.User, ID: e.UID}, account{Name: e.Group, ID: e.GID})
	switch e.Type {
	case TypeDir:
		h.Typeflag = tar.TypeDir
	case TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Linkname
	case TypeHardlink:
		h.Typeflag, h.Linkname = tar.TypeLink, e.Linkname
	default:
		h.Typeflag, h.Size = tar.TypeReg, size
	}
	return h
}
