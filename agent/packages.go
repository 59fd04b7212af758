package agent

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/ulikunitz/xz"
)

// Candidate is one package version a Packages index offers.
type Candidate struct {
	Package      string
	Version      string
	Architecture string
	Filename     string
	Size         int64
	SHA256       string
	// Source and SourceVersion name the source package (apt seeds the
	// phasing draw with them).
	Source        string
	SourceVersion string
	// Phased is Phased-Update-Percentage (0–100), or -1 when absent.
	Phased int
	// Groups are the rollout groups offered the version whatever Phased
	// (the stanza's state.PhasedGroupsField); an invalid name is dropped.
	Groups []string
	// Err says why the stanza cannot be used (unsafe Filename, missing
	// checksum…); such a candidate is never installed.
	Err error
	// Base is the repository URI the Filename is relative to.
	Base string
}

// safeFilename checks that an index's Filename stays inside the repository.
func safeFilename(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty Filename", ErrUnsafePath)
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsAny(name, "\x00?#%") ||
		strings.Contains(name, "://") || path.Clean(name) != name || name == "." || name == ".." ||
		strings.HasPrefix(name, "../") || !strings.HasSuffix(name, ".deb") {
		return fmt.Errorf("%w: Filename %q leaves the repository or is not a plain .deb path", ErrUnsafePath, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return fmt.Errorf("%w: Filename %q leaves the repository", ErrUnsafePath, name)
		}
	}
	return nil
}

// ParsePackages reads a Packages index into candidates. Stanzas that
// cannot be trusted keep their error in Candidate.Err.
func ParsePackages(data []byte, name, base string) ([]Candidate, error) {
	paras, err := deb.ParseParagraphs(bytes.NewReader(data), name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	out := make([]Candidate, 0, len(paras))
	for _, p := range paras {
		c := Candidate{Package: p.Get("Package"), Version: p.Get("Version"), Architecture: p.Get("Architecture"),
			Filename: p.Get("Filename"), SHA256: strings.ToLower(p.Get("SHA256")), Phased: -1, Base: base}
		line := 0
		if f, ok := p.Field("Package"); ok {
			line = f.Line
		}
		bad := func(format string, a ...any) {
			if c.Err == nil {
				c.Err = fmt.Errorf("%s:%d: %s %s: %s", name, line, c.Package, c.Version, fmt.Sprintf(format, a...))
			}
		}
		if err := deb.ValidatePackageName(c.Package); err != nil {
			continue // no name to attach an error to
		}
		if _, err := deb.ParseVersion(c.Version); err != nil {
			bad("%v", err)
		}
		if err := deb.ValidateArchitecture(c.Architecture); err != nil {
			bad("%v", err)
		}
		if err := safeFilename(c.Filename); err != nil {
			c.Err = fmt.Errorf("%s:%d: %s %s: %w", name, line, c.Package, c.Version, err)
		}
		size, err := strconv.ParseInt(p.Get("Size"), 10, 64)
		if err != nil || size <= 0 {
			bad("%v: no valid Size", ErrIndex)
		}
		c.Size = size
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != sha256.Size {
			bad("%v: no valid SHA256", ErrIndex)
		}
		c.Source, c.SourceVersion = c.Package, c.Version
		if s := p.Get("Source"); s != "" {
			n, v, ok := strings.Cut(s, " ")
			c.Source = n
			if ok {
				c.SourceVersion = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "("), ")")
			}
		}
		if s, ok := p.Lookup("Phased-Update-Percentage"); ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 100 {
				bad("Phased-Update-Percentage %q is not 0–100", s)
			}
			c.Phased = n
		}
		if s, ok := p.Lookup(state.PhasedGroupsField); ok {
			// Only ever widens who is eligible: a damaged list offers
			// nobody, and the percentage still holds.
			c.Groups, _ = state.ParseGroups(s)
		}
		out = append(out, c)
	}
	return out, nil
}

// decompress returns the content of an index file by its extension,
// bounded by limit bytes of output.
func decompress(data []byte, ext string, limit int64) ([]byte, error) {
	var r io.Reader
	switch ext {
	case "":
		return data, nil
	case ".gz":
		z, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrIndex, err)
		}
		r = z
	case ".xz":
		z, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: xz: %v", ErrIndex, err)
		}
		r = z
	default:
		return nil, fmt.Errorf("%w: unsupported compression %q", ErrIndex, ext)
	}
	out, err := readBounded(r, limit, "decompress Packages"+ext)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
