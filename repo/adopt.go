package repo

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/ulikunitz/xz"
	bolt "go.etcd.io/bbolt"
)

// adopt takes over a distribution that another tool (reprepro) published:
// when the state database knows nothing about d but dists/<codename>/ holds
// its indices, the packages they list are recorded as they are, after
// checking every pool file against the index's size and SHA256. Without
// this, the first command would publish indices holding only the new
// packages. It reports how many packages it adopted.
func (r *Repo) adopt(ctx context.Context, db *bolt.DB, d *Distribution) (int, error) {
	known, err := distKnown(db, d)
	if err != nil || known {
		return 0, err
	}
	if ok, err := r.storage.Exists(ctx, "dists/"+d.Codename+"/Release"); err != nil || !ok {
		return 0, err
	}
	srcs, err := r.readAdoptedSources(ctx, d) // source_adopt.go
	if err != nil {
		return 0, err
	}
	all, sums, err := r.readAdoptedBinaries(ctx, d)
	if err != nil {
		return 0, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := putAdoptedSources(tx, srcs); err != nil {
			return err
		}
		for _, s := range all {
			if err := putAdopted(tx, s, sums[s.filekey]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("adopt %s: %w", d.Codename, err)
	}
	if n := len(all) + len(srcs); n > 0 {
		r.opts.Warn(fmt.Sprintf("adopted %d package entries of %s from its published indices (dists/%s)", n, d.Codename, d.Codename))
	}
	return len(all) + len(srcs), nil
}

// distKnown tells whether the database already knows anything of d: an
// exported index or a package list of one of its targets.
func distKnown(db *bolt.DB, d *Distribution) (bool, error) {
	known := false
	err := db.View(func(tx *bolt.Tx) error {
		exp := bucket(tx, bExported)
		prefix := []byte(d.Codename + "/")
		if k, _ := exp.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			known = true
		}
		for _, t := range d.Targets() {
			if b, _ := targetBucket(tx, t, false); b != nil {
				known = true
			}
		}
		return nil
	})
	return known, err
}

// adoptedStanza is one published binary package entry found by adopt.
type adoptedStanza struct {
	t       Target
	p       *deb.Paragraph
	filekey string
}

// readAdoptedBinaries reads the published binary indices of d and checks
// every pool file they name against its entry, giving the entries and the
// checksums of each pool file.
func (r *Repo) readAdoptedBinaries(ctx context.Context, d *Distribution) ([]adoptedStanza, map[string]Checksums, error) {
	var all []adoptedStanza
	for _, t := range d.Targets() {
		if t.IsSource() {
			continue
		}
		ps, err := r.readPublished(ctx, d, t)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range ps {
			all = append(all, adoptedStanza{t, p, p.Get("Filename")})
		}
	}
	sums := map[string]Checksums{}
	for _, s := range all {
		if _, ok := sums[s.filekey]; ok {
			continue
		}
		c, err := r.verifyAdopted(ctx, s.t, s.p)
		if err != nil {
			return nil, nil, err
		}
		sums[s.filekey] = c
	}
	return all, sums, nil
}

// putAdopted records one adopted entry: its package list entry (with
// SHA512 added), the pool file's reference and checksums, and its target
// marked for export.
func putAdopted(tx *bolt.Tx, s adoptedStanza, c Checksums) error {
	b, err := targetBucket(tx, s.t, true)
	if err != nil {
		return err
	}
	v, err := deb.ParseVersion(s.p.Get("Version"))
	if err != nil {
		return fmt.Errorf("adopt %s: %s: %w", s.t, s.p.Get("Package"), err)
	}
	s.p.Delete("SHA512")
	s.p.SetAfter("Size", "SHA512", c.SHA512)
	if err := b.Put(pkgKey(s.p.Get("Package"), v.String()), pkgValue(s.filekey, []byte(s.p.String()))); err != nil {
		return err
	}
	if err := addRef(tx, s.filekey, s.t); err != nil {
		return err
	}
	if err := bucket(tx, bFiles).Put([]byte(s.filekey), c.encode()); err != nil {
		return err
	}
	return markDirty(tx, s.t)
}

// readPublished reads a target's published Packages index, in whichever
// form exists (uncompressed, .gz, .xz); a missing index is empty.
func (r *Repo) readPublished(ctx context.Context, d *Distribution, t Target) ([]*deb.Paragraph, error) {
	base := t.Dir() + "/" + d.DebIndices.Name
	for _, ext := range []string{"", ".gz", ".xz"} {
		in, err := r.openIndex(ctx, base+ext)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("adopt: %w", err)
		}
		defer in.Close()
		ps, err := deb.ParseParagraphs(in, base+ext)
		if err != nil {
			return nil, fmt.Errorf("adopt: %w", err)
		}
		for _, p := range ps {
			if p.Get("Package") == "" || p.Get("Version") == "" || !strings.HasPrefix(p.Get("Filename"), "pool/") {
				return nil, fmt.Errorf("adopt %s: %w: a stanza lacks Package, Version or a pool/ Filename", base+ext, ErrState)
			}
		}
		return ps, nil
	}
	return nil, nil
}

// openIndex opens a published index file, decompressed by its name's
// ending (.gz, .xz). A missing file gives an error matching
// fs.ErrNotExist.
func (r *Repo) openIndex(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, err := r.storage.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	in, err := decompressIndex(name, rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	if in == io.Reader(rc) {
		return rc, nil
	}
	return readCloser{in, rc}, nil
}

// decompressIndex decompresses an index read from r by its name's
// ending (.gz, .xz; anything else is read as it is).
func decompressIndex(name string, r io.Reader) (io.Reader, error) {
	var (
		in  io.Reader
		err error
	)
	switch {
	case strings.HasSuffix(name, ".gz"):
		in, err = gzip.NewReader(r)
	case strings.HasSuffix(name, ".xz"):
		in, err = xz.NewReader(r)
	default:
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// readCloser reads from a decompressor and closes what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// verifyAdopted hashes a published package's pool file and checks it
// against its stanza.
func (r *Repo) verifyAdopted(ctx context.Context, t Target, p *deb.Paragraph) (Checksums, error) {
	name := p.Get("Filename")
	rc, err := r.storage.Open(ctx, name)
	if err != nil {
		return Checksums{}, fmt.Errorf("adopt %s: %s %s: %w", t, p.Get("Package"), p.Get("Version"), err)
	}
	defer rc.Close()
	h := newHasher()
	if _, err := io.Copy(h, rc); err != nil {
		return Checksums{}, fmt.Errorf("adopt %s: %w", name, err)
	}
	c := h.sums()
	if size := p.Get("Size"); size != fmt.Sprint(c.Size) || (p.Get("SHA256") != "" && p.Get("SHA256") != c.SHA256) {
		return Checksums{}, fmt.Errorf("adopt %s: %w: %s differs from its index entry (Size %s, SHA256 %s); repair the repository with the tool that made it first",
			t, ErrCheck, name, size, p.Get("SHA256"))
	}
	return c, nil
}
