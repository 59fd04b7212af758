package signing

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
)

// DebOriginMember is the ar member that holds a package's origin signature,
// as debsigs writes it and debsig-verify reads it.
const DebOriginMember = "_gpgorigin"

const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
)

// SignedDeb describes a package written by [SignDeb].
type SignedDeb struct {
	// Fingerprint and KeyID are those of the primary key that signed (the
	// name of the debsig-verify policy directory is the KeyID).
	Fingerprint string `json:"fingerprint"`
	KeyID       string `json:"key_id"`
	// Created is the signature's creation time, also the mtime of the
	// _gpgorigin member.
	Created time.Time `json:"created"`
	// Replaced counts the old _gpgorigin members that were dropped.
	Replaced int `json:"replaced"`
	// Members are the ar members of the written package, in order, with
	// their offsets in the output.
	Members []deb.Member `json:"members"`
	// Size is the number of bytes written.
	Size int64 `json:"size"`
}

// SignDeb writes to w a copy of the .deb read from r (size bytes long)
// signed the debsigs way: an ar member "_gpgorigin" holding a binary
// detached signature over the data of the members debian-binary, control
// and data, concatenated in that order. It is what "debsigs --sign=origin"
// writes and what debsig-verify checks.
//
// Every other member is copied with its header and bytes untouched (the
// signature stays valid for any tool that reads the archive), except
// earlier _gpgorigin members, which are dropped: signing again replaces the
// signature. The new member is appended last. r is read once, streamed,
// never held in memory.
//
// The signer's primary key must sign: debsig-verify 0.28 (Debian 12)
// cannot check a signature made by a subkey, so such a key is refused
// (ErrUnsupportedKey). A broken input is an error wrapping deb.ErrNotDeb
// or deb.ErrTruncated; nothing is written to w before the input has been
// checked, but a failure later leaves w incomplete (see [SignDebFile]).
func SignDeb(ctx context.Context, s *Signer, w io.Writer, r io.ReaderAt, size int64) (*SignedDeb, error) {
	fp, err := s.SigningFingerprint()
	if err != nil {
		return nil, err
	}
	if primary := s.Key().Fingerprint(); fp != primary {
		return nil, fmt.Errorf("key %s: %w: it signs with its subkey %s, and debsig-verify 0.28 (Debian 12) cannot check a .deb signature made by a subkey; sign packages with a key whose primary key signs, as 'lampi-pkg key generate' makes them", primary, ErrUnsupportedKey, fp)
	}
	members, err := scanDeb(r, size)
	if err != nil {
		return nil, err
	}
	out := &SignedDeb{Fingerprint: fp, KeyID: s.Key().KeyID()}
	c := &archiveCopy{w: w}
	c.literal([]byte(arMagic))
	for _, m := range members {
		if m.Name == DebOriginMember {
			out.Replaced++
			continue
		}
		in := m.Offset
		c.section(r, in-arHeaderSize, arHeaderSize, false)
		m.Offset = c.planned
		c.section(r, in, m.Size, m.Kind != deb.KindIgnored)
		out.Members = append(out.Members, m)
		if m.Size%2 == 1 {
			c.literal([]byte{'\n'})
		}
	}
	sig, err := s.SignDetached(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("sign package: %w", err)
	}
	if c.written != c.planned {
		return nil, fmt.Errorf("%w: the package changed while it was being signed (%d bytes copied, %d expected)", deb.ErrTruncated, c.written, c.planned)
	}
	sigs, err := parseSignatures(sig)
	if err != nil {
		return nil, err
	}
	out.Created = sigs[0].CreationTime.UTC()
	hdr, err := arHeader(DebOriginMember, int64(len(sig)), out.Created)
	if err != nil {
		return nil, err
	}
	origin := deb.Member{Name: DebOriginMember, Kind: deb.KindIgnored, Size: int64(len(sig)), Offset: c.written + arHeaderSize, ModTime: out.Created, Mode: 0o644}
	out.Members = append(out.Members, origin)
	tail := append(hdr, sig...)
	if len(sig)%2 == 1 {
		tail = append(tail, '\n')
	}
	n, err := w.Write(tail)
	out.Size = c.written + int64(n)
	if err != nil {
		return nil, fmt.Errorf("write %s member: %w", DebOriginMember, err)
	}
	return out, nil
}

