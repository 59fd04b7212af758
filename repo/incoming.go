package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// IncomingResult reports what ProcessIncoming did with each upload, in
// the order the uploads were processed (.changes file names ascending).
type IncomingResult struct {
	Uploads []UploadOutcome `json:"uploads"`
}

// UploadOutcome is what became of one .changes.
type UploadOutcome struct {
	// Changes is the .changes file's name in the incoming directory.
	Changes string `json:"changes"`
	// Into are the codenames it was included into.
	Into []string `json:"into,omitempty"`
	// Result merges what the includes changed.
	Result *Result `json:"result,omitempty"`
	// Removed lists the files deleted from the incoming directory.
	Removed []string `json:"removed,omitempty"`
	// Err is why the upload was refused (nil: processed). Denied is set
	// when it was refused before anything was read: no distribution
	// takes it, or its uploaders may not upload there.
	Err    error  `json:"-"`
	Error  string `json:"error,omitempty"`
	Denied bool   `json:"denied,omitempty"`
}

// ProcessIncoming processes the uploads of the incoming queue rule (a
// paragraph of conf/incoming), as "reprepro processincoming": every
// *.changes in its IncomingDir, or only the one named changes (a file
// name in IncomingDir). For each, the .changes and every file it lists
// are copied into a private directory under TempDir — refusing names
// with a directory part and files that are not regular files (a
// symbolic link, even to a file inside the queue) — and everything is
// read from that copy only. The distribution comes from the
// .changes' Distribution field through Allow and Default; when the
// distribution has an Uploaders file, the .changes' signature must be
// allowed by it (checked against the keys in Options.KeyDir). Unless
// the rule permits older_version, an upload older than a version a
// package list already holds is refused; otherwise it is included as
// IncludeChanges includes (under Limit an older version is skipped).
// A processed upload's files are deleted from IncomingDir; a refused
// one stays unless Cleanup says on_deny or on_error.
//
// Each upload is committed on its own: one refused upload does not undo
// another. The returned error wraps ErrUpload when any was refused; the
// result then tells which and why.
func (r *Repo) ProcessIncoming(ctx context.Context, rule, changes string) (*IncomingResult, error) {
	ir, err := r.Conf.LoadIncoming(rule)
	if err != nil {
		return nil, err
	}
	in, tmp := ir.dir(r.Base, ir.IncomingDir), ir.dir(r.Base, ir.TempDir)
	if st, err := os.Stat(in); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: rule %s (%s:%d): IncomingDir %s is not a directory; create it or fix the field", ErrConfig, ir.Name, ir.File, ir.Line, in)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("rule %s: create TempDir: %w", ir.Name, err)
	}
	var names []string
	if changes != "" {
		if err := checkPlainName(changes); err != nil || !strings.HasSuffix(changes, ".changes") {
			return nil, fmt.Errorf("processincoming %s: %w: %q: give the file name of a .changes in %s, without a directory", ir.Name, ErrArgument, changes, in)
		}
		names = []string{changes}
	} else {
		entries, err := os.ReadDir(in)
		if err != nil {
			return nil, fmt.Errorf("rule %s: read IncomingDir: %w", ir.Name, err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".changes") && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	}
	res := &IncomingResult{}
	var refused []string
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		out := r.processUpload(ctx, ir, in, tmp, name)
		if out.Err != nil {
			out.Error = out.Err.Error()
			refused = append(refused, name)
		}
		res.Uploads = append(res.Uploads, out)
	}
	if len(refused) > 0 {
		return res, fmt.Errorf("processincoming %s: %w: %d of %d (%s)", ir.Name, ErrUpload, len(refused), len(names), strings.Join(refused, ", "))
	}
	return res, nil
}

// checkPlainName accepts a file name without a directory part, as a
// .changes lists its files.
func checkPlainName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || name[0] == '-' {
		return fmt.Errorf("%q is not a plain file name", name)
	}
	return nil
}

