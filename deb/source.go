package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
)

// ListedFile is one file named by a source control file (.dsc) or an upload
// description (.changes): its name (a base name, never a path), its size
// and the checksums the listing gives for it. Section and Priority are set
// for .changes listings only ("-" when the upload says so).
type ListedFile struct {
	Name     string
	Size     int64
	MD5      string
	SHA1     string
	SHA256   string
	Section  string
	Priority string
}

// Dsc is a parsed Debian source control file (.dsc). Paragraph keeps every
// field as written, in order; the other fields are the parsed values.
type Dsc struct {
	Paragraph *Paragraph
	// Source is the source package name, Version its version.
	Source  string
	Version Version
	// Format is the source format ("3.0 (quilt)", "1.0", …).
	Format string
	// Binaries are the binary packages the source builds, from Binary.
	Binaries []string
	// Architectures is the Architecture field split into words.
	Architectures []string
	// Files are the files the .dsc lists, in the order of its Files field,
	// with every checksum the .dsc gives.
	Files []ListedFile
}

// Changes is a parsed upload description (.changes).
type Changes struct {
	Paragraph *Paragraph
	// Source is the source package name; SourceVersion the version given
	// in parentheses after it ("Source: foo (1.2-1)"), else Version.
	Source        string
	SourceVersion Version
	// Version is the version of the upload.
	Version Version
	// Distribution is the target the uploader named (words).
	Distribution []string
	// Architectures is the Architecture field split into words.
	Architectures []string
	// Binaries are the binary package names of the Binary field.
	Binaries []string
	// Files are the uploaded files in the order of the Files field, with
	// section and priority.
	Files []ListedFile
}

// ParseDsc parses a source control file. The text must be the bare
// paragraph: a clearsigned .dsc is unwrapped (and verified, when keys are
// configured) by the caller first. Errors name filename and the field.
func ParseDsc(r io.Reader, filename string) (*Dsc, error) {
	p, err := parseOneParagraph(r, filename)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"Format", "Source", "Version", "Files"} {
		if strings.TrimSpace(p.Get(f)) == "" {
			return nil, fmt.Errorf("%s: %w: %s (a .dsc needs Format, Source, Version and Files)", filename, ErrMissingField, f)
		}
	}
	d := &Dsc{Paragraph: p, Format: p.Get("Format"), Source: p.Get("Source")}
	if err := ValidatePackageName(d.Source); err != nil {
		return nil, fieldError(p, filename, "Source", err)
	}
	if d.Version, err = ParseVersion(p.Get("Version")); err != nil {
		return nil, fieldError(p, filename, "Version", err)
	}
	d.Binaries = splitList(p.Get("Binary"))
	d.Architectures = strings.Fields(p.Get("Architecture"))
	if d.Files, err = listedFiles(p, filename, false); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseChanges parses an upload description. As with ParseDsc, a
// clearsigned file is unwrapped by the caller first.
func ParseChanges(r io.Reader, filename string) (*Changes, error) {
	p, err := parseOneParagraph(r, filename)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"Format", "Date", "Source", "Architecture", "Version", "Distribution", "Maintainer", "Files"} {
		if strings.TrimSpace(p.Get(f)) == "" {
			return nil, fmt.Errorf("%s: %w: %s (a .changes needs Format, Date, Source, Architecture, Version, Distribution, Maintainer and Files)", filename, ErrMissingField, f)
		}
	}
	c := &Changes{Paragraph: p}
	if c.Version, err = ParseVersion(p.Get("Version")); err != nil {
		return nil, fieldError(p, filename, "Version", err)
	}
	src := strings.TrimSpace(p.Get("Source"))
	c.SourceVersion = c.Version
	if name, rest, ok := strings.Cut(src, " "); ok {
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return nil, fieldError(p, filename, "Source", fmt.Errorf("%w: %q: expected NAME or NAME (VERSION)", ErrInvalidField, src))
		}
		if c.SourceVersion, err = ParseVersion(strings.TrimSpace(rest[1 : len(rest)-1])); err != nil {
			return nil, fieldError(p, filename, "Source", err)
		}
		src = name
	}
	if err := ValidatePackageName(src); err != nil {
		return nil, fieldError(p, filename, "Source", err)
	}
	c.Source = src
	c.Distribution = strings.Fields(p.Get("Distribution"))
	c.Architectures = strings.Fields(p.Get("Architecture"))
	c.Binaries = strings.Fields(p.Get("Binary"))
	for _, b := range c.Binaries {
		if err := ValidatePackageName(b); err != nil {
			return nil, fieldError(p, filename, "Binary", err)
		}
	}
	if c.Files, err = listedFiles(p, filename, true); err != nil {
		return nil, err
	}
	return c, nil
}

// parseOneParagraph reads exactly one paragraph (blank lines around it
// allowed), the shape of a .dsc and a .changes.
func parseOneParagraph(r io.Reader, filename string) (*Paragraph, error) {
	ps, err := ParseParagraphs(r, filename)
	if err != nil {
		return nil, err
	}
	switch len(ps) {
	case 0:
		return nil, fmt.Errorf("%s: %w: the file is empty", filename, ErrSyntax)
	case 1:
		return ps[0], nil
	default:
		return nil, fmt.Errorf("%s:%d: %w: a second paragraph starts here; the file holds exactly one", filename, ps[1].Fields[0].Line, ErrSyntax)
	}
}

