package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// MemberKind is the role an ar member plays in a .deb.
type MemberKind string

// The member kinds, in the only order a .deb may hold them. Members whose
// name starts with '_' (such as debsigs' "_gpgorigin") may appear anywhere
// after debian-binary; dpkg skips them, and so does Reader.
const (
	KindDebianBinary MemberKind = "debian-binary"
	KindControl      MemberKind = "control"
	KindData         MemberKind = "data"
	KindIgnored      MemberKind = "ignored"
)

// Member describes one ar member of a .deb, as found in its 60-byte header.
type Member struct {
	// Name is the member name without ar's padding or GNU's trailing '/'.
	Name string `json:"name"`
	// Kind is what the member is for; see MemberKind.
	Kind MemberKind `json:"kind"`
	// Compression is set for the control and data members.
	Compression Compression `json:"compression,omitempty"`
	// Size is the length of the member's data in bytes.
	Size int64 `json:"size"`
	// Offset is where the member's data starts, counted from the first byte
	// of the archive.
	Offset int64 `json:"offset"`
	// ModTime, UID, GID and Mode are the header's other fields, zero when
	// they are not numbers (dpkg ignores them as well).
	ModTime time.Time   `json:"-"`
	UID     int         `json:"-"`
	GID     int         `json:"-"`
	Mode    fs.FileMode `json:"-"`
}

const (
	arHeaderSize = 60
	// maxDebianBinary bounds the debian-binary member; it normally holds
	// the 4 bytes "2.0\n".
	maxDebianBinary = 1024
)

// memberState is what a MemberReader expects next.
type memberState int

const (
	wantDebianBinary memberState = iota
	wantControl
	wantData
	afterData
)

// MemberReader reads the ar members of a .deb one by one, without
// decompressing anything. It enforces the structure dpkg requires: the ar
// magic, "debian-binary" first with a format version 2.x, then exactly one
// control.tar[.gz|.xz|.zst] and one data.tar[.gz|.xz|.zst], and members
// whose name starts with '_' anywhere after debian-binary. Everything else is
// an error wrapping ErrNotDeb, ErrCompression or ErrTruncated.
//
// It is the layer for code that needs the exact bytes of the members, such
// as computing or adding a debsigs "_gpgorigin" signature: call Next, then
// Read the member's data (or call Next again to skip it).
type MemberReader struct {
	r       io.Reader
	seeker  io.Seeker // non-nil when the input can seek
	total   int64     // input size from the current position, -1 if unknown
	off     int64     // bytes consumed from the start of the archive
	state   memberState
	cur     *Member
	remain  int64 // unread data bytes of cur
	pad     bool  // cur is followed by a padding byte
	dbin    *bytes.Reader
	version string
	members []Member
	err     error // sticky
}

// NewMemberReader checks the ar magic of r and returns a reader positioned
// before the first member. If r is also an io.Seeker (a regular file),
// skipped members are seeked over and member sizes are checked against the
// file size up front.
func NewMemberReader(r io.Reader) (*MemberReader, error) {
	m := &MemberReader{r: r, total: -1}
	if s, ok := r.(io.Seeker); ok {
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			if end, err := s.Seek(0, io.SeekEnd); err == nil {
				if _, err := s.Seek(cur, io.SeekStart); err == nil {
					m.seeker, m.total = s, end-cur
				}
			}
		}
	}
	var magic [len(arMagic)]byte
	n, err := io.ReadFull(r, magic[:])
	m.off += int64(n)
	switch {
	case err != nil && n == 0:
		return nil, fmt.Errorf("%w: the input is empty", ErrNotDeb)
	case err != nil:
		return nil, fmt.Errorf("%w: %w: the input ends inside the archive magic", ErrNotDeb, ErrTruncated)
	case string(magic[:]) != arMagic:
		if strings.HasPrefix(string(magic[:]), "0.9") {
			return nil, fmt.Errorf("%w: old-format (0.9x) packages are not supported", ErrNotDeb)
		}
		return nil, fmt.Errorf("%w: the input does not start with the ar magic %q", ErrNotDeb, arMagic)
	}
	return m, nil
}

// Next skips the rest of the current member and returns the header of the
// next one. It returns io.EOF at the end of a well-formed archive. The
// returned Member is also appended to Members.
func (m *MemberReader) Next() (*Member, error) {
	if m.err != nil {
		return nil, m.err
	}
	mem, err := m.next()
	if err != nil {
		m.err = err
		return nil, err
	}
	return mem, nil
}