// upload file roles, by how the upload uses a listed file.
const (
	fileUsed = iota
	fileBuildinfo
	fileUnused
)

// processUpload processes one .changes of the queue; see ProcessIncoming.
func (r *Repo) processUpload(ctx context.Context, ir *IncomingRule, in, tmp, name string) (out UploadOutcome) {
	out.Changes = name
	// Which listed files to delete from the queue when done, by role.
	var listed []deb.ListedFile
	work, err := os.MkdirTemp(tmp, "upload-")
	if err != nil {
		out.Err = fmt.Errorf("%s: copy into TempDir: %w", name, err)
		return out
	}
	defer os.RemoveAll(work)
	defer func() { r.cleanQueue(ir, in, name, listed, &out) }()

	fail := func(err error) UploadOutcome {
		out.Err = err
		return out
	}
	changes := filepath.Join(work, name)
	if err := copyFromQueue(in, name, changes); err != nil {
		return fail(err)
	}
	_, text, err := readMaybeSigned(changes, "upload")
	if err != nil {
		return fail(err)
	}
	ch, err := deb.ParseChanges(bytes.NewReader(text), name)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadPackage, err))
	}
	listed = ch.Files

	// Where it may go, and whether its uploader may put it there.
	into, err := r.uploadDestinations(ctx, ir, ch, changes)
	if err != nil {
		out.Denied = true
		return fail(err)
	}
	if err := copyUploadFiles(ir, in, work, ch); err != nil {
		return fail(err)
	}
	if !ir.PermitOlder {
		for _, codename := range into {
			if err := r.checkNotOlder(ctx, codename, work, ch); err != nil {
				return fail(err)
			}
		}
	}
	out.Result = &Result{}
	for _, codename := range into {
		res, err := r.IncludeChanges(ctx, codename, changes, IncludeOptions{})
		if err != nil {
			return fail(fmt.Errorf("include into %s: %w", codename, err))
		}
		out.Into = append(out.Into, codename)
		out.Result.Changes = append(out.Result.Changes, res.Changes...)
		out.Result.Exported = append(out.Result.Exported, res.Exported...)
		out.Result.Deleted = append(out.Result.Deleted, res.Deleted...)
	}
	if ir.LogDir != "" {
		if err := keepLogs(ir.dir(r.Base, ir.LogDir), work, name, ch); err != nil {
			return fail(fmt.Errorf("included into %s, but: %w", strings.Join(out.Into, ", "), err))
		}
	}
	return out
}

