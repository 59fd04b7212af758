package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	bolt "go.etcd.io/bbolt"
)

// Source packages live in the source target of a component
// ("bookworm|main|source"), which exists when the distribution's
// Architectures list "source". An entry's key is the .dsc's Source and
// Version; its value is, like a binary's, pool file key "\x00" stanza —
// the pool key of the .dsc, and the Sources stanza. The stanza lists
// every pool file of the entry (Directory plus the Files lines, the .dsc
// first), so entryFiles reads them back from any stored value: every
// verb that adds or removes entries references and releases all of an
// entry's files through entryFiles, binary or source alike.

// sourcePackage is a source package read from a .dsc and checked
// against its files, ready to be added to a source target.
type sourcePackage struct {
	dsc       *deb.Dsc
	name      string
	version   deb.Version
	component string
	section   string
	priority  string
	// files are the .dsc first, then the files it lists, in its order.
	files []sourceFile
}

// sourceFile is one file of a source package: where it is read from,
// where it goes in the pool and its checksums.
type sourceFile struct {
	src     string
	filekey string
	sums    Checksums
	// listed is set instead of src and sums for a file that is not next
	// to the .dsc: the pool must hold it with these checksums.
	listed *deb.ListedFile
}

// readSource reads and checks a .dsc and the files it lists (next to
// it): every size and checksum the .dsc gives must match. Section and
// priority come from o, else from section/priority (a .changes line),
// else from debian/control in the .debian.tar.* or .diff.gz, as reprepro
// takes them.
func readSource(path string, d *Distribution, o IncludeOptions, section, priority string) (*sourcePackage, error) {
	raw, text, err := readMaybeSigned(path, "source package")
	if err != nil {
		return nil, err
	}
	dsc, err := deb.ParseDsc(bytes.NewReader(text), path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	sp := &sourcePackage{dsc: dsc, name: dsc.Source, version: dsc.Version}
	want := dsc.Source + "_" + dsc.Version.WithoutEpoch() + ".dsc"
	if filepath.Base(path) != want {
		return nil, fmt.Errorf("%s: %w: a .dsc of %s %s must be named %s (the name apt and dpkg-source expect)", path, ErrBadPackage, dsc.Source, dsc.Version, want)
	}
	if o.Section != "" {
		section = o.Section
	}
	if o.Priority != "" {
		priority = o.Priority
	}
	dir := filepath.Dir(path)
	sp.files = append(sp.files, sourceFile{src: path, sums: sumBytes(raw)})
	for _, lf := range dsc.Files {
		if _, err := os.Stat(filepath.Join(dir, lf.Name)); errors.Is(err, fs.ErrNotExist) {
			// Not uploaded again (an original tarball): the pool must
			// have it, as addSource checks.
			lf := lf
			sp.files = append(sp.files, sourceFile{listed: &lf})
			continue
		}
		f, err := verifyListed(dir, lf, path)
		if err != nil {
			return nil, err
		}
		sp.files = append(sp.files, f)
		if section == "" || priority == "" {
			if k := deb.ClassifyFile(lf.Name); k == deb.UploadSourcePart && (strings.Contains(lf.Name, ".debian.tar.") || strings.HasSuffix(lf.Name, ".diff.gz")) {
				s, p, err := controlSectionPriority(f.src)
				if err != nil {
					return nil, err
				}
				section, priority = firstNonEmpty(section, s), firstNonEmpty(priority, p)
			}
		}
	}
	if section == "" || priority == "" {
		return nil, fmt.Errorf("%s: %w: no Section or no Priority for %s (the .dsc has none and debian/control in its Debian part gives none); give them with -S and -P",
			path, ErrBadPackage, dsc.Source)
	}
	sp.section, sp.priority = section, priority
	sp.component = o.Component
	if sp.component == "" {
		sp.component = guessComponent(d, section)
	}
	pdir := PoolDir(sp.component, sp.name)
	for i, f := range sp.files {
		if f.listed != nil {
			sp.files[i].filekey = pdir + "/" + f.listed.Name
		} else {
			sp.files[i].filekey = pdir + "/" + filepath.Base(f.src)
		}
	}
	return sp, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// controlSectionPriority reads Section and Priority of the source
// paragraph of debian/control in a Debian source part.
func controlSectionPriority(path string) (section, priority string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("read source package: %w", err)
	}
	defer f.Close()
	p, err := deb.DebianControlFromSource(f, path)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	return p.Get("Section"), p.Get("Priority"), nil
}

// verifyListed checks a file named by a .dsc or .changes (listing): it
// must be in dir, with the size and every checksum the listing gives.
func verifyListed(dir string, lf deb.ListedFile, listing string) (sourceFile, error) {
	p := filepath.Join(dir, lf.Name)
	f, err := os.Open(p)
	if err != nil {
		return sourceFile{}, fmt.Errorf("%s lists %s: %w: %w (it must be next to %s)", listing, lf.Name, ErrBadPackage, err, filepath.Base(listing))
	}
	defer f.Close()
	h := newHasher()
	if _, err := io.Copy(h, f); err != nil {
		return sourceFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	c := h.sums()
	for _, x := range []struct{ name, want, got string }{
		{"MD5", lf.MD5, c.MD5}, {"SHA1", lf.SHA1, c.SHA1}, {"SHA256", lf.SHA256, c.SHA256},
	} {
		if x.want != "" && x.want != x.got {
			return sourceFile{}, fmt.Errorf("%s: %w: %s is %s but %s lists %s; the file was changed or damaged after the listing was made",
				p, ErrChecksum, x.name, x.got, filepath.Base(listing), x.want)
		}
	}
	if c.Size != lf.Size {
		return sourceFile{}, fmt.Errorf("%s: %w: %d bytes but %s lists %d", p, ErrChecksum, c.Size, filepath.Base(listing), lf.Size)
	}
	return sourceFile{src: p, sums: c}, nil
}

// stanza builds the Sources stanza as reprepro writes it: Package (the
// .dsc's Source) first, the other .dsc fields in their order (without
// the file lists), then Priority, Section, Directory and the file lists
// with the .dsc itself first.
func (sp *sourcePackage) stanza() []byte {
	var b bytes.Buffer
	write := func(name, value string) { writeStanzaField(&b, name, value) }
	write("Package", sp.name)
	for _, f := range sp.dsc.Paragraph.Fields {
		switch strings.ToLower(f.Name) {
		case "source", "files", "checksums-sha1", "checksums-sha256", "checksums-sha512",
			"priority", "section", "directory", "package":
			continue
		}
		write(f.Name, f.Value)
	}
	write(fPriority, sp.priority)
	write(fSection, sp.section)
	write("Directory", PoolDir(sp.component, sp.name))
	for _, l := range []struct {
		name string
		get  func(Checksums) string
	}{
		{"Files", func(c Checksums) string { return c.MD5 }},
		{"Checksums-Sha1", func(c Checksums) string { return c.SHA1 }},
		{"Checksums-Sha256", func(c Checksums) string { return c.SHA256 }},
	} {
		b.WriteString(l.name + ":\n")
		for _, f := range sp.files {
			fmt.Fprintf(&b, " %s %d %s\n", l.get(f.sums), f.sums.Size, filepath.Base(f.filekey))
		}
	}
	return b.Bytes()
}

// entry is the source package as an entry of its target in d.
func (sp *sourcePackage) entry(d *Distribution) Entry {
	return Entry{
		Target:  Target{Codename: d.Codename, Component: sp.component, Arch: SourceArch},
		Package: sp.name, Version: sp.version.String(), Architecture: SourceArch,
		File: sp.files[0].filekey, Stanza: sp.stanza(),
	}
}

// entryFiles returns every pool file of a stored package value: the one
// file of a binary package, or the .dsc and the files it lists of a
// source package (its stanza's Directory and Files).
func entryFiles(v []byte) []string {
	fk, stanza := splitPkgValue(v)
	if !strings.HasSuffix(fk, ".dsc") {
		return []string{fk}
	}
	return sourceStanzaFiles(fk, stanza)
}

// Files returns every pool file of the entry: File for a binary package;
// the .dsc and the files it lists for a source package.
func (e Entry) Files() []string {
	if !strings.HasSuffix(e.File, ".dsc") {
		return []string{e.File}
	}
	return sourceStanzaFiles(e.File, e.Stanza)
}

// sourceStanzaFiles reads the pool files a Sources stanza lists (dsc is
// the pool key of its .dsc, listed first).
func sourceStanzaFiles(dsc string, stanza []byte) []string {
	dir := stanzaField(stanza, "Directory")
	out := []string{dsc}
	in := false
	for _, line := range strings.Split(string(stanza), "\n") {
		switch {
		case strings.HasPrefix(line, "Files:"):
			in = true
		case in && strings.HasPrefix(line, " "):
			f := strings.Fields(line)
			if len(f) == 3 && dir+"/"+f[2] != dsc {
				out = append(out, dir+"/"+f[2])
			}
		default:
			in = false
		}
	}
	return out
}

// entrySource returns the source package name and version an entry
// belongs to: its own for a source entry; for a binary the Source field
// ("name" or "name (version)"), else its own name and version.
func entrySource(e Entry) (name, version string) {
	if e.Target.IsSource() {
		return e.Package, e.Version
	}
	src := stanzaField(e.Stanza, "Source")
	if src == "" {
		return e.Package, e.Version
	}
	name, rest, ok := strings.Cut(src, " ")
	if !ok {
		return name, e.Version
	}
	return name, strings.Trim(strings.TrimSpace(rest), "()")
}

// IncludeDsc adds a source package (a .dsc and the files it lists, next
// to it) to a distribution whose Architectures list "source", as
// "reprepro includedsc": every listed size and checksum is checked, the
// files go to pool/COMPONENT/PREFIX/SOURCE/ and the Sources index is
// published. The component is o.Component, else guessed from the
// section (-S, else debian/control's).
func (r *Repo) IncludeDsc(ctx context.Context, codename, file string, o IncludeOptions) (*Result, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	if err := checkSourceInclude("includedsc", d, o); err != nil {
		return nil, err
	}
	sp, err := readSource(file, d, o, "", "")
	if err != nil {
		return nil, err
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	staging := newStager(r)
	defer staging.remove()
	res := &Result{}
	var unref, written []string
	err = w.db.Update(func(tx *bolt.Tx) error {
		var err error
		unref, written, err = r.addSource(ctx, tx, d, sp, staging, res)
		return err
	})
	if err != nil {
		r.undoPool(ctx, staging, nil, written)
		return nil, err
	}
	r.log(d, logLines(d, res.Changes))
	return res, r.finish(ctx, w, []*Distribution{d}, unref, res)
}

// checkSourceInclude refuses a source package for a distribution without
// source targets, or one that is read-only or lacks the component.
func checkSourceInclude(verb string, d *Distribution, o IncludeOptions) error {
	if !d.HasSource {
		return fmt.Errorf("%s %s: %w: source packages need \"source\" in Architectures (%s:%d)", verb, d.Codename, ErrArchitecture, d.File, d.Line)
	}
	if d.ReadOnly {
		return fmt.Errorf("%s %s: %w (ReadOnly in %s:%d)", verb, d.Codename, ErrReadOnly, d.File, d.Line)
	}
	if o.Component != "" && !d.HasComponent(o.Component) {
		return fmt.Errorf("%s %s: %w: %q (Components: %v)", verb, d.Codename, ErrComponent, o.Component, d.Components)
	}
	return nil
}

// addSource adds a checked source package to its target in d under the
// version rules, and copies its files into the pool when it was added
// (those the pool already has with the same checksums are shared). A
// pool file of the same name with other checksums is refused
// (ErrVersionClash). It returns the pool files that lost their last
// reference and those it wrote (to remove if the transaction fails).
func (r *Repo) addSource(ctx context.Context, tx *bolt.Tx, d *Distribution, sp *sourcePackage, st *stager, res *Result) (unref, written []string, err error) {
	var fresh []sourceFile
	for i, f := range sp.files {
		known, ok, err := fileSums(tx, f.filekey)
		if err != nil {
			return nil, nil, err
		}
		if lf := f.listed; lf != nil {
			if !ok {
				return nil, nil, fmt.Errorf("%s %s: %w: %s is neither next to the .dsc nor in the pool (%s); upload it with the source package",
					sp.name, sp.version, ErrBadPackage, lf.Name, f.filekey)
			}
			if known.Size != lf.Size || lf.MD5 != "" && lf.MD5 != known.MD5 || lf.SHA1 != "" && lf.SHA1 != known.SHA1 || lf.SHA256 != "" && lf.SHA256 != known.SHA256 {
				return nil, nil, fmt.Errorf("%s %s: %w: the .dsc lists %s with other checksums than the pool's %s; the source package is not built on the original in the repository",
					sp.name, sp.version, ErrChecksum, lf.Name, f.filekey)
			}
			sp.files[i].sums = known
			continue
		}
		if ok && known != f.sums {
			return nil, nil, fmt.Errorf("%s: %w: %s already holds a file with SHA256 %s, this one has %s; a new upload needs a new version (or the same original tarball)",
				f.src, ErrVersionClash, f.filekey, known.SHA256, f.sums.SHA256)
		}
		if !ok {
			fresh = append(fresh, f)
		}
	}
	if skipped, err := r.skipOlderSource(tx, d, sp, res); skipped || err != nil {
		return nil, nil, err
	}
	n := len(res.Changes)
	gone, err := r.putEntry(tx, d, Target{Codename: d.Codename, Component: sp.component, Arch: SourceArch}, sp.entry(d), res)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", sp.name, sp.version, err)
	}
	added := false
	for _, c := range res.Changes[n:] {
		added = added || c.Action == "add" || c.Action == "replace"
	}
	if !added {
		return gone, nil, nil
	}
	names := make([]string, len(fresh))
	for i, f := range fresh {
		names[i] = f.filekey
	}
	if err := st.journal.add(names...); err != nil {
		return nil, nil, err
	}
	for _, f := range fresh {
		if err := r.copyToPool(ctx, f, st); err != nil {
			return nil, written, err
		}
		written = append(written, f.filekey)
		if err := bucket(tx, bFiles).Put([]byte(f.filekey), f.sums.encode()); err != nil {
			return nil, written, err
		}
	}
	return gone, written, r.storage.Sync(ctx)
}

// copyToPool copies a local file into the pool through the staging
// directory (the storage moves the staged copy into place), checking
// that what is copied is what was checked.
func (r *Repo) copyToPool(ctx context.Context, f sourceFile, st *stager) error {
	out, err := st.create()
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	in, err := os.Open(f.src)
	if err != nil {
		out.Close()
		return fmt.Errorf("read %s: %w", f.src, err)
	}
	h := newHasher()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	in.Close()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s to the pool: %w", f.src, err)
	}
	if h.sums() != f.sums {
		return fmt.Errorf("%s: %w: the file changed while it was being included", f.src, ErrChecksum)
	}
	if err := r.storage.PutFile(ctx, f.filekey, out.Name()); err != nil {
		return fmt.Errorf("%s: %w", f.filekey, err)
	}
	return nil
}

// indices returns which index files t gets: DscIndices for a source
// target, DebIndices otherwise.
func (d *Distribution) indices(t Target) Indices {
	switch {
	case t.IsSource():
		return d.DscIndices
	case t.Type == UDeb:
		// reprepro's default for installer lists: no Release file.
		return Indices{Name: "Packages", Uncompressed: true, Gzip: true}
	}
	return d.DebIndices
}
