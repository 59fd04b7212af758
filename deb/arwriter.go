package deb

import (
	"fmt"
	"io"
	"time"
)

// arMagic opens every ar archive.
const arMagic = "!<arch>\n"

// writeArHeader writes the 60-byte header of a member in the common ar
// format dpkg uses: name (≤ 15 chars, '/'-less, space-padded), mtime, uid 0,
// gid 0, mode 100644, size.
func writeArHeader(w io.Writer, name string, size int64, mtime time.Time) error {
	if len(name) > 15 {
		return fmt.Errorf("ar member name %q longer than 15 characters", name)
	}
	mt := mtime.Unix()
	if mt < 0 {
		mt = 0
	}
	hdr := fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, mt, 0, 0, "100644", size)
	if len(hdr) != 60 {
		return fmt.Errorf("ar member %s: header field overflow (size %d)", name, size)
	}
	_, err := io.WriteString(w, hdr)
	return err
}

// writeArMember writes a whole member: header, data, and the "\n" pad
// that keeps members on even offsets.
func writeArMember(w io.Writer, name string, data io.Reader, size int64, mtime time.Time) error {
	if err := writeArHeader(w, name, size, mtime); err != nil {
		return err
	}
	n, err := io.Copy(w, data)
	if err != nil {
		return fmt.Errorf("write ar member %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write ar member %s: wrote %d bytes, header says %d", name, n, size)
	}
	if size%2 == 1 {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return fmt.Errorf("write ar member %s: %w", name, err)
		}
	}
	return nil
}
