package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
	st := &stager{dir: dir, max: max, left: max}
	switch mt {
	case "application/vnd.debian.binary-package", "application/x-debian-package", "application/octet-stream":
		name := ""
		if _, p, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = p["filename"]
		}
		if f := st.add(safeName(name), r.Body); f != nil {
			return nil, f
		}
		return st.ups, nil
	case "multipart/form-data":
		if f := st.parts(r); f != nil {
			return nil, f
		}
		return st.ups, nil
	}
	return nil, refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type",
		"Content-Type %q is not accepted; send the .deb as application/vnd.debian.binary-package or multipart/form-data", mt)
}

// stager writes the files of one upload into dir, each in a directory of
// its own, within max bytes in all (left of them still free).
type stager struct {
	dir       string
	max, left int64
	ups       []*staged
}

// add writes one file, named name, from body, and notes its size and
// SHA-256.
func (st *stager) add(name string, body io.Reader) *refusal {
	if len(st.ups) == maxFiles {
		return refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "more than %d packages in one upload", maxFiles)
	}
	sub := filepath.Join(st.dir, strconv.Itoa(len(st.ups)))
	if err := os.Mkdir(sub, 0o700); err != nil {
		return refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging directory: %v", err)
	}
	u := &staged{name: name, path: filepath.Join(sub, name)}
	f, err := os.OpenFile(u.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return refuse(OutcomeError, http.StatusInternalServerError, "internal", "staging file: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, st.left+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	st.left -= n
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || st.left < 0:
		return refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload exceeds the server's limit of %d bytes (serve --max-upload)", st.max)
	case err != nil:
		return refuse(OutcomeBadPackage, http.StatusBadRequest, "bad_request", "reading the upload of %s: %v", name, err)
	}
	u.size, u.sha256 = n, hex.EncodeToString(h.Sum(nil))
	st.ups = append(st.ups, u)
	return nil
}

// parts adds every file part of a multipart/form-data body; other parts
// are skipped, and a body without a file part is refused.
func (st *stager) parts(r *http.Request) *refusal {
	mr, err := r.MultipartReader()
	if err != nil {
		return refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type", "multipart body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refuse(OutcomeTooLarge, http.StatusRequestEntityTooLarge, "too_large", "upload exceeds the server's limit of %d bytes (serve --max-upload)", st.max)
		}
		if err != nil {
			return refuse(OutcomeBadPackage, http.StatusBadRequest, "bad_request", "multipart body: %v", err)
		}
		if part.FileName() != "" {
			if f := st.add(safeName(part.FileName()), part); f != nil {
				return f
			}
		}
		part.Close()
	}
	if len(st.ups) == 0 {
		return refuse(OutcomeBadPackage, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"multipart body has no file part (send each .deb as a file field, e.g. curl -F package=@hi_0.2_all.deb)")
	}
	return nil
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
