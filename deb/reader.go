package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Sentinel errors of the reader, in addition to those in errors.go.
var (
	// ErrCorrupt: a member's compressed data or tarball is malformed.
	ErrCorrupt = errors.New("corrupt archive")
	// ErrTooLarge: a member exceeds one of the reader's bounds
	// (MaxControlSize, MaxControlFileSize, the decompressors' window).
	ErrTooLarge = errors.New("archive exceeds a size limit")
)

// Bounds applied to the control member, which the reader holds in memory.
// The data member is streamed and has no bound.
const (
	// MaxControlSize bounds the decompressed control.tar (all entries and
	// tar headers) by default (see ReaderOptions): a zip bomb there fails
	// instead of exhausting memory.
	MaxControlSize = 64 << 20
	// MaxControlFileSize bounds the control file itself.
	MaxControlFileSize = 1 << 20
)

// quoteName shows an archive path in messages: as is when it is plain,
// Go-quoted when it holds control or non-UTF-8 characters.
func quoteName(s string) string {
	q := strconv.Quote(s)
	if q[1:len(q)-1] == s && !strings.ContainsAny(s, " ") {
		return s
	}
	return q
}

// Reader streams a .deb: NewReader checks the ar magic and debian-binary,
// Control returns the control member, and Next and Read iterate over the
// data member's entries like archive/tar. The data member is decompressed
// on the fly and never buffered, so a Reader works on a pipe.
//
// Every archive is treated as hostile: structural problems are errors
// wrapping ErrNotDeb, ErrTruncated, ErrCompression, ErrCorrupt or
// ErrTooLarge and name the member and entry. Reading the control member
// costs memory bounded by ReaderOptions.MaxControlSize (MaxControlSize by
// default), whatever the archive declares: at most that much decompressed
// data is read, at most that much is kept, and no decoder window or
// dictionary is larger; about twice the bound in all. Errors are sticky.
type Reader struct {
	mr *MemberReader
	// ra reads the archive at random (when the input is an io.ReaderAt
	// and io.Seeker, such as a file), base being where it starts: the xz
	// index at the end of a member is read before its blocks (see
	// memberReader).
	ra      io.ReaderAt
	base    int64
	ctlMax  int64 // ReaderOptions.MaxControlSize
	control *ControlInfo
	data    *Member
	dec     io.ReadCloser
	tr      *tar.Reader
	cur     *Entry
	done    bool
	err     error
}

// ReaderOptions bound what a Reader holds in memory.
type ReaderOptions struct {
	// MaxControlSize bounds the decompressed control member and with it
	// the memory spent reading it (0: MaxControlSize). A server checking
	// untrusted uploads sets a smaller one.
	MaxControlSize int64
}

// NewReader reads the ar magic and the debian-binary member of r.
func NewReader(r io.Reader) (*Reader, error) {
	return NewReaderOptions(r, ReaderOptions{})
}

// NewReaderOptions is NewReader with bounds other than the defaults.
func NewReaderOptions(r io.Reader, o ReaderOptions) (*Reader, error) {
	if o.MaxControlSize <= 0 {
		o.MaxControlSize = MaxControlSize
	}
	base := int64(-1)
	ra, _ := r.(io.ReaderAt)
	if s, ok := r.(io.Seeker); ok && ra != nil {
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			base = cur
		}
	}
	mr, err := NewMemberReader(r)
	if err != nil {
		return nil, err
	}
	if _, err := mr.Next(); err != nil {
		return nil, err
	}
	dr := &Reader{mr: mr, ctlMax: o.MaxControlSize}
	if base >= 0 && mr.seeker != nil {
		dr.ra, dr.base = ra, base
	}
	return dr, nil
}

// maxBufferedMember is the largest compressed control member read into
// memory whole from an input that cannot seek, to learn its xz block
// sizes before decoding.
const maxBufferedMember = 256 << 10

// decompress returns the decompressed content of the current member m,
// which is read from src and cut at limit bytes (-1: no limit). For xz
// the block sizes in the stream's index are read first when possible —
// with random access, or by holding a small member (buffer) in memory —
// so that the decoder's dictionary is allocated by the data's size, not
// the compressor's setting, and a member declaring more than limit bytes
// is refused before anything is decoded.
func (r *Reader) decompress(src io.Reader, m *Member, buffer bool, limit int64) (io.ReadCloser, error) {
	if m.Compression != CompressXZ {
		return newBoundedDecompressor(src, m.Compression, m.Size, nil, limit)
	}
	var blocks []int64
	switch {
	case r.ra != nil:
		blocks = xzBlockSizes(io.NewSectionReader(r.ra, r.base+m.Offset, m.Size), m.Size)
	case buffer && m.Size <= maxBufferedMember:
		data, err := io.ReadAll(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Compression, decodeErr(err))
		}
		blocks = xzBlockSizes(bytes.NewReader(data), int64(len(data)))
		src = bytes.NewReader(data)
	}
	if limit >= 0 {
		total := int64(0)
		for _, b := range blocks {
			if total += b; total > limit {
				return nil, fmt.Errorf("%w: it declares more than %s uncompressed, the limit", ErrTooLarge, limitString(limit))
			}
		}
	}
	return newBoundedDecompressor(src, m.Compression, m.Size, blocks, limit)
}

