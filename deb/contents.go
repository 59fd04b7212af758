package deb

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxEntries bounds Contents, which holds every entry in memory; iterate
// with Reader.Next to list archives of any size.
const maxEntries = 1 << 20

// EntryType is the kind of a tarball entry.
type EntryType string

// The entry types a .deb may hold.
const (
	TypeFile      EntryType = "file"
	TypeDir       EntryType = "dir"
	TypeSymlink   EntryType = "symlink"
	TypeHardlink  EntryType = "hardlink"
	TypeCharDev   EntryType = "char"
	TypeBlockDev  EntryType = "block"
	TypeFIFO      EntryType = "fifo"
	typeUnhandled EntryType = ""
)

// Entry is one entry of a data.tar (or control.tar) as stored. Name and
// Linkname are exactly as in the archive ("./usr/bin/hi"); nothing has been
// checked for safety, see Extract for that.
type Entry struct {
	Name string
	Type EntryType
	// Mode holds the permission bits and fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky; the type is in Type.
	Mode     fs.FileMode
	UID, GID int
	User     string // owner name, "" if the archive has none
	Group    string
	Size     int64 // content length of regular files, 0 otherwise
	ModTime  time.Time
	Linkname string // target of a symlink or hard link
	DevMajor int64  // device numbers of character and block devices
	DevMinor int64
}

