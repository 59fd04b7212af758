package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

func (s *Server) fail(w http.ResponseWriter, outcome string, status int, code, format string, a ...any) {
	s.metrics.upload(outcome)
	e := &upload.APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
	s.log.Warn("upload refused", "status", status, "code", code, "error", e.Message)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="lampi-pkg"`)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

// maxFiles bounds the packages of one upload.
const maxFiles = 256

// staged is one uploaded package in the private staging directory.
type staged struct {
	name   string // the client's file name, made harmless
	path   string
	size   int64
	sha256 string
	ctl    *deb.Paragraph
	sig    *signing.Signature
}

// refusal is a refused upload before anything was written.
type refusal struct {
	outcome string
	status  int
	code    string
	msg     string
}

func refuse(outcome string, status int, code, format string, a ...any) *refusal {
	return &refusal{outcome, status, code, fmt.Sprintf(format, a...)}
}

func (s *Server) refused(w http.ResponseWriter, f *refusal) {
	s.fail(w, f.outcome, f.status, f.code, "%s", f.msg)
}

// authenticate checks the bearer token; on failure it has answered.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*Token, bool) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(secret) == "" {
		s.fail(w, OutcomeUnauthorized, http.StatusUnauthorized, "unauthorized", "no bearer token: send 'Authorization: Bearer TOKEN' (create one with lampi-pkg token create)")
		return nil, false
	}
	tok, err := s.opts.Tokens.Authenticate(strings.TrimSpace(secret))
	switch {
	case errors.Is(err, ErrTokenRevoked):
		s.fail(w, OutcomeForbidden, http.StatusForbidden, "revoked", "token %q (ID %s) was revoked; ask for a new one", tok.Name, tok.ID)
		return nil, false
	case errors.Is(err, ErrTokenInvalid):
		s.fail(w, OutcomeUnauthorized, http.StatusUnauthorized, "unauthorized", "unknown or malformed token")
		return nil, false
	case err != nil:
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "token store: %v", err)
		return nil, false
	}
	return tok, true
}

// handleDistributions is GET /api/v1/repos: the distributions the token
// may upload to, so that a client without a codename can pick the only
// one.
func (s *Server) handleDistributions(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	conf, err := repo.LoadConfig(repo.Layout{Base: s.opts.Dir}.Conf())
	if err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "repository configuration: %v", err)
		return
	}
	out := []upload.DistributionInfo{}
	for _, d := range conf.Distributions {
		if tok.Allows(d.Codename, d.Suite) {
			out = append(out, upload.DistributionInfo{Codename: d.Codename, Suite: d.Suite, Components: d.Components, Architectures: d.Architectures})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// handleUpload is POST /api/v1/repos/{codename}/packages: one .deb as
// the raw body, or one or several as the file parts of a
// multipart/form-data body. All are checked first; then all are included
// and published together in one repo.IncludePublish, or none is. With
// ?dry_run=1 the checks run and the verdicts come back, nothing is
// written; a dry run with an empty body only checks token and
// distribution.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	dryRun, f := parseDryRun(r)
	if f != nil {
		s.refused(w, f)
		return
	}

	// 1. Who is asking, and may they?
	tok, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	d, f := s.uploadTarget(tok, r.PathValue("codename"))
	if f != nil {
		s.refused(w, f)
		return
	}

	// 2. Read the body into a private staging directory, within the limit.
	max := s.opts.MaxUpload
	const framing = 64 << 10 // room for multipart headers around the files
	if r.ContentLength > max+framing {
		s.fail(w, OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload of %d bytes exceeds the server's limit of %d bytes (serve --max-upload)", r.ContentLength, max)
		return
	}
	res := &upload.Result{Codename: d.Codename, DryRun: dryRun, Packages: []upload.PackageResult{}, Changes: []upload.Change{}}
	if dryRun && r.ContentLength == 0 {
		s.answer(w, http.StatusOK, res)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+framing)
	dir, f := s.stagingDir()
	if f != nil {
		s.refused(w, f)
		return
	}
	defer os.RemoveAll(dir)
	ups, f := stageBody(r, dir, max)
	if f != nil {
		s.refused(w, f)
		return
	}

	// 3. Is each a .deb, (if required) signed by whom it must be, fit for
	// the distribution? Every file is checked before anything is written.
	if f := s.check(ctx, d, ups); f != nil {
		s.refused(w, f)
		return
	}
	res.Packages = packageResults(ups)
	files, clientNames := stagedNames(ups)
	if dryRun {
		s.dryRun(ctx, w, d, res, clientNames)
		return
	}

	// 4. Include and publish, one upload at a time, through the same
	// locked, all-or-nothing path as "lampi-pkg release".
	s.includePublish(ctx, w, tok, d, res, files, clientNames)
}

// parseDryRun reads ?dry_run=1 (or any strconv.ParseBool value).
func parseDryRun(r *http.Request) (bool, *refusal) {
	v := r.URL.Query().Get("dry_run")
	if v == "" {
		return false, nil
	}
	dryRun, err := strconv.ParseBool(v)
	if err != nil {
		return false, refuse(OutcomeBadPackage, http.StatusBadRequest, "bad_request", "dry_run=%q: want 1 or 0", v)
	}
	return dryRun, nil
}

// uploadTarget is the distribution named (codename or suite) in the
// request's path, if tok may upload to it and it takes uploads.
func (s *Server) uploadTarget(tok *Token, name string) (*repo.Distribution, *refusal) {
	conf, err := repo.LoadConfig(repo.Layout{Base: s.opts.Dir}.Conf())
	if err != nil {
		return nil, refuse(OutcomeError, http.StatusInternalServerError, "internal", "repository configuration: %v", err)
	}
	d := conf.Lookup(name)
	switch {
	case d == nil:
		return nil, refuse(OutcomeForbidden, http.StatusNotFound, "unknown_distribution", "no distribution %q in the repository (codename or suite)", name)
	case !tok.Allows(d.Codename, d.Suite):
		return nil, refuse(OutcomeForbidden, http.StatusForbidden, "forbidden", "token %q may not upload to %s (scopes: %s)", tok.Name, d.Codename, strings.Join(tok.Scopes, ", "))
	case d.ReadOnly:
		return nil, refuse(OutcomeForbidden, http.StatusForbidden, "read_only", "distribution %s is ReadOnly: it takes no uploads", d.Codename)
	}
	return d, nil
}

// stagingDir makes a private directory for one upload under
// Options.TempDir; the caller removes it.
func (s *Server) stagingDir() (string, *refusal) {
	if err := os.MkdirAll(s.opts.TempDir, 0o700); err != nil {
		return "", refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
	}
	dir, err := os.MkdirTemp(s.opts.TempDir, "upload-*")
	if err != nil {
		return "", refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
	}
	return dir, nil
}

// check validates the staged packages, by at most
// Options.MaxValidations uploads at a time.
func (s *Server) check(ctx context.Context, d *repo.Distribution, ups []*staged) *refusal {
	if f := s.acquireCheck(ctx); f != nil {
		return f
	}
	defer s.releaseCheck()
	return s.validate(ctx, d, ups)
}

// packageResults are the answer's entries for the checked packages.
func packageResults(ups []*staged) []upload.PackageResult {
	out := make([]upload.PackageResult, 0, len(ups))
	for _, u := range ups {
		out = append(out, upload.PackageResult{File: u.name, Package: u.ctl.Get("Package"), Version: u.ctl.Get("Version"),
			Architecture: u.ctl.Get("Architecture"), SHA256: u.sha256, Size: u.size, Signature: u.sig})
	}
	return out
}

// stagedNames returns the staged files' paths, and a replacer that turns
// each path back into the client's file name in error messages.
func stagedNames(ups []*staged) ([]string, *strings.Replacer) {
	names := make([]string, 0, 2*len(ups))
	files := make([]string, len(ups))
	for i, u := range ups {
		names = append(names, u.path, u.name)
		files[i] = u.path
	}
	return files, strings.NewReplacer(names...)
}

// dryRun answers what an upload of the checked packages would do, without
// writing anything: the distribution must be signable, and each package
// gets its verdict.
func (s *Server) dryRun(ctx context.Context, w http.ResponseWriter, d *repo.Distribution, res *upload.Result, clientNames *strings.Replacer) {
	rp, err := s.opts.OpenRepo()
	if err == nil {
		_, err = rp.PublishSigner(ctx, d.Codename)
	}
	if err == nil {
		err = verdicts(ctx, rp, d.Codename, res.Packages)
	}
	if err != nil {
		s.failInclude(w, err, clientNames)
		return
	}
	s.single(res)
	s.answer(w, http.StatusOK, res)
}

// includePublish includes the staged files into d and publishes it, under
// the server's publish lock, and answers with what changed: 201 when a
// package was added or replaced, 200 when all were there already.
func (s *Server) includePublish(ctx context.Context, w http.ResponseWriter, tok *Token, d *repo.Distribution, res *upload.Result, files []string, clientNames *strings.Replacer) {
	if err := s.acquirePublish(ctx); err != nil {
		s.failInclude(w, err, clientNames)
		return
	}
	defer s.releasePublish()
	rp, err := s.opts.OpenRepo()
	if err != nil {
		s.failInclude(w, err, clientNames)
		return
	}
	start := s.opts.Now()
	// A client hanging up must not abort a publish half-way (it would
	// be rolled back, but the work is lost): only the lock wait obeys ctx.
	out, err := rp.IncludePublish(context.WithoutCancel(ctx), d.Codename, files, repo.PublishOptions{})
	if err != nil {
		s.failInclude(w, err, clientNames)
		return
	}
	s.metrics.publish(s.opts.Now().Sub(start))
	res.Exported, res.Deleted = out.Exported, out.Deleted
	res.Published = len(out.Exported) > 0
	for _, c := range out.Changes {
		res.Changes = append(res.Changes, upload.Change{Action: c.Action, Target: c.Target.String(), Package: c.Package, Version: c.Version, OldVersion: c.OldVersion, File: c.File})
	}
	fresh := actions(res.Packages, out.Changes)
	for _, p := range res.Packages {
		s.log.Info("upload", "token", tok.Name, "codename", d.Codename, "package", p.Package,
			"version", p.Version, "architecture", p.Architecture, "action", p.Action, "sha256", p.SHA256)
	}
	s.single(res)
	status, outcome := http.StatusOK, OutcomeUnchanged
	if fresh {
		status, outcome = http.StatusCreated, OutcomePublished
	}
	s.metrics.upload(outcome)
	s.answer(w, status, res)
}

// actions sets each package's action and pool file from the changes a
// publish made (unchanged when none is its own) and reports whether any
// package was added or replaced.
func actions(ps []upload.PackageResult, changes []repo.Change) (fresh bool) {
	for i := range ps {
		p := &ps[i]
		p.Action = upload.ActionUnchanged
		for _, c := range changes {
			if c.Package != p.Package || c.Version != p.Version || !isPoolFileOf(c.File, p) {
				continue
			}
			if p.Filename == "" {
				p.Filename = c.File
			}
			if c.Action == upload.ActionAdd || c.Action == upload.ActionReplace {
				p.Action, p.Filename = c.Action, c.File
				fresh = true
			}
		}
	}
	return fresh
}

// single copies the only package's details to the top-level fields.
func (s *Server) single(res *upload.Result) {
	if len(res.Packages) != 1 {
		return
	}
	p := res.Packages[0]
	res.Package, res.Version, res.Architecture, res.Action = p.Package, p.Version, p.Architecture, p.Action
	res.Filename, res.SHA256, res.Size, res.Signature = p.Filename, p.SHA256, p.Size, p.Signature
}

func (s *Server) answer(w http.ResponseWriter, status int, res *upload.Result) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(res)
}

// isPoolFileOf reports whether the pool file is p's (name, version
// without epoch, architecture).
func isPoolFileOf(file string, p *upload.PackageResult) bool {
	v := p.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return path.Base(file) == p.Package+"_"+v+"_"+p.Architecture+".deb"
}

// validate checks every staged package: a .deb with the fields a
// repository needs, an architecture the distribution has, (if required)
// a good origin signature, and no two of them the same package.
func (s *Server) validate(ctx context.Context, d *repo.Distribution, ups []*staged) *refusal {
	seen := map[string]string{}
	for _, u := range ups {
		f, err := os.Open(u.path)
		if err != nil {
			return refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging file: %v", err)
		}
		ctl, err := readControl(f, s.opts.MaxControlSize)
		if err != nil {
			f.Close()
			return refuse(OutcomeBadPackage, http.StatusUnprocessableEntity, "not_a_deb", "%s is not a usable .deb: %v; nothing was published", u.name, err)
		}
		u.ctl = ctl
		if kr := s.opts.RequireSignature[d.Codename]; kr != nil {
			sig, err := signing.VerifyDeb(ctx, kr, f, u.size, signing.VerifyOptions{Now: s.opts.Now})
			if err != nil {
				f.Close()
				return refuse(OutcomeBadSignature, http.StatusUnprocessableEntity, "bad_signature",
					"%s: %s requires a good origin signature by its keyring: %v; nothing was published", u.name, d.Codename, err)
			}
			u.sig = sig
		}
		f.Close()
		pkg, arch := ctl.Get("Package"), ctl.Get("Architecture")
		switch {
		case arch != "all" && !d.HasArchitecture(arch):
			return refuse(OutcomeBadPackage, http.StatusUnprocessableEntity, "bad_package",
				"%s: architecture %s is not one of %s's (%s); nothing was published", u.name, arch, d.Codename, strings.Join(d.Architectures, " "))
		case ctl.Get("Section") == "" || ctl.Get("Priority") == "":
			return refuse(OutcomeBadPackage, http.StatusUnprocessableEntity, "bad_package",
				"%s: %s has no Section or no Priority in its control file: the repository needs both; nothing was published", u.name, pkg)
		}
		key := pkg + " " + ctl.Get("Version") + " " + arch
		if prev, ok := seen[key]; ok {
			return refuse(OutcomeBadPackage, http.StatusUnprocessableEntity, "bad_package",
				"%s and %s are both %s %s (%s): upload each package once; nothing was published", prev, u.name, pkg, ctl.Get("Version"), arch)
		}
		seen[key] = u.name
	}
	return nil
}

// verdicts says for each package what an upload would do, from what the
// distribution holds: unchanged (this very file), clash (the same
// version, other bytes), older (a newer version is there) or add.
func verdicts(ctx context.Context, rp *repo.Repo, codename string, ps []upload.PackageResult) error {
	for i := range ps {
		p := &ps[i]
		entries, err := rp.List(ctx, codename, repo.Selection{}, []string{p.Package}, nil)
		if err != nil {
			return err
		}
		p.Action = upload.ActionAdd
		for _, e := range entries {
			if e.Architecture != p.Architecture {
				continue
			}
			cmp, err := deb.CompareVersions(e.Version, p.Version)
			if err != nil {
				return fmt.Errorf("%s: %w: %v", p.File, repo.ErrBadPackage, err)
			}
			switch {
			case cmp > 0:
				p.Action, p.Filename, p.Existing, p.ExistingSHA256 = upload.ActionOlder, e.File, e.Version, stanzaSHA256(e.Stanza)
			case cmp == 0 && p.Action != upload.ActionOlder:
				p.Filename, p.Existing, p.ExistingSHA256 = e.File, e.Version, stanzaSHA256(e.Stanza)
				p.Action = upload.ActionUnchanged
				if p.ExistingSHA256 != p.SHA256 {
					p.Action = upload.ActionClash
				}
			}
		}
	}
	return nil
}

// stanzaSHA256 is the SHA256 field of a Packages stanza.
func stanzaSHA256(stanza []byte) string {
	for _, line := range strings.Split(string(stanza), "\n") {
		if v, ok := strings.CutPrefix(line, "SHA256:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// stageBody writes the packages of the request into dir: the raw body
// (Content-Type application/vnd.debian.binary-package,
// application/x-debian-package or application/octet-stream; the name from
// Content-Disposition), or every file part of multipart/form-data. The
// files together may hold max bytes.
func stageBody(r *http.Request, dir string, max int64) ([]*staged, *refusal) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, err = "application/octet-stream", nil
	}
	if err != nil {
		return nil, refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type %q: %v", ct, err)
	}
	left := max
	var ups []*staged
	add := func(name string, body io.Reader) *refusal {
		if len(ups) == maxFiles {
			return refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "more than %d packages in one upload", maxFiles)
		}
		sub := filepath.Join(dir, strconv.Itoa(len(ups)))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
		}
		u := &staged{name: name, path: filepath.Join(sub, name)}
		f, err := os.OpenFile(u.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging file: %v", err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, left+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		left -= n
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe) || left < 0:
			return refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload exceeds the server's limit of %d bytes (serve --max-upload)", max)
		case err != nil:
			return refuse(OutcomeBadPackage, http.StatusBadRequest, "bad_request", "reading the upload of %s: %v", name, err)
		}
		u.size, u.sha256 = n, hex.EncodeToString(h.Sum(nil))
		ups = append(ups, u)
		return nil
	}
	switch mt {
	case "application/vnd.debian.binary-package", "application/x-debian-package", "application/octet-stream":
		name := ""
		if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = p["filename"]
		}
		if f := add(safeName(name), r.Body); f != nil {
			return nil, f
		}
		return ups, nil
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type", "multipart body: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload exceeds the server's limit of %d bytes (serve --max-upload)", max)
			}
			if err != nil {
				return nil, refuse(OutcomeBadPackage, http.StatusBadRequest, "bad_request", "multipart body: %v", err)
			}
			if part.FileName() != "" {
				if f := add(safeName(part.FileName()), part); f != nil {
					return nil, f
				}
			}
			part.Close()
		}
		if len(ups) == 0 {
			return nil, refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type",
				"multipart body has no file part (send each .deb as a file field, e.g. curl -F package=@hi_0.2_all.deb)")
		}
		return ups, nil
	}
	return nil, refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type",
		"Content-Type %q is not accepted; send the .deb as application/vnd.debian.binary-package or multipart/form-data", mt)
}

// failInclude maps the repo package's errors to HTTP answers. Messages
// name the client's file name, not the staging path.
func (s *Server) failInclude(w http.ResponseWriter, err error, names *strings.Replacer) {
	msg := names.Replace(err.Error())
	switch {
	case errors.Is(err, repo.ErrVersionClash):
		s.fail(w, OutcomeConflict, http.StatusConflict, "version_clash", "%s; nothing was published", msg)
	case errors.Is(err, repo.ErrOlderVersion):
		s.fail(w, OutcomeConflict, http.StatusConflict, "older_version", "%s; nothing was published", msg)
	case errors.Is(err, repo.ErrReadOnly):
		s.fail(w, OutcomeForbidden, http.StatusForbidden, "read_only", "%s", msg)
	case errors.Is(err, repo.ErrBadPackage), errors.Is(err, repo.ErrArchitecture), errors.Is(err, repo.ErrComponent):
		s.fail(w, OutcomeBadPackage, http.StatusUnprocessableEntity, "bad_package", "%s; nothing was published", msg)
	case errors.Is(err, repo.ErrLocked):
		s.fail(w, OutcomeBusy, http.StatusServiceUnavailable, "busy", "%s; try again later", msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.fail(w, OutcomeBusy, http.StatusServiceUnavailable, "busy", "%s", msg)
	default:
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "%s", msg)
	}
}

// safeName reduces a client's file name to a harmless base name.
func safeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	ok := name != "" && name != "." && name != ".." && !strings.HasPrefix(name, ".") && len(name) <= 200
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-_~", c)) {
			ok = false
		}
	}
	if !ok {
		return "upload.deb"
	}
	if !strings.HasSuffix(name, ".deb") {
		name += ".deb"
	}
	return name
}

// readControl checks f as a .deb (structure, control member of at most
// maxControl bytes decompressed) and returns its control paragraph.
func readControl(f *os.File, maxControl int64) (*deb.Paragraph, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dr, err := deb.NewReaderOptions(f, deb.ReaderOptions{MaxControlSize: maxControl})
	if err != nil {
		return nil, err
	}
	ci, err := dr.Control()
	if err != nil {
		return nil, err
	}
	for _, field := range []string{"Package", "Version", "Architecture"} {
		if ci.Paragraph.Get(field) == "" {
			return nil, fmt.Errorf("%w: control file has no %s", deb.ErrMissingField, field)
		}
	}
	return ci.Paragraph, nil
}