func fieldError(p *Paragraph, filename, field string, err error) error {
	if f, ok := p.Field(field); ok && f.Line > 0 {
		return fmt.Errorf("%s:%d: field %s: %w", filename, f.Line, field, err)
	}
	return fmt.Errorf("%s: field %s: %w", filename, field, err)
}

// splitList splits a comma-separated field (Binary of a .dsc), also
// accepting line breaks.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// checksumField describes one of the three file listings and how long its
// hexadecimal digest is.
type checksumField struct {
	name   string
	hexLen int
	set    func(*ListedFile, string)
	get    func(*ListedFile) string
}

var checksumFields = []checksumField{
	{"Files", 32, func(f *ListedFile, s string) { f.MD5 = s }, func(f *ListedFile) string { return f.MD5 }},
	{"Checksums-Sha1", 40, func(f *ListedFile, s string) { f.SHA1 = s }, func(f *ListedFile) string { return f.SHA1 }},
	{"Checksums-Sha256", 64, func(f *ListedFile, s string) { f.SHA256 = s }, func(f *ListedFile) string { return f.SHA256 }},
}

// listedFiles reads Files and the Checksums-* fields into one list. Every
// listing must name the same files with the same sizes: a file given with
// different sizes, or missing from one listing, is an error, so a caller
// can check every digest the file offers.
func listedFiles(p *Paragraph, filename string, withSection bool) ([]ListedFile, error) {
	var files []ListedFile
	index := map[string]int{}
	for fi, cf := range checksumFields {
		v, ok := p.Lookup(cf.name)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for n, line := range strings.Split(v, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			words := strings.Fields(line)
			want := 3
			if fi == 0 && withSection {
				want = 5
			}
			if len(words) != want {
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: line %d %q: expected %s", ErrInvalidField, n+1, line, listingShape(fi == 0 && withSection)))
			}
			sum, sizeText, name := words[0], words[1], words[len(words)-1]
			if err := checkListedName(name); err != nil {
				return nil, fieldError(p, filename, cf.name, err)
			}
			if len(sum) != cf.hexLen || !isLowerHex(sum) {
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s: %q is not a %d-digit hexadecimal digest", ErrInvalidField, name, sum, cf.hexLen))
			}
			size, err := strconv.ParseInt(sizeText, 10, 64)
			if err != nil || size < 0 {
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s: size %q is not a number of bytes", ErrInvalidField, name, sizeText))
			}
			if seen[name] {
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s is listed twice", ErrInvalidField, name))
			}
			seen[name] = true
			i, known := index[name]
			switch {
			case !known && fi == 0:
				f := ListedFile{Name: name, Size: size}
				if withSection {
					f.Section, f.Priority = words[2], words[3]
				}
				index[name] = len(files)
				files = append(files, f)
				i = len(files) - 1
			case !known:
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s is not listed in Files", ErrInvalidField, name))
			case files[i].Size != size:
				return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s has size %d here but %d in Files", ErrInvalidField, name, size, files[i].Size))
			}
			cf.set(&files[i], sum)
		}
		if fi == 0 && len(files) == 0 {
			return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: no files listed", ErrMissingField))
		}
		if fi > 0 {
			for j := range files {
				if cf.get(&files[j]) == "" {
					return nil, fieldError(p, filename, cf.name, fmt.Errorf("%w: %s is listed in Files but not here", ErrInvalidField, files[j].Name))
				}
			}
		}
	}
	return files, nil
}

func listingShape(withSection bool) string {
	if withSection {
		return "MD5 SIZE SECTION PRIORITY NAME"
	}
	return "DIGEST SIZE NAME"
}