// cleanQueue deletes from the incoming directory in what processUpload
// is done with: after success the .changes and the files the rule says go
// (those used, and per Cleanup and LogDir the others); after a denial or
// an error everything listed, if Cleanup says so.
func (r *Repo) cleanQueue(ir *IncomingRule, in, name string, listed []deb.ListedFile, out *UploadOutcome) {
	processed := out.Err == nil
	if !processed && !(out.Denied && ir.CleanupOnDeny) && !(!out.Denied && ir.CleanupOnError) {
		return
	}
	del := []string{name}
	for _, lf := range listed {
		role := uploadRole(lf)
		if !processed || role == fileUsed || ir.LogDir != "" || ir.CleanupUnused || role == fileBuildinfo && ir.CleanupBuildinfo {
			del = append(del, lf.Name)
		}
	}
	for _, n := range del {
		if checkPlainName(n) != nil {
			continue
		}
		if err := os.Remove(filepath.Join(in, n)); err == nil {
			out.Removed = append(out.Removed, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			r.opts.Warn(fmt.Sprintf("processincoming %s: %s: cannot delete %s from the incoming directory: %v", ir.Name, name, n, err))
		}
	}
}

// copyUploadFiles copies the files ch lists from the incoming directory in
// into work, refusing names with a directory part and, unless the rule
// permits them, files that are no package or source part.
func copyUploadFiles(ir *IncomingRule, in, work string, ch *deb.Changes) error {
	for _, lf := range ch.Files {
		if err := checkPlainName(lf.Name); err != nil {
			return fmt.Errorf("%w: Files: %w; an upload's files must be in the incoming directory", ErrBadPackage, err)
		}
		if uploadRole(lf) == fileUnused && !ir.PermitUnused && ir.LogDir == "" {
			return fmt.Errorf("%w: %s is listed but is no package or source part: add \"Permit: unused_files\" to rule %s (%s:%d) to accept it (and \"Cleanup: unused_files\" to delete it)",
				ErrBadPackage, lf.Name, ir.Name, ir.File, ir.Line)
		}
		if err := copyFromQueue(in, lf.Name, filepath.Join(work, lf.Name)); err != nil {
			return err
		}
	}
	return nil
}

// keepLogs copies the .changes (name) and the files of ch that no
// package uses (.buildinfo, build logs, byhand files), from the upload's
// copy in work, into a new directory of logDir named as reprepro names
// it: SOURCE_VERSION_ARCH1+ARCH2.0000000, the number raised until the
// name is free.
func keepLogs(logDir, work, name string, ch *deb.Changes) error {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create LogDir: %w", err)
	}
	stem := filepath.Join(logDir, ch.Source+"_"+ch.Version.WithoutEpoch()+"_"+strings.Join(ch.Architectures, "+"))
	var dir string
	for n := 0; dir == ""; n++ {
		if n > 9999999 {
			return fmt.Errorf("LogDir: every directory %s.NNNNNNN exists", stem)
		}
		d := fmt.Sprintf("%s.%07d", stem, n)
		switch err := os.Mkdir(d, 0o755); {
		case err == nil:
			dir = d
		case !errors.Is(err, os.ErrExist):
			return fmt.Errorf("LogDir: %w", err)
		}
	}
	files := []string{name}
	for _, lf := range ch.Files {
		if uploadRole(lf) != fileUsed {
			files = append(files, lf.Name)
		}
	}
	for _, f := range files {
		if err := copyLocal(filepath.Join(work, f), filepath.Join(dir, f), 0o644); err != nil {
			return fmt.Errorf("LogDir: keep %s: %w", f, err)
		}
	}
	return nil
}

// uploadRole says how a processed upload uses a listed file: packages,
// source parts and the .dsc are used; a .buildinfo is unused but
// tolerated (as reprepro does); build logs and byhand files are unused.
func uploadRole(lf deb.ListedFile) int {
	if lf.Section == "byhand" || strings.HasPrefix(lf.Section, "raw-") {
		return fileUnused
	}
	switch deb.ClassifyFile(lf.Name) {
	case deb.UploadBuildinfo:
		return fileBuildinfo
	case deb.UploadLog:
		return fileUnused
	}
	return fileUsed
}

// copyFromQueue copies the regular file name of the incoming directory
// in to dst. A symbolic link is refused, wherever it points: the queue
// is written by uploaders, and a link would let one make the repository
// read (and publish) any file the repository's user can read.
func copyFromQueue(in, name, dst string) error {
	if err := checkPlainName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPackage, err)
	}
	src := filepath.Join(in, name)
	f, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return fmt.Errorf("%w: %s is a symbolic link; an upload's files must be regular files in the incoming directory", ErrBadPackage, name)
		}
		return fmt.Errorf("%w: %w (is the upload complete?)", ErrBadPackage, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrBadPackage, name, st.Mode().Type())
	}
	o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("copy %s into TempDir: %w", name, err)
	}
	_, err = io.Copy(o, f)
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s into TempDir: %w", name, err)
	}
	return nil
}