// FormatVersion returns the format version from debian-binary ("2.0").
func (r *Reader) FormatVersion() string { return r.mr.FormatVersion() }

// Members returns the ar members read so far, in archive order. After Next
// has returned io.EOF it lists every member, trailing ones included.
func (r *Reader) Members() []Member { return r.mr.Members() }

// Control reads and returns the control member. It skips members whose
// name starts with '_' on the way; calling it again returns the same
// result.
func (r *Reader) Control() (*ControlInfo, error) {
	if r.control != nil {
		return r.control, nil
	}
	if r.err != nil {
		return nil, r.err
	}
	for {
		m, err := r.mr.Next()
		if err != nil {
			r.err = err
			return nil, err
		}
		if m.Kind == KindControl {
			r.control, r.err = r.readControl(m)
			return r.control, r.err
		}
	}
}

// Next advances to the next entry of the data member, reading the control
// member first if Control has not been called. At the end of the data
// member it checks that only members starting with '_' follow, then
// returns io.EOF.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.closeData()
		r.err = err
	}
	return e, err
}

func (r *Reader) next() (*Entry, error) {
	r.cur = nil
	if r.tr == nil {
		if r.done {
			return nil, io.EOF
		}
		if err := r.openData(); err != nil {
			return nil, err
		}
	}
	h, err := tarNext(r.tr)
	if err == io.EOF {
		r.closeData()
		r.done = true
		for {
			if _, err := r.mr.Next(); err != nil {
				return nil, err
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", r.data.Name, tarErr(err))
	}
	e, err := entryFromHeader(h)
	if err != nil {
		return nil, fmt.Errorf("member %s: %w", r.data.Name, err)
	}
	r.cur = e
	return e, nil
}

// openData moves to the data member and starts decompressing it.
func (r *Reader) openData() error {
	if _, err := r.Control(); err != nil {
		return err
	}
	for {
		m, err := r.mr.Next()
		if err != nil {
			return err
		}
		if m.Kind != KindData {
			continue
		}
		dec, err := r.decompress(r.mr, m, false, -1)
		if err != nil {
			return fmt.Errorf("member %s: %w", m.Name, err)
		}
		r.data, r.dec = m, dec
		r.tr = tar.NewReader(&decodedReader{r: dec, c: m.Compression, limit: -1})
		return nil
	}
}

func (r *Reader) closeData() {
	if r.dec != nil {
		r.dec.Close()
	}
	r.dec, r.tr = nil, nil
}

// Read reads the content of the current data entry (regular files only;
// other entries read as empty).
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.tr == nil || r.cur == nil {
		return 0, io.EOF
	}
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("member %s: entry %s: %w", r.data.Name, quoteName(r.cur.Name), tarErr(err))
		r.err = err
	}
	return n, err
}

// Close releases the decompressor. It does not close the underlying
// reader. Reading after Close fails.
func (r *Reader) Close() error {
	r.closeData()
	if r.err == nil {
		r.err = errors.New("deb: reader closed")
	}
	return nil
}

// ControlInfo is the content of a control member.
type ControlInfo struct {
	// Member is the control.tar[.gz|.xz|.zst] member itself.
	Member Member
	// Raw holds the control file exactly as stored.
	Raw []byte
	// Paragraph is the parsed control file.
	Paragraph *Paragraph
	// Files lists the control tarball's entries (except its top directory)
	// in archive order, with the content of regular files: control,
	// md5sums, conffiles, maintainer scripts…
	Files []ControlFile
	// Root is the control tarball's top directory entry ("./"), nil if it
	// has none: its mode and time are those dpkg-deb --raw-extract gives
	// to DEBIAN/.
	Root *Entry
}

// ControlFile is one entry of a control tarball.
type ControlFile struct {
	Entry
	// Path is the entry's name without the leading "./" ("postinst").
	Path string
	// Data is the content of a regular file.
	Data []byte
}