func (m *MemberReader) next() (*Member, error) {
	if err := m.skipRest(); err != nil {
		return nil, err
	}
	var h [arHeaderSize]byte
	n, err := io.ReadFull(m.r, h[:])
	m.off += int64(n)
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			if m.state == afterData {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w: the archive ends before its %s member", ErrTruncated, m.wanted())
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the archive ends inside a member header at offset %d", ErrTruncated, m.off-int64(n))
		}
		return nil, fmt.Errorf("read member header at offset %d: %w", m.off-int64(n), err)
	}
	mem, err := parseArHeader(h[:], m.off)
	if err != nil {
		return nil, err
	}
	if m.total >= 0 && mem.Size > m.total-m.off {
		return nil, fmt.Errorf("member %s: %w: its header claims %d bytes but only %d remain in the file", mem.Name, ErrTruncated, mem.Size, max(m.total-m.off, 0))
	}
	if err := m.classify(mem); err != nil {
		return nil, err
	}
	m.cur, m.remain, m.pad = mem, mem.Size, mem.Size%2 == 1
	if mem.Kind == KindDebianBinary {
		if mem.Size > maxDebianBinary {
			return nil, fmt.Errorf("member debian-binary: %w: it is %d bytes, expected \"2.0\\n\"", ErrNotDeb, mem.Size)
		}
		buf := make([]byte, mem.Size)
		if _, err := io.ReadFull(m, buf); err != nil {
			return nil, fmt.Errorf("member debian-binary: %w", err)
		}
		v, err := parseFormatVersion(buf)
		if err != nil {
			return nil, fmt.Errorf("member debian-binary: %w", err)
		}
		m.version, m.dbin = v, bytes.NewReader(buf)
	}
	m.members = append(m.members, *mem)
	return mem, nil
}

// wanted names the member the archive should hold next.
func (m *MemberReader) wanted() string {
	switch m.state {
	case wantDebianBinary:
		return "debian-binary"
	case wantControl:
		return "control.tar"
	}
	return "data.tar"
}

// classify sets mem.Kind and mem.Compression and advances the state,
// refusing members in the wrong place.
func (m *MemberReader) classify(mem *Member) error {
	name := mem.Name
	if m.state == wantDebianBinary {
		if name != "debian-binary" {
			return fmt.Errorf("%w: the first member is %q, not debian-binary", ErrNotDeb, name)
		}
		mem.Kind, m.state = KindDebianBinary, wantControl
		return nil
	}
	isControl := name == "control.tar" || strings.HasPrefix(name, "control.tar.")
	isData := name == "data.tar" || strings.HasPrefix(name, "data.tar.")
	switch {
	case strings.HasPrefix(name, "_"):
		mem.Kind = KindIgnored
		return nil
	case name == "debian-binary":
		return fmt.Errorf("%w: a second debian-binary member at offset %d", ErrNotDeb, mem.Offset)
	case isControl && m.state == wantControl:
		mem.Kind, m.state = KindControl, wantData
	case isControl:
		return fmt.Errorf("%w: a second control member %s at offset %d", ErrNotDeb, name, mem.Offset)
	case isData && m.state == wantControl:
		return fmt.Errorf("%w: member %s comes before the control member", ErrNotDeb, name)
	case isData && m.state == wantData:
		mem.Kind, m.state = KindData, afterData
	case isData:
		return fmt.Errorf("%w: a second data member %s at offset %d", ErrNotDeb, name, mem.Offset)
	case m.state == afterData:
		return fmt.Errorf("%w: unexpected member %q after the data member; only members whose name starts with '_' may follow it", ErrNotDeb, name)
	default:
		return fmt.Errorf("%w: unknown member %q where %s was expected", ErrNotDeb, name, m.wanted())
	}
	c, err := compressionOfMember(name)
	if err != nil {
		return err
	}
	mem.Compression = c
	return nil
}

// Read reads the data of the current member. A member cut short by the end
// of the input is an error wrapping ErrTruncated (callers add the member's
// name).
func (m *MemberReader) Read(p []byte) (int, error) {
	if m.cur == nil {
		return 0, io.EOF
	}
	if m.dbin != nil {
		n, err := m.dbin.Read(p)
		m.remain -= int64(n)
		return n, err
	}
	if m.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > m.remain {
		p = p[:m.remain]
	}
	n, err := m.r.Read(p)
	m.off += int64(n)
	m.remain -= int64(n)
	if errors.Is(err, io.EOF) {
		if m.remain > 0 {
			err = fmt.Errorf("%w: the archive ends after %d of the member's %d bytes", ErrTruncated, m.cur.Size-m.remain, m.cur.Size)
		} else {
			err = nil
		}
	}
	if err != nil && m.err == nil {
		m.err = err
	}
	return n, err
}

