package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	bolt "go.etcd.io/bbolt"
)

// adoptedSource is a source package another tool (reprepro) published in
// a Sources index, with its pool files checked.
type adoptedSource struct {
	t       Target
	name    string
	version string
	stanza  []byte
	files   []string // the .dsc first
	sums    map[string]Checksums
}

// readAdoptedSources reads the published Sources indices of d's source
// targets (when adopt takes d over) and checks every pool file they list
// against the listed size and SHA256 (else MD5).
func (r *Repo) readAdoptedSources(ctx context.Context, d *Distribution) ([]adoptedSource, error) {
	var out []adoptedSource
	for _, t := range d.Targets() {
		if !t.IsSource() {
			continue
		}
		base := t.Dir() + "/" + d.DscIndices.Name
		var ps []*deb.Paragraph
		for _, ext := range []string{"", ".gz", ".xz"} {
			in, err := r.openIndex(ctx, base+ext)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("adopt: %w", err)
			}
			ps, err = deb.ParseParagraphs(in, base+ext)
			in.Close()
			if err != nil {
				return nil, fmt.Errorf("adopt: %w", err)
			}
			break
		}
		for _, p := range ps {
			s, err := r.checkAdoptedSource(ctx, t, p)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// checkAdoptedSource checks one Sources stanza and the pool files it lists.
func (r *Repo) checkAdoptedSource(ctx context.Context, t Target, p *deb.Paragraph) (adoptedSource, error) {
	name, version, dir := p.Get("Package"), p.Get("Version"), p.Get("Directory")
	if name == "" || version == "" || !strings.HasPrefix(dir, "pool/") {
		return adoptedSource{}, fmt.Errorf("adopt %s: %w: a Sources stanza lacks Package, Version or a pool/ Directory", t, ErrState)
	}
	v, err := deb.ParseVersion(version)
	if err != nil {
		return adoptedSource{}, fmt.Errorf("adopt %s: %s: %w", t, name, err)
	}
	want := map[string][2]string{} // file → size, digest
	var order []string
	for _, field := range []string{"Checksums-Sha256", "Files"} {
		for _, line := range strings.Split(p.Get(field), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			if _, ok := want[f[2]]; !ok {
				want[f[2]] = [2]string{f[1], f[0]}
				order = append(order, f[2])
			}
		}
	}
	dsc := name + "_" + v.WithoutEpoch() + ".dsc"
	if _, ok := want[dsc]; !ok {
		return adoptedSource{}, fmt.Errorf("adopt %s: %w: %s %s: its Sources stanza does not list %s", t, ErrState, name, version, dsc)
	}
	s := adoptedSource{t: t, name: name, version: v.String(), stanza: []byte(p.String()), sums: map[string]Checksums{}}
	s.files = append(s.files, dir+"/"+dsc)
	for _, f := range order {
		if f != dsc {
			s.files = append(s.files, dir+"/"+f)
		}
	}
	for _, f := range s.files {
		rc, err := r.storage.Open(ctx, f)
		if err != nil {
			return adoptedSource{}, fmt.Errorf("adopt %s: %s %s: %w", t, name, version, err)
		}
		h := newHasher()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return adoptedSource{}, fmt.Errorf("adopt %s: %w", f, err)
		}
		c := h.sums()
		w := want[f[strings.LastIndexByte(f, '/')+1:]]
		if w[0] != fmt.Sprint(c.Size) || w[1] != c.SHA256 && w[1] != c.MD5 {
			return adoptedSource{}, fmt.Errorf("adopt %s: %w: %s differs from its Sources entry (size %s, checksum %s); repair the repository with the tool that made it first",
				t, ErrCheck, f, w[0], w[1])
		}
		s.sums[f] = c
	}
	return s, nil
}

// putAdoptedSources records adopted source packages in their targets.
func putAdoptedSources(tx *bolt.Tx, srcs []adoptedSource) error {
	for _, s := range srcs {
		b, err := targetBucket(tx, s.t, true)
		if err != nil {
			return err
		}
		if err := b.Put(pkgKey(s.name, s.version), pkgValue(s.files[0], s.stanza)); err != nil {
			return err
		}
		for _, f := range s.files {
			if err := addRef(tx, f, s.t); err != nil {
				return err
			}
			if err := bucket(tx, bFiles).Put([]byte(f), s.sums[f].encode()); err != nil {
				return err
			}
		}
		if err := markDirty(tx, s.t); err != nil {
			return err
		}
	}
	return nil
}
