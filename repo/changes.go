package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
	bolt "go.etcd.io/bbolt"
)

// upload is a .changes read and checked: its binary packages and its
// source package, with the section and priority each file is listed
// with.
type upload struct {
	changes *deb.Changes
	debs    []string
	// listed is the .changes line of every deb, by path.
	listed map[string]deb.ListedFile
	dsc    *deb.ListedFile
	// ignored are the files an include does not add (build logs,
	// buildinfo, byhand), for a note.
	ignored []string
}

// readChanges reads a .changes (clearsigned or not; the signature is not
// checked here) and checks every file it lists, next to it, against the
// listed size and checksums.
func readChanges(path string) (*upload, error) {
	_, text, err := readMaybeSigned(path, "upload")
	if err != nil {
		return nil, err
	}
	ch, err := deb.ParseChanges(bytes.NewReader(text), path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	up := &upload{changes: ch, listed: map[string]deb.ListedFile{}}
	dir := filepath.Dir(path)
	for _, lf := range ch.Files {
		if lf.Section == "byhand" || strings.HasPrefix(lf.Section, "raw-") {
			up.ignored = append(up.ignored, lf.Name)
			continue
		}
		kind := deb.ClassifyFile(lf.Name)
		switch kind {
		case deb.UploadUnknown:
			return nil, fmt.Errorf("%s: %w: %s is not a package, source part, buildinfo or log; remove it from the upload", path, ErrBadPackage, lf.Name)
		}
		if _, err := verifyListed(dir, lf, path); err != nil {
			return nil, err
		}
		switch kind {
		case deb.UploadDeb, deb.UploadDdeb, deb.UploadUdeb:
			p := filepath.Join(dir, lf.Name)
			up.debs = append(up.debs, p)
			up.listed[p] = lf
		case deb.UploadDsc:
			if up.dsc != nil {
				return nil, fmt.Errorf("%s: %w: two .dsc files (%s, %s); an upload holds at most one source package", path, ErrBadPackage, up.dsc.Name, lf.Name)
			}
			lf := lf
			up.dsc = &lf
		case deb.UploadSourcePart:
			// Read through the .dsc, which must list it.
		default:
			up.ignored = append(up.ignored, lf.Name)
		}
	}
	if up.dsc != nil {
		want := ch.Source + "_" + ch.SourceVersion.WithoutEpoch() + ".dsc"
		if up.dsc.Name != want {
			return nil, fmt.Errorf("%s: %w: the .dsc is %s, but Source and Version say %s", path, ErrBadPackage, up.dsc.Name, want)
		}
	} else {
		for _, lf := range ch.Files {
			if deb.ClassifyFile(lf.Name) == deb.UploadSourcePart {
				return nil, fmt.Errorf("%s: %w: %s is a source part but the upload has no .dsc", path, ErrBadPackage, lf.Name)
			}
		}
	}
	if len(up.debs) == 0 && up.dsc == nil {
		return nil, fmt.Errorf("%s: %w: the upload holds no package (only %s)", path, ErrBadPackage, strings.Join(up.ignored, ", "))
	}
	return up, nil
}

// listedValue is a .changes Section or Priority, "" for "-" (none).
func listedValue(v string) string {
	if v == "-" {
		return ""
	}
	return v
}

// IncludeChanges adds everything a .changes lists — its binary packages
// and its source package — to a distribution, as "reprepro include". The
// .changes' Distribution field is not used: codename decides. Every file
// must be next to the .changes with the listed size and checksums; every
// binary must be named in Binary and built from the .changes' Source.
// Section and priority are o's, else the .changes line's, else the
// package's own. A distribution with an Uploaders file takes only what
// it allows (ErrUpload). All of it is added in one transaction, or
// nothing.
func (r *Repo) IncludeChanges(ctx context.Context, codename, file string, o IncludeOptions) (*Result, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	if err := checkInclude(d, o); err != nil {
		return nil, err
	}
	up, err := readChanges(file)
	if err != nil {
		return nil, err
	}
	ch := up.changes
	if err := r.checkUploaders(ctx, d, file, ch); err != nil {
		return nil, err
	}
	var sp *sourcePackage
	if up.dsc != nil {
		if err := checkSourceInclude("include", d, o); err != nil {
			return nil, err
		}
		sp, err = readSource(filepath.Join(filepath.Dir(file), up.dsc.Name), d, o, listedValue(up.dsc.Section), listedValue(up.dsc.Priority))
		if err != nil {
			return nil, err
		}
	}
	if len(up.ignored) > 0 {
		r.opts.Warn(fmt.Sprintf("include %s: %s: not added: %s", codename, filepath.Base(file), strings.Join(up.ignored, ", ")))
	}
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	staging := newStager(r)
	defer staging.remove()
	debs, err := r.stageAll(ctx, up.debs, staging, func(in *incoming) error {
		if err := checkUploaded(ch, in); err != nil {
			return err
		}
		lo := o
		lf := up.listed[in.src]
		switch deb.ClassifyFile(lf.Name) {
		case deb.UploadDdeb:
			in.ptype = DDeb
		case deb.UploadUdeb:
			in.ptype = UDeb
		}
		lo.Section, lo.Priority = firstNonEmpty(o.Section, listedValue(lf.Section)), firstNonEmpty(o.Priority, listedValue(lf.Priority))
		return in.place(d, lo, staging)
	})
	if err != nil {
		return nil, err
	}
	sortIncoming(debs)
	if err := w.openDB(); err != nil {
		return nil, err
	}
	res := &Result{}
	var written []string
	if sp != nil {
		// The source package goes first, in the same transaction as the
		// binaries (includeCommit runs it before them).
		staging.before = func(tx *bolt.Tx) ([]string, error) {
			unref, wr, err := r.addSource(ctx, tx, d, sp, staging, res)
			written = append(written, wr...)
			return unref, err
		}
	}
	unref, err := r.includeCommit(ctx, w.db, d, debs, staging, res)
	if err != nil {
		r.undoPool(ctx, staging, nil, written)
		return nil, err
	}
	r.log(d, logLines(d, res.Changes))
	return res, r.finish(ctx, w, []*Distribution{d}, unref, res)
}

// checkUploaded refuses a binary package of an upload that the .changes
// does not name in Binary (a debug package X-dbgsym counts as X's), or
// that another source package built.
func checkUploaded(ch *deb.Changes, in *incoming) error {
	name := in.name
	if !contains(ch.Binaries, name) && !contains(ch.Binaries, strings.TrimSuffix(name, "-dbgsym")) {
		return fmt.Errorf("%s: %w: %s is not listed in the Binary field of the .changes (%s)", in.src, ErrBadPackage, name, strings.Join(ch.Binaries, " "))
	}
	if src := sourceName(in.control, in.name); src != ch.Source {
		return fmt.Errorf("%s: %w: %s is built from source %s, the .changes is of %s", in.src, ErrBadPackage, name, src, ch.Source)
	}
	return nil
}

// readMaybeSigned reads a .dsc or .changes (what names it for errors) and
// returns its bytes and its text without a clearsigned wrapping (whose
// signature is not checked).
func readMaybeSigned(path, what string) (raw, text []byte, err error) {
	raw, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", what, err)
	}
	text, _, err = signing.Cleartext(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %w", path, ErrBadPackage, err)
	}
	return raw, text, nil
}