// skipRest discards what is left of the current member and its padding
// byte. A missing padding byte at the very end of the input is tolerated, as
// ar does; the next header read then decides whether the archive is complete.
func (m *MemberReader) skipRest() error {
	if m.cur == nil {
		return nil
	}
	name, skip, pad := m.cur.Name, m.remain, m.pad
	if m.dbin != nil {
		skip = 0
	}
	m.cur, m.dbin, m.remain, m.pad = nil, nil, 0, false
	if err := m.discard(skip); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("member %s: %w: the archive ends inside it", name, ErrTruncated)
		}
		return fmt.Errorf("member %s: %w", name, err)
	}
	if pad {
		if err := m.discard(1); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("member %s: %w", name, err)
		}
	}
	return nil
}

// discard skips n bytes of input, seeking when possible. It returns io.EOF
// when the input ends first.
func (m *MemberReader) discard(n int64) error {
	if n == 0 {
		return nil
	}
	if m.seeker != nil {
		if m.total-m.off < n {
			m.off = m.total
			_, err := m.seeker.Seek(0, io.SeekEnd)
			if err == nil {
				err = io.EOF
			}
			return err
		}
		if _, err := m.seeker.Seek(n, io.SeekCurrent); err != nil {
			return err
		}
		m.off += n
		return nil
	}
	k, err := io.CopyN(io.Discard, m.r, n)
	m.off += k
	return err
}

// Members returns the headers of the members read so far, in archive order.
func (m *MemberReader) Members() []Member {
	return append([]Member(nil), m.members...)
}

// FormatVersion returns the format version from debian-binary ("2.0"),
// or "" before the first member has been read.
func (m *MemberReader) FormatVersion() string { return m.version }

// Offset returns the number of bytes of the archive consumed so far.
func (m *MemberReader) Offset() int64 { return m.off }

// parseArHeader decodes one 60-byte ar member header whose data starts at
// offset dataOff.
func parseArHeader(h []byte, dataOff int64) (*Member, error) {
	at := dataOff - arHeaderSize
	if string(h[58:60]) != "`\n" {
		return nil, fmt.Errorf("%w: corrupt member header at offset %d (bad terminator %q)", ErrNotDeb, at, h[58:60])
	}
	name := strings.TrimRight(string(h[0:16]), " ")
	name = strings.TrimSuffix(name, "/")
	if name == "" || strings.ContainsAny(name, "/ ") {
		return nil, fmt.Errorf("%w: member header at offset %d has an invalid name %q", ErrNotDeb, at, h[0:16])
	}
	for _, c := range []byte(name) {
		if c < 0x21 || c > 0x7e {
			return nil, fmt.Errorf("%w: member header at offset %d has a name with non-printable characters %q", ErrNotDeb, at, name)
		}
	}
	size, ok := arNumber(h[48:58], 10)
	if !ok {
		return nil, fmt.Errorf("member %s: %w: invalid size field %q at offset %d", name, ErrNotDeb, h[48:58], at)
	}
	mtime, _ := arNumber(h[16:28], 10)
	uid, _ := arNumber(h[28:34], 10)
	gid, _ := arNumber(h[34:40], 10)
	mode, _ := arNumber(h[40:48], 8)
	return &Member{
		Name:    name,
		Size:    size,
		Offset:  dataOff,
		ModTime: time.Unix(mtime, 0).UTC(),
		UID:     int(uid),
		GID:     int(gid),
		Mode:    fs.FileMode(mode) & fs.ModePerm,
	}, nil
}

// arNumber parses a space-padded numeric header field: digits first, then
// only spaces.
func arNumber(f []byte, base int) (int64, bool) {
	s := strings.TrimRight(string(f), " ")
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, base, 64)
	if err != nil || n < 0 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	return n, true
}

// parseFormatVersion checks a debian-binary member as dpkg-deb does: a
// first line "MAJOR.MINOR" of decimal numbers with major 2; anything after
// the first newline is ignored.
func parseFormatVersion(b []byte) (string, error) {
	line, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return "", fmt.Errorf("%w: format version %q has no newline; expected \"2.0\\n\"", ErrNotDeb, trunc(string(b)))
	}
	major, minor, ok := strings.Cut(string(line), ".")
	if !ok || !isDigits(major) || !isDigits(minor) {
		return "", fmt.Errorf("%w: invalid format version %q; expected \"2.0\"", ErrNotDeb, trunc(string(line)))
	}
	if n, err := strconv.Atoi(major); err != nil || n != 2 {
		return "", fmt.Errorf("%w: format version %s is not supported (only 2.x is)", ErrNotDeb, trunc(string(line)))
	}
	return string(line), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