// entryJSON is the stable JSON form of an Entry; see MarshalJSON.
type entryJSON struct {
	Name  string    `json:"name"`
	Type  EntryType `json:"type"`
	Mode  string    `json:"mode"`
	UID   int       `json:"uid"`
	GID   int       `json:"gid"`
	User  string    `json:"user,omitempty"`
	Group string    `json:"group,omitempty"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
	Link  string    `json:"link,omitempty"`
	Major *int64    `json:"major,omitempty"`
	Minor *int64    `json:"minor,omitempty"`
}

// MarshalJSON encodes the entry as {"name", "type", "mode" (octal string
// such as "0755" or "4755"), "uid", "gid", "user", "group", "size",
// "mtime" (RFC 3339, UTC), "link" (symlinks and hard links), "major" and
// "minor" (devices)}.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{
		Name: e.Name, Type: e.Type, Mode: fmt.Sprintf("%04o", unixMode(e.Mode)),
		UID: e.UID, GID: e.GID, User: e.User, Group: e.Group,
		Size: e.Size, MTime: e.ModTime.UTC(), Link: e.Linkname,
	}
	if e.Type == TypeCharDev || e.Type == TypeBlockDev {
		j.Major, j.Minor = &e.DevMajor, &e.DevMinor
	}
	return marshalJSON(j)
}

// marshalJSON is json.Marshal without HTML escaping, so that names and
// control fields ("Maintainer: A <a@b.c>") read as they are.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// unixMode converts permission and special bits to their Unix octal form.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// entryFromHeader converts a tar header; unknown types are errors.
func entryFromHeader(h *tar.Header) (*Entry, error) {
	e := &Entry{
		Name: h.Name, Mode: modeFromUnix(uint32(h.Mode & 0o7777)),
		UID: h.Uid, GID: h.Gid, User: h.Uname, Group: h.Gname,
		ModTime: h.ModTime, Linkname: h.Linkname,
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse:
		e.Type, e.Size = TypeFile, h.Size
	case tar.TypeDir:
		e.Type = TypeDir
	case tar.TypeSymlink:
		e.Type = TypeSymlink
	case tar.TypeLink:
		e.Type = TypeHardlink
	case tar.TypeChar, tar.TypeBlock:
		e.Type, e.DevMajor, e.DevMinor = TypeCharDev, h.Devmajor, h.Devminor
		if h.Typeflag == tar.TypeBlock {
			e.Type = TypeBlockDev
		}
	case tar.TypeFifo:
		e.Type = TypeFIFO
	default:
		return nil, fmt.Errorf("entry %s: %w: unsupported tar entry type %q", quoteName(h.Name), ErrCorrupt, h.Typeflag)
	}
	if e.Name == "" {
		return nil, fmt.Errorf("%w: a tar entry has an empty name", ErrCorrupt)
	}
	if (e.Type == TypeSymlink || e.Type == TypeHardlink) && e.Linkname == "" {
		return nil, fmt.Errorf("entry %s: %w: %s without a target", quoteName(e.Name), ErrCorrupt, e.Type)
	}
	return e, nil
}

// Contents returns every entry of the data member, in archive order. It
// refuses archives of more than a million entries; use Reader.Next to
// stream larger ones.
func Contents(r io.Reader) ([]Entry, error) {
	dr, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	var out []Entry
	for {
		e, err := dr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(out) == maxEntries {
			return nil, fmt.Errorf("%w: more than %d entries in the data member", ErrTooLarge, maxEntries)
		}
		out = append(out, *e)
	}
}

// WriteText writes the information as "dpkg-deb --info" does: the format
// version and size, one line per control file (size, lines, '*' for
// executables, the interpreter of scripts), then the control file indented
// by one space.
func (i *Info) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, " new Debian package, version %s.\n", i.FormatVersion)
	fmt.Fprintf(&b, " size %d bytes: control archive=%d bytes.\n", i.Size, i.Control.Member.Size)
	var top []*ControlFile
	for k := range i.Control.Files {
		if f := &i.Control.Files[k]; !strings.Contains(f.Path, "/") {
			top = append(top, f)
		}
	}
	sort.Slice(top, func(a, b int) bool { return top[a].Path < top[b].Path })
	for _, f := range top {
		if f.Type != TypeFile {
			fmt.Fprintf(&b, "     not a plain file          %s\n", escapeName(f.Path))
			continue
		}
		x := ' '
		if f.Mode&0o100 != 0 {
			x = '*'
		}
		fmt.Fprintf(&b, " %7d bytes, %5d lines   %c  %-20s %s\n", len(f.Data), f.Lines(), x, clip(escapeName(f.Path), 127), clip(f.Interpreter(), 127))
	}
	bol := true
	for _, c := range i.Control.Raw {
		if bol {
			b.WriteByte(' ')
		}
		b.WriteByte(c)
		bol = c == '\n'
	}
	if !bol {
		b.WriteByte('\n')
	}
	_, err := b.WriteTo(w)
	return err
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Lines counts the lines of a control file as "dpkg-deb --info" does: the
// newline characters, except one that is the first character, or the
// second after a '#' (dpkg-deb reads those two while looking for "#!" and
// does not count them: ucf's templates, which start with an empty line,
// have one line less than newlines).
func (f *ControlFile) Lines() int {
	n := bytes.Count(f.Data, []byte("\n"))
	switch d := f.Data; {
	case len(d) > 0 && d[0] == '\n':
		n--
	case len(d) > 1 && d[0] == '#' && d[1] == '\n':
		n--
	}
	return n
}

// Interpreter returns the "#!" line's interpreter of a script ("#!/bin/sh"),
// or "".
func (f *ControlFile) Interpreter() string {
	d, ok := bytes.CutPrefix(f.Data, []byte("#!"))
	if !ok {
		return ""
	}
	d = bytes.TrimLeft(d, " ")
	end := bytes.IndexAny(d, " \t\n\r\v\f")
	if end < 0 {
		end = len(d)
	}
	return "#!" + escapeName(string(d[:min(end, 4096)]))
}

// MarshalJSON encodes a control file as {"name", "type", "mode", "size",
// "lines", "executable", "interpreter"}; the content is not included.
func (f ControlFile) MarshalJSON() ([]byte, error) {
	return marshalJSON(struct {
		Name        string    `json:"name"`
		Type        EntryType `json:"type"`
		Mode        string    `json:"mode"`
		Size        int64     `json:"size"`
		Lines       int       `json:"lines"`
		Executable  bool      `json:"executable"`
		Interpreter string    `json:"interpreter,omitempty"`
	}{f.Path, f.Type, fmt.Sprintf("%04o", unixMode(f.Mode)), int64(len(f.Data)), f.Lines(), f.Mode&0o100 != 0, f.Interpreter()})
}

// MarshalJSON encodes the control member as {"member" (its name),
// "files" (see ControlFile.MarshalJSON), "fields" (a list of {"name",
// "value"} in file order; multi-line values keep their continuation lines)}.
func (c *ControlInfo) MarshalJSON() ([]byte, error) {
	type field struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	fields := []field{}
	for _, f := range c.Paragraph.Fields {
		fields = append(fields, field{f.Name, f.Value})
	}
	files := c.Files
	if files == nil {
		files = []ControlFile{}
	}
	return marshalJSON(struct {
		Member string        `json:"member"`
		Files  []ControlFile `json:"files"`
		Fields []field       `json:"fields"`
	}{c.Member.Name, files, fields})
}

// ContentsWriter writes entries as "dpkg-deb --contents" (GNU tar's
// verbose listing) does, one line per entry:
//
//	drwxr-xr-x root/root         0 2024-01-01 00:00 ./opt/
//	lrwxrwxrwx root/root         0 2024-01-01 00:00 ./opt/hi -> bin/hi
//	hrw-r--r-- root/root         0 2024-01-01 00:00 ./opt/b link to ./opt/a
//
// Times are shown in Location, as tar shows them in the local time zone.
// Like tar, the owner and size column widens for good once a wider value
// has been seen, so the writer keeps state between lines.
type ContentsWriter struct {
	w        io.Writer
	loc      *time.Location
	ugsWidth int
}

// NewContentsWriter returns a writer of listing lines to w, showing times
// in loc (time.UTC if nil).
func NewContentsWriter(w io.Writer, loc *time.Location) *ContentsWriter {
	if loc == nil {
		loc = time.UTC
	}
	return &ContentsWriter{w: w, loc: loc, ugsWidth: 19}
}

// Write writes the listing line of e.
func (cw *ContentsWriter) Write(e *Entry) error {
	user, group := e.User, e.Group
	if user == "" {
		user = strconv.Itoa(e.UID)
	}
	if group == "" {
		group = strconv.Itoa(e.GID)
	}
	size := strconv.FormatInt(e.Size, 10)
	if e.Type == TypeCharDev || e.Type == TypeBlockDev {
		size = fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor)
	}
	pad := len(user) + 1 + len(group) + 1 + len(size)
	cw.ugsWidth = max(cw.ugsWidth, pad)
	var b strings.Builder
	b.WriteString(modeString(e))
	fmt.Fprintf(&b, " %s/%s %*s %s %s", user, group, cw.ugsWidth-pad+len(size), size,
		e.ModTime.In(cw.loc).Format("2006-01-02 15:04"), escapeName(e.Name))
	switch e.Type {
	case TypeSymlink:
		b.WriteString(" -> " + escapeName(e.Linkname))
	case TypeHardlink:
		b.WriteString(" link to " + escapeName(e.Linkname))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(cw.w, b.String())
	return err
}

// modeString renders type and permissions as tar does ("-rwsr-xr-x").
func modeString(e *Entry) string {
	t := map[EntryType]byte{TypeFile: '-', TypeDir: 'd', TypeSymlink: 'l', TypeHardlink: 'h',
		TypeCharDev: 'c', TypeBlockDev: 'b', TypeFIFO: 'p'}[e.Type]
	if t == 0 {
		t = '?'
	}
	m := unixMode(e.Mode)
	b := []byte{t}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	special := func(pos int, bit uint32, set, unset byte) {
		if m&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(3, 0o4000, 's', 'S')
	special(6, 0o2000, 's', 'S')
	special(9, 0o1000, 't', 'T')
	return string(b)
}

// escapeName escapes a name for one line of output as tar does: a
// backslash is doubled, control characters become C escapes or octal, and
// bytes that are not UTF-8 become octal, so a hostile name cannot forge
// lines or terminal sequences.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, "\\%03o", s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			if e, ok := cEscapes[r]; ok {
				b.WriteString(e)
			} else {
				for _, c := range []byte(s[i : i+size]) {
					fmt.Fprintf(&b, "\\%03o", c)
				}
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

var cEscapes = map[rune]string{'\a': `\a`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`, '\v': `\v`}