// SignDebFile signs the .deb at path in place, as [SignDeb] does: the
// signed package is written to a temporary file in the same directory,
// synced, given the original's permissions and renamed over it (over the
// target of a symbolic link, which stays a link), so that a failure at any
// point leaves the original untouched and no half-written package behind.
// Errors name the file.
func SignDebFile(ctx context.Context, s *Signer, path string) (res *SignedDeb, err error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	in, err := os.Open(target)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("sign %s: %w: not a regular file", path, deb.ErrNotDeb)
	}
	tmp, err := atomicfile.Create(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	defer tmp.Abort()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	res, err = SignDeb(ctx, s, bw, in, st.Size())
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Commit(target, st.Mode().Perm())
	}
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", path, err)
	}
	return res, nil
}

// VerifyDeb checks the origin signature (the _gpgorigin member) of the .deb
// read from r (size bytes long) against kr, as debsig-verify does once a
// policy selects the keyring: the signature must be good over
// debian-binary ‖ control ‖ data, by a key of kr valid at opts.Now (see
// [VerifyDetached] for the checks). The data member is streamed, never
// held in memory.
//
// A package without _gpgorigin is ErrUnsigned; one with two is
// ErrMalformed (which one would a verifier pick?); a broken archive wraps
// deb.ErrNotDeb or deb.ErrTruncated. Other members whose names start with
// '_' (other debsigs roles) are ignored.
func VerifyDeb(ctx context.Context, kr *Keyring, r io.ReaderAt, size int64, opts VerifyOptions) (*Signature, error) {
	members, err := scanDeb(r, size)
	if err != nil {
		return nil, err
	}
	var signed []io.Reader
	var origin *deb.Member
	for i, m := range members {
		switch {
		case m.Name == DebOriginMember && origin != nil:
			return nil, fmt.Errorf("%w: the package holds two %s members; sign it again with 'lampi-pkg sign', which keeps one", ErrMalformed, DebOriginMember)
		case m.Name == DebOriginMember:
			origin = &members[i]
		case m.Kind != deb.KindIgnored:
			signed = append(signed, io.NewSectionReader(r, m.Offset, m.Size))
		}
	}
	if origin == nil {
		return nil, fmt.Errorf("%w: the package has no %s member (sign it with 'lampi-pkg sign')", ErrUnsigned, DebOriginMember)
	}
	sig := io.NewSectionReader(r, origin.Offset, origin.Size)
	return VerifyDetached(ctx, kr, io.MultiReader(signed...), sig, opts)
}

// scanDeb reads the member headers of the .deb in r, checking its
// structure as dpkg does, without reading the members' data.
func scanDeb(r io.ReaderAt, size int64) ([]deb.Member, error) {
	mr, err := deb.NewMemberReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, err
	}
	for {
		_, err := mr.Next()
		if errors.Is(err, io.EOF) {
			return mr.Members(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// arHeader returns the 60-byte ar header of a member as dpkg writes it:
// uid and gid 0, mode 100644.
func arHeader(name string, size int64, mtime time.Time) ([]byte, error) {
	mt := max(mtime.Unix(), 0)
	h := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, mt, 0, 0, "100644", size)
	if len(name) > 15 || len(h) != arHeaderSize {
		return nil, fmt.Errorf("ar member %s: header field overflow (size %d)", name, size)
	}
	return []byte(h), nil
}

// archiveCopy is the reader SignDeb hands to the signer: reading it yields
// the signed bytes (the data of debian-binary, control and data) and, as a
// side effect, writes every byte of the output archive to w in order —
// magic, headers, padding and unsigned members too. One pass over the input
// thus both hashes and copies it.
type archiveCopy struct {
	w       io.Writer
	parts   []copyPart
	planned int64 // bytes the parts add up to
	written int64 // bytes written to w
}

type copyPart struct {
	r      io.Reader
	signed bool
}

func (c *archiveCopy) literal(b []byte) {
	c.parts = append(c.parts, copyPart{r: bytes.NewReader(b)})
	c.planned += int64(len(b))
}

func (c *archiveCopy) section(r io.ReaderAt, off, n int64, signed bool) {
	c.parts = append(c.parts, copyPart{r: io.NewSectionReader(r, off, n), signed: signed})
	c.planned += n
}

func (c *archiveCopy) Read(p []byte) (int, error) {
	for len(c.parts) > 0 {
		part := c.parts[0]
		if !part.signed {
			n, err := io.Copy(c.w, part.r)
			c.written += n
			if err != nil {
				return 0, err
			}
			c.parts = c.parts[1:]
			continue
		}
		n, err := part.r.Read(p)
		if n > 0 {
			m, werr := c.w.Write(p[:n])
			c.written += int64(m)
			if werr != nil {
				return 0, werr
			}
		}
		if errors.Is(err, io.EOF) {
			c.parts = c.parts[1:]
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, io.EOF
}