// checkListedName accepts a plain file name only: no directory part, no
// "." or "..", nothing a path could be built from that leaves the
// directory it is joined to.
func checkListedName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || path.Base(name) != name || name[0] == '-' {
		return fmt.Errorf("%w: %q: a listed file must be a plain file name", ErrUnsafePath, name)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// UploadFileKind names what a file of a source package or an upload is,
// from its name alone, as reprepro and dak judge it.
type UploadFileKind int

// The kinds of files an upload carries.
const (
	UploadUnknown    UploadFileKind = iota
	UploadDeb                       // a binary package (.deb)
	UploadUdeb                      // an installer package (.udeb)
	UploadDdeb                      // a debug symbols package (.ddeb)
	UploadDsc                       // the source control file
	UploadSourcePart                // .orig.tar.*, .debian.tar.*, .tar.*, .diff.gz
	UploadBuildinfo                 // .buildinfo
	UploadLog                       // a build log
)

// ClassifyFile tells what kind of file name is.
func ClassifyFile(name string) UploadFileKind {
	switch {
	case strings.HasSuffix(name, ".deb"):
		return UploadDeb
	case strings.HasSuffix(name, ".udeb"):
		return UploadUdeb
	case strings.HasSuffix(name, ".ddeb"):
		return UploadDdeb
	case strings.HasSuffix(name, ".dsc"):
		return UploadDsc
	case strings.HasSuffix(name, ".buildinfo"):
		return UploadBuildinfo
	case strings.HasSuffix(name, ".log"):
		return UploadLog
	case strings.HasSuffix(name, ".diff.gz"), tarName(name):
		return UploadSourcePart
	}
	return UploadUnknown
}

func tarName(name string) bool {
	for _, c := range []string{"", ".gz", ".xz", ".bz2", ".lzma", ".zst"} {
		if strings.HasSuffix(name, ".tar"+c) {
			return true
		}
	}
	return false
}

// DebianControlFromSource finds debian/control in a Debian source part — a
// .debian.tar.* (format 3.0) or a .diff.gz (format 1.0) — and returns its
// first paragraph (the source paragraph, with Section and Priority). r
// holds the part's bytes, name its file name (for the format and for
// errors).
func DebianControlFromSource(r io.Reader, name string) (*Paragraph, error) {
	var data []byte
	var err error
	if strings.HasSuffix(name, ".diff.gz") {
		data, err = controlFromDiff(r, name)
	} else {
		data, err = controlFromDebianTar(r, name)
	}
	if err != nil {
		return nil, err
	}
	ps, err := ParseParagraphs(bytes.NewReader(data), name+": debian/control")
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: debian/control: %w: no paragraph", name, ErrSyntax)
	}
	return ps[0], nil
}

// Bounds for reading debian/control out of a source part: the control file
// itself, and how much decompressed data is searched for it.
const (
	maxSourceControl = 1 << 20
	maxSourceScan    = 512 << 20
)

// controlFromDebianTar reads debian/control out of a (compressed) tar.
func controlFromDebianTar(r io.Reader, name string) ([]byte, error) {
	var dr io.Reader
	if strings.HasSuffix(name, ".tar.bz2") {
		dr = bzip2.NewReader(r)
	} else {
		c, cerr := compressionOfMember(name)
		if cerr != nil {
			return nil, fmt.Errorf("%s: %w", name, cerr)
		}
		rc, derr := newBoundedDecompressor(r, c, -1, nil, maxSourceScan)
		if derr != nil {
			return nil, fmt.Errorf("%s: %w", name, derr)
		}
		defer rc.Close()
		dr = rc
	}
	tr := tar.NewReader(io.LimitReader(dr, maxSourceScan))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: %w: no debian/control in it", name, ErrMissingField)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading the tar: %w", name, decodeErr(err))
		}
		// A .debian.tar holds debian/…; a native .tar holds
		// SOURCE-VERSION/debian/….
		clean := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg || !(clean == "debian/control" || strings.Count(clean, "/") == 2 && strings.HasSuffix(clean, "/debian/control")) {
			continue
		}
		if h.Size > maxSourceControl {
			return nil, fmt.Errorf("%s: debian/control: %w: %d bytes (at most %d read)", name, ErrTooLarge, h.Size, maxSourceControl)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: debian/control: %w", name, decodeErr(err))
		}
		return data, err
	}
}

// controlFromDiff rebuilds debian/control from a format 1.0 .diff.gz, in
// which it is a file created from nothing ("--- /dev/null" or an empty
// original, "@@ -0,0 +1,N @@", every line added).
func controlFromDiff(r io.Reader, name string) ([]byte, error) {
	z, err := kgzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: gzip: %w", name, decodeErr(err))
	}
	defer z.Close()
	sc := bufio.NewScanner(io.LimitReader(z, maxSourceScan))
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var (
		in      bool // inside the hunks of debian/control
		out     bytes.Buffer
		started bool
	)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "+++ "):
			f := strings.Fields(strings.TrimPrefix(line, "+++ "))
			in = len(f) > 0 && strings.Count(strings.TrimPrefix(path.Clean("/"+f[0]), "/"), "/") == 2 && strings.HasSuffix(f[0], "/debian/control")
			if !in && started {
				return out.Bytes(), nil
			}
		case !in:
		case strings.HasPrefix(line, "@@"):
			started = true
		case strings.HasPrefix(line, "+"):
			out.WriteString(line[1:])
			out.WriteByte('\n')
			if out.Len() > maxSourceControl {
				return nil, fmt.Errorf("%s: debian/control: %w: over %d bytes", name, ErrTooLarge, maxSourceControl)
			}
		case strings.HasPrefix(line, "---"):
		case line == "" || line[0] == ' ' || line[0] == '-':
			// Context or removed lines mean debian/control was patched,
			// not created: the diff alone does not give its text.
			return nil, fmt.Errorf("%s: %w: debian/control is modified, not created, by the diff; give the section and priority explicitly", name, ErrMissingField)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, decodeErr(err))
	}
	if !started {
		return nil, fmt.Errorf("%s: %w: no debian/control in the diff", name, ErrMissingField)
	}
	return out.Bytes(), nil
}