// File returns the control tarball entry with the given path ("md5sums"),
// or nil.
func (c *ControlInfo) File(name string) *ControlFile {
	for i := range c.Files {
		if c.Files[i].Path == name {
			return &c.Files[i]
		}
	}
	return nil
}

// readControl decompresses and parses the control member m, bounded by
// r.ctlMax and MaxControlFileSize. What it keeps (file contents, names)
// is bounded by r.ctlMax too, whatever the tar headers declare: an
// entry's content is allocated at its declared size, once, after the
// size was checked against what is left.
func (r *Reader) readControl(m *Member) (*ControlInfo, error) {
	fail := func(err error) (*ControlInfo, error) {
		return nil, fmt.Errorf("member %s: %w", m.Name, err)
	}
	dec, err := r.decompress(r.mr, m, true, r.ctlMax)
	if err != nil {
		return fail(err)
	}
	defer dec.Close()
	tr := tar.NewReader(&decodedReader{r: dec, c: m.Compression, limit: r.ctlMax})
	info := &ControlInfo{Member: *m}
	seen := map[string]bool{}
	kept := int64(0) // bytes of content and names kept
	for {
		h, err := tarNext(tr)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(tarErr(err))
		}
		e, err := entryFromHeader(h)
		if err != nil {
			return fail(err)
		}
		p, err := cleanArchivePath(e.Name)
		if err != nil {
			return fail(fmt.Errorf("entry %s: %w", quoteName(e.Name), err))
		}
		if p == "." {
			if info.Root == nil && e.Type == TypeDir {
				info.Root = e
			}
			continue
		}
		if seen[p] {
			return fail(fmt.Errorf("entry %s: %w: it appears twice", quoteName(e.Name), ErrCorrupt))
		}
		seen[p] = true
		f := ControlFile{Entry: *e, Path: p}
		kept += int64(len(e.Name) + len(p) + len(e.Linkname))
		if e.Type == TypeFile {
			if p == "control" && e.Size > MaxControlFileSize {
				return fail(fmt.Errorf("entry %s: %w: the control file is %d bytes; the limit is %d", quoteName(e.Name), ErrTooLarge, e.Size, MaxControlFileSize))
			}
			if e.Size > r.ctlMax-kept {
				return fail(fmt.Errorf("entry %s: %w: it is %d bytes; the control member's limit is %s in all", quoteName(e.Name), ErrTooLarge, e.Size, limitString(r.ctlMax)))
			}
			kept += e.Size
			f.Data = make([]byte, e.Size)
			if _, err := io.ReadFull(tr, f.Data); err != nil {
				return fail(fmt.Errorf("entry %s: %w", quoteName(e.Name), tarErr(err)))
			}
		}
		if kept > r.ctlMax {
			return fail(fmt.Errorf("entry %s: %w: the control member's names and contents exceed %s", quoteName(e.Name), ErrTooLarge, limitString(r.ctlMax)))
		}
		info.Files = append(info.Files, f)
	}
	cf := info.File("control")
	if cf == nil || cf.Type != TypeFile {
		return fail(fmt.Errorf("%w: it holds no control file", ErrNotDeb))
	}
	info.Raw = cf.Data
	if info.Paragraph, err = ParseControl(bytes.NewReader(cf.Data), "control"); err != nil {
		return fail(err)
	}
	return info, nil
}

// cleanArchivePath turns an archive name ("./usr/bin/hi", "usr/bin/",
// "./") into a clean relative path ("usr/bin/hi", "usr/bin", "."),
// refusing absolute paths and any ".." component.
func cleanArchivePath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute path", ErrUnsafePath)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: path contains \"..\"", ErrUnsafePath)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: path contains a NUL byte", ErrUnsafePath)
	}
	return path.Clean(name), nil
}

// Info is what "dpkg-deb --info" shows of a package: its members, the
// control tarball's files and the control file.
type Info struct {
	// FormatVersion is the content of debian-binary without the newline.
	FormatVersion string `json:"format"`
	// Size is the length of the archive in bytes.
	Size int64 `json:"size"`
	// Members lists every ar member in archive order, including members
	// whose name starts with '_' (signatures).
	Members []Member `json:"members"`
	// Control is the control member's content.
	Control *ControlInfo `json:"control"`
}

// Inspect reads a .deb's structure and control member. The data member is
// skipped without being decompressed (seeked over when r is a file).
func Inspect(r io.Reader) (*Info, error) {
	dr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	ctl, err := dr.Control()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := dr.mr.Next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
	}
	return &Info{
		FormatVersion: dr.FormatVersion(),
		Size:          dr.mr.Offset(),
		Members:       dr.Members(),
		Control:       ctl,
	}, nil
}
