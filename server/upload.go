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
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// UploadResult is the JSON answer to a successful upload.
type UploadResult struct {
	// Codename of the distribution the package went into.
	Codename     string `json:"codename"`
	Package      string `json:"package"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	// Action: "add" (new), "replace" (pushed an older version out) or
	// "unchanged" (the same file was there already).
	Action string `json:"action"`
	// Filename is the pool path ("pool/main/h/hi/hi_0.2_all.deb").
	Filename string   `json:"filename"`
	SHA256   string   `json:"sha256"`
	Size     int64    `json:"size"`
	Changes  []Change `json:"changes"`
	// Exported lists the distributions published by this upload.
	Exported []string `json:"exported,omitempty"`
	// Signature is the origin signature checked, when one was required.
	Signature *signing.Signature `json:"signature,omitempty"`
}

// Change is one effect of an upload on a package list (repo.Change with
// the target written "codename|component|arch").
type Change struct {
	Action     string `json:"action"`
	Target     string `json:"target"`
	Package    string `json:"package"`
	Version    string `json:"version"`
	OldVersion string `json:"old_version,omitempty"`
	File       string `json:"file,omitempty"`
}

// APIError is the JSON answer to a refused request (and the error the
// Client returns for one).
type APIError struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Code is a stable machine-readable reason: unauthorized, revoked,
	// forbidden, unknown_distribution, too_large, unsupported_media_type,
	// not_a_deb, bad_package, bad_signature, version_clash,
	// older_version, read_only, busy, internal.
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

func (s *Server) fail(w http.ResponseWriter, outcome string, status int, code, format string, a ...any) {
	s.metrics.upload(outcome)
	e := &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
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

// handleUpload is POST /api/v1/repos/{codename}/packages: a .deb as the
// raw body or as the (first) file of a multipart/form-data body.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("codename")

	// 1. Who is asking, and may they?
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		s.fail(w, OutcomeUnauthorized, http.StatusUnauthorized, "unauthorized", "no bearer token: send 'Authorization: Bearer TOKEN' (create one with lampi-pkg token create)")
		return
	}
	tok, err := s.opts.Tokens.Authenticate(strings.TrimSpace(secret))
	switch {
	case errors.Is(err, ErrTokenRevoked):
		s.fail(w, OutcomeForbidden, http.StatusForbidden, "revoked", "token %q (ID %s) was revoked; ask for a new one", tok.Name, tok.ID)
		return
	case errors.Is(err, ErrTokenInvalid):
		s.fail(w, OutcomeUnauthorized, http.StatusUnauthorized, "unauthorized", "unknown or malformed token")
		return
	case err != nil:
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "token store: %v", err)
		return
	}
	conf, err := repo.LoadConfig(filepath.Join(s.opts.Dir, "conf"))
	if err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "repository configuration: %v", err)
		return
	}
	var d *repo.Distribution
	for _, x := range conf.Distributions {
		if x.Codename == name || x.Suite == name {
			d = x
			break
		}
	}
	if d == nil {
		s.fail(w, OutcomeForbidden, http.StatusNotFound, "unknown_distribution", "no distribution %q in the repository (codename or suite)", name)
		return
	}
	if !tok.Allows(d.Codename, d.Suite) {
		s.fail(w, OutcomeForbidden, http.StatusForbidden, "forbidden", "token %q may not upload to %s (scopes: %s)", tok.Name, d.Codename, strings.Join(tok.Scopes, ", "))
		return
	}

	// 2. Read the body into a private staging file, within the limit.
	max := s.opts.MaxUpload
	const framing = 64 << 10 // room for multipart headers around the file
	if r.ContentLength > max+framing {
		s.fail(w, OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload of %d bytes exceeds the server's limit of %d bytes (serve --max-upload)", r.ContentLength, max)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+framing)
	body, filename, err := uploadBody(r)
	if err != nil {
		s.fail(w, OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type", "%v", err)
		return
	}
	if err := os.MkdirAll(s.opts.TempDir, 0o700); err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
		return
	}
	dir, err := os.MkdirTemp(s.opts.TempDir, "upload-*")
	if err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
		return
	}
	defer os.RemoveAll(dir)
	staged := filepath.Join(dir, filename)
	f, err := os.OpenFile(staged, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "staging file: %v", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, max+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || size > max:
		s.fail(w, OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload exceeds the server's limit of %d bytes (serve --max-upload)", max)
		return
	case err != nil:
		s.fail(w, OutcomeBadPackage, http.StatusBadRequest, "bad_request", "reading the upload: %v", err)
		return
	}

	// 3. Is it a .deb, and (if required) signed by whom it must be?
	ctl, err := readControl(f)
	if err != nil {
		s.fail(w, OutcomeBadPackage, http.StatusUnprocessableEntity, "not_a_deb", "%s is not a usable .deb: %v", filename, err)
		return
	}
	res := &UploadResult{Codename: d.Codename, Package: ctl.Get("Package"), Version: ctl.Get("Version"),
		Architecture: ctl.Get("Architecture"), SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}
	if kr := s.opts.RequireSignature[d.Codename]; kr != nil {
		sig, err := signing.VerifyDeb(ctx, kr, f, size, signing.VerifyOptions{Now: s.opts.Now})
		if err != nil {
			s.fail(w, OutcomeBadSignature, http.StatusUnprocessableEntity, "bad_signature",
				"%s: %s requires a good origin signature by its keyring: %v", filename, d.Codename, err)
			return
		}
		res.Signature = sig
	}
	if err := f.Close(); err != nil {
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "staging file: %v", err)
		return
	}

	// 4. Include and publish, one upload at a time, through the same
	// locked, atomic path as "lampi-pkg repo includedeb".
	if err := s.acquirePublish(ctx); err != nil {
		s.failInclude(w, err, staged, filename)
		return
	}
	defer s.releasePublish()
	rp, err := s.opts.OpenRepo()
	if err != nil {
		s.failInclude(w, err, staged, filename)
		return
	}
	start := s.opts.Now()
	// A client hanging up must not abort a publish half-way (it would
	// be rolled back, but the work is lost): only the lock wait obeys ctx.
	out, err := rp.IncludeDeb(context.WithoutCancel(ctx), d.Codename, []string{staged}, repo.IncludeOptions{})
	if err != nil {
		s.failInclude(w, err, staged, filename)
		return
	}
	s.metrics.publish(s.opts.Now().Sub(start))
	res.Exported = out.Exported
	res.Action = "unchanged"
	for _, c := range out.Changes {
		res.Changes = append(res.Changes, Change{c.Action, c.Target.String(), c.Package, c.Version, c.OldVersion, c.File})
		if res.Filename == "" {
			res.Filename = c.File
		}
		if c.Action == "add" || c.Action == "replace" {
			res.Action, res.Filename = c.Action, c.File
		}
	}
	status := http.StatusCreated
	outcome := OutcomePublished
	if res.Action == "unchanged" {
		status, outcome = http.StatusOK, OutcomeUnchanged
	}
	s.metrics.upload(outcome)
	s.log.Info("upload", "token", tok.Name, "codename", d.Codename, "package", res.Package,
		"version", res.Version, "architecture", res.Architecture, "action", res.Action, "sha256", res.SHA256)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(res)
}

// failInclude maps the repo package's errors to HTTP answers. Messages
// name the client's file name, not the staging path.
func (s *Server) failInclude(w http.ResponseWriter, err error, staged, filename string) {
	msg := strings.ReplaceAll(err.Error(), staged, filename)
	switch {
	case errors.Is(err, repo.ErrVersionClash):
		s.fail(w, OutcomeConflict, http.StatusConflict, "version_clash", "%s", msg)
	case errors.Is(err, repo.ErrOlderVersion):
		s.fail(w, OutcomeConflict, http.StatusConflict, "older_version", "%s", msg)
	case errors.Is(err, repo.ErrReadOnly):
		s.fail(w, OutcomeForbidden, http.StatusForbidden, "read_only", "%s", msg)
	case errors.Is(err, repo.ErrBadPackage), errors.Is(err, repo.ErrArchitecture), errors.Is(err, repo.ErrComponent):
		s.fail(w, OutcomeBadPackage, http.StatusUnprocessableEntity, "bad_package", "%s", msg)
	case errors.Is(err, repo.ErrLocked):
		s.fail(w, OutcomeBusy, http.StatusServiceUnavailable, "busy", "%s; try again later", msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.fail(w, OutcomeBusy, http.StatusServiceUnavailable, "busy", "%s", msg)
	default:
		s.fail(w, OutcomeError, http.StatusInternalServerError, "internal", "%s", msg)
	}
}

// uploadBody returns the package bytes and a safe file name: the raw body
// (Content-Type application/vnd.debian.binary-package,
// application/x-debian-package or application/octet-stream; the name from
// Content-Disposition), or the first file part of multipart/form-data.
func uploadBody(r *http.Request) (io.Reader, string, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" {
		mt, err = "application/octet-stream", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("Content-Type %q: %v", ct, err)
	}
	switch mt {
	case "application/vnd.debian.binary-package", "application/x-debian-package", "application/octet-stream":
		name := ""
		if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = p["filename"]
		}
		return r.Body, safeName(name), nil
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, "", fmt.Errorf("multipart body: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				return nil, "", fmt.Errorf("multipart body has no file part (send the .deb as a file field, e.g. curl -F package=@hi_0.2_all.deb): %v", err)
			}
			if part.FileName() != "" {
				return part, safeName(part.FileName()), nil
			}
			part.Close()
		}
	}
	return nil, "", fmt.Errorf("Content-Type %q is not accepted; send the .deb as application/vnd.debian.binary-package or multipart/form-data", mt)
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

// readControl checks f as a .deb (structure, control member) and returns
// its control paragraph.
func readControl(f *os.File) (*deb.Paragraph, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	dr, err := deb.NewReader(f)
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
