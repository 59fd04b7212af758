package repo

import (
	"bytes"
	"context"
	"encoding/binary"

	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// debFile is a .deb staged for inclusion: read once while hashing, kept
// in memory when small (within the stager's budget) or copied into the
// staging directory, and inspected from what was read (so the bytes we
// check are the bytes that go into the pool).
type debFile struct {
	src     string // the path the user gave
	data    []byte // the content, when kept in memory
	staged  string // the copy in the staging directory, otherwise
	sums    Checksums
	control *deb.Paragraph
	name    string
	version deb.Version
	arch    string
	source  string // source package name (pool directory)
}

// maxInMemory bounds the size of a package kept in memory.
const maxInMemory = 1 << 20

// stageDeb reads src, computes its checksums and reads its control file.
// Errors wrap ErrBadPackage (and the deb package's sentinel) and name src.
func stageDeb(ctx context.Context, src string, st *stager) (*debFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := int64(maxInMemory)
	if st.budget.Load() <= 0 {
		limit = -1
	}
	data, size, err := readSmall(src, limit)
	if err != nil {
		return nil, err
	}
	df := &debFile{src: src}
	if data != nil {
		st.budget.Add(-size)
		df.data, df.sums = data, sumBytes(data)
		return df, df.inspect(bytes.NewReader(data), int64(len(data)))
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := st.create()
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", src, err)
	}
	defer f.Close()
	df.staged = f.Name()
	h := newHasher()
	n, err := io.Copy(io.MultiWriter(f, h), in)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", src, err)
	}
	df.sums = h.sums()
	return df, df.inspect(f, n)
}

// spill writes an in-memory package to the staging directory, for the
// storage to move into the pool.
func (df *debFile) spill(st *stager) error {
	if df.staged != "" {
		return nil
	}
	name, err := st.name()
	if err != nil {
		return err
	}
	if err := writeNew(name, df.data); err != nil {
		return err
	}
	df.staged, df.data = name, nil
	return nil
}

// stager owns the staging directory of a command, created on first use
// under DBDIR/tmp with the process id in its name (so that the next
// writer can tell and remove leftovers of a killed process).
type stager struct {
	r    *Repo
	once sync.Once
	dir  string
	err  error
	n    atomic.Int64
	// budget is how many more bytes of packages may be kept in memory.
	budget atomic.Int64
}

func newStager(r *Repo) *stager {
	s := &stager{r: r}
	s.budget.Store(stagingMemory)
	return s
}

// stagingMemory bounds the packages a command keeps in memory.
const stagingMemory = 8 << 20

// name returns a new file name in the staging directory.
func (s *stager) name() (string, error) {
	s.once.Do(func() { s.dir, s.err = s.r.stagingDir() })
	if s.err != nil {
		return "", s.err
	}
	return filepath.Join(s.dir, fmt.Sprintf("%d.deb", s.n.Add(1))), nil
}

// create makes a new staging file (mode 0644, as the pool wants it).
func (s *stager) create() (*os.File, error) {
	name, err := s.name()
	if err != nil {
		return nil, err
	}
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

// remove deletes the staging directory and what is left in it.
func (s *stager) remove() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// inspect checks the archive structure (every member present and whole)
// and parses the control file.
func (df *debFile) inspect(f io.ReaderAt, size int64) error {
	bad := func(err error) error {
		return fmt.Errorf("%s: %w: %w", df.src, ErrBadPackage, err)
	}
	mr, err := deb.NewMemberReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return bad(err)
	}
	var ctl *deb.Member
	for {
		m, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad(err)
		}
		if m.Kind == deb.KindControl {
			c := *m
			ctl = &c
		}
	}
	if ctl == nil {
		return bad(fmt.Errorf("%w: no control member", deb.ErrNotDeb))
	}
	info, err := readControlFast(f, size, ctl)
	if err != nil {
		return bad(err)
	}
	return df.checkControl(info.Paragraph)
}

// readControlFast reads the control member with deb.Reader. For an xz
// control member it first presents the reader a copy whose block header
// declares a 64 KiB dictionary instead of the compressor's (8 MiB for
// xz -6, allocated and cleared for every package): decoding with a smaller
// dictionary either gives exactly the same bytes or fails on a match
// distance beyond it, and then the file is read again as it is.
func readControlFast(f io.ReaderAt, size int64, ctl *deb.Member) (*deb.ControlInfo, error) {
	if ctl.Compression == deb.CompressXZ && ctl.Size <= 4<<20 {
		buf := make([]byte, ctl.Size)
		if _, err := f.ReadAt(buf, ctl.Offset); err == nil && shrinkXZDict(buf, 8) {
			end := ctl.Offset + ctl.Size
			r := io.MultiReader(io.NewSectionReader(f, 0, ctl.Offset), bytes.NewReader(buf), io.NewSectionReader(f, end, size-end))
			if info, err := readControl(r); err == nil {
				return info, nil
			}
		}
	}
	return readControl(io.NewSectionReader(f, 0, size))
}

func readControl(r io.Reader) (*deb.ControlInfo, error) {
	dr, err := deb.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	return dr.Control()
}

// shrinkXZDict rewrites the LZMA2 dictionary size in the first block
// header of the xz stream in b to 2^(p/2+12) bytes when it declares more,
// fixing the header's CRC32. It reports whether it changed anything.
func shrinkXZDict(b []byte, p byte) bool {
	const streamHeader = 12
	if len(b) < streamHeader+8 || !bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")) {
		return false
	}
	h := b[streamHeader:]
	size := (int(h[0]) + 1) * 4
	if h[0] == 0 || len(h) < size {
		return false
	}
	flags := h[1]
	if flags&0x03 != 0 { // more than one filter
		return false
	}
	i := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			_, n := binary.Uvarint(h[i:size])
			if n <= 0 {
				return false
			}
			i += n
		}
	}
	if i+3 > size-4 || h[i] != 0x21 || h[i+1] != 1 { // LZMA2, 1 property byte
		return false
	}
	if h[i+2] <= p || h[i+2] > 40 {
		return false
	}
	h[i+2] = p
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return true
}

// checkControl validates the fields a Packages index needs.
func (df *debFile) checkControl(p *deb.Paragraph) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: control file: %s", df.src, ErrBadPackage, fmt.Sprintf(format, a...))
	}
	df.control = p
	df.name = p.Get("Package")
	if df.name == "" {
		return bad("no Package field")
	}
	if err := deb.ValidatePackageName(df.name); err != nil {
		return bad("%v", err)
	}
	v, err := deb.ParseVersion(p.Get("Version"))
	if err != nil {
		return bad("%v", err)
	}
	df.version = v
	df.arch = p.Get("Architecture")
	if err := deb.ValidateArchitecture(df.arch); err != nil {
		return bad("%v", err)
	}
	if p.Get("Description") == "" {
		return bad("no Description field")
	}
	df.source = df.name
	if s := p.Get("Source"); s != "" {
		name, _, _ := strings.Cut(s, " ")
		if err := deb.ValidatePackageName(name); err != nil {
			return bad("Source: %v", err)
		}
		df.source = name
	}
	return nil
}

// errorList joins per-file errors, keeping errors.Is working on each.
type errorList []error

func (l errorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == 10 {
			fmt.Fprintf(&b, "\n… and %d more", len(l)-10)
			break
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l errorList) Unwrap() []error { return l }

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errorList(errs)
}