// uploadDestinations picks the codenames an upload goes into: the
// words of its Distribution field through the rule's Allow and Default,
// keeping only distributions whose Uploaders (if any) allow it, given
// the signature of the copied .changes at file.
func (r *Repo) uploadDestinations(ctx context.Context, ir *IncomingRule, ch *deb.Changes, file string) ([]string, error) {
	var (
		sig     *uploadSignature
		refused []string
		errs    []error
	)
	accept := func(codename string) bool {
		d, err := r.Conf.Distribution(codename)
		if err != nil {
			errs = append(errs, err)
			return false
		}
		u, err := r.uploadersOf(d)
		if err != nil {
			errs = append(errs, err)
			return false
		}
		if u == nil {
			return true
		}
		if sig == nil {
			s, err := r.uploadSignatureOf(ctx, file)
			if err != nil {
				errs = append(errs, err)
				return false
			}
			sig = &s
		}
		if u.permits(ch.Source, *sig) != 0 {
			return true
		}
		refused = append(refused, u.refusal(codename, ch.Source, *sig))
		return false
	}
	into := ir.destinations(ch.Distribution, accept)
	switch {
	case len(errs) > 0:
		return nil, errors.Join(errs...)
	case len(into) > 0:
		return into, nil
	case len(refused) > 0:
		return nil, fmt.Errorf("%w: not allowed into %s", ErrUpload, strings.Join(refused, "; "))
	}
	return nil, fmt.Errorf("%w: rule %s (%s:%d) takes no distribution for Distribution: %s; add it to Allow or set Default",
		ErrUpload, ir.Name, ir.File, ir.Line, strings.Join(ch.Distribution, " "))
}

// uploadSignatureOf reads the signature of a copied .changes against the
// keys of the key directory.
func (r *Repo) uploadSignatureOf(ctx context.Context, file string) (uploadSignature, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return uploadSignature{}, fmt.Errorf("read upload: %w", err)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return uploadSignature{}, nil
	}
	kr, err := r.uploaderKeyring()
	if err != nil {
		return uploadSignature{}, err
	}
	return r.checkSignature(ctx, kr, file)
}

// checkNotOlder refuses an upload when a package list of codename holds
// a strictly newer version of one of its packages (reprepro's check,
// which Permit: older_version lifts): the source package against the
// source lists, each binary against the lists of its architecture (all
// of them for "all").
func (r *Repo) checkNotOlder(ctx context.Context, codename, dir string, ch *deb.Changes) error {
	type pkg struct {
		name, arch string
		version    deb.Version
		file       string
	}
	var pkgs []pkg
	for _, lf := range ch.Files {
		switch deb.ClassifyFile(lf.Name) {
		case deb.UploadDsc:
			pkgs = append(pkgs, pkg{ch.Source, SourceArch, ch.SourceVersion, lf.Name})
		case deb.UploadDeb:
			p, err := debControl(filepath.Join(dir, lf.Name))
			if err != nil {
				return err
			}
			v, err := deb.ParseVersion(p.Get("Version"))
			if err != nil {
				return fmt.Errorf("%s: %w: %w", lf.Name, ErrBadPackage, err)
			}
			pkgs = append(pkgs, pkg{p.Get("Package"), p.Get("Architecture"), v, lf.Name})
		}
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.name)
	}
	have, err := r.List(ctx, codename, Selection{}, names, nil)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		for _, e := range have {
			if e.Package != p.name || e.Target.IsSource() != (p.arch == SourceArch) {
				continue
			}
			if p.arch != SourceArch && p.arch != "all" && e.Target.Arch != p.arch {
				continue
			}
			if looseVersion(e.Version).Compare(p.version) > 0 {
				return fmt.Errorf("%w: %s: version %s of %s, but %s already has the strictly newer %s; add \"Permit: older_version\" to the rule to include it under the distribution's Limit",
					ErrOlderVersion, p.file, p.version, p.name, e.Target, e.Version)
			}
		}
	}
	return nil
}

// debControl reads the control paragraph of a .deb.
func debControl(path string) (*deb.Paragraph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	defer f.Close()
	dr, err := deb.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrBadPackage, err)
	}
	c, err := dr.Control()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrBadPackage, err)
	}
	return c.Paragraph, nil
}
