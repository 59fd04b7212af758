package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

// hashETagLimit: files up to this size get a content-hash ETag.
const hashETagLimit = 1 << 20

// maxCachedTags bounds the ETag cache (one entry per served file).
const maxCachedTags = 16384

// fileServer serves dists/ and pool/ (each its own os.Root, so that no
// symbolic link leads from one into conf/ or db/) and a fixed set of
// public keyring files at the top of the repository.
type fileServer struct {
	dir   string
	mu    sync.Mutex // opening and closing roots
	dists atomic.Pointer[tree]
	pool  atomic.Pointer[tree] // opened when first there
	base  *os.Root             // the repository base, for key files only
	tags  tagCache
	hot   hotCache
	keys  keyCache
}

func newFileServer(dir string) (*fileServer, error) {
	fs := &fileServer{dir: dir}
	base, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	fs.base = base
	if _, err := os.Stat(path.Join(dir, "dists")); err != nil {
		fs.close()
		return nil, fmt.Errorf("%s has no dists/: %w; export the repository first (lampi-pkg repo -b %s export)", dir, err, dir)
	}
	return fs, nil
}

// root returns the os.Root of dists/ or pool/, opening it the first time
// the directory exists (pool/ appears with the first package).
func (s *fileServer) root(top string) *tree {
	var p *atomic.Pointer[tree]
	switch top {
	case "dists":
		p = &s.dists
	case "pool":
		p = &s.pool
	default:
		return nil
	}
	if r := p.Load(); r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := p.Load(); r != nil {
		return r
	}
	r, err := openTree(path.Join(s.dir, top))
	if err != nil {
		return nil
	}
	p.Store(r)
	return r
}

func (s *fileServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hot.w.close()
	for _, p := range []*atomic.Pointer[tree]{&s.dists, &s.pool} {
		if r := p.Swap(nil); r != nil {
			r.close()
		}
	}
	if s.base != nil {
		s.base.Close()
	}
}

// badPath reports whether a request path must be refused outright: a
// "." or ".." segment, a NUL byte or a backslash. Go's mux would redirect
// "/a/../b" to "/b"; refusing is clearer and costs nothing.
func badPath(p string) bool {
	if strings.ContainsAny(p, "\x00\\") {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// servePublished serves /dists/… and /pool/….
func (s *fileServer) servePublished(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, "/")
	top, rest, _ := strings.Cut(rel, "/")
	root := s.root(top)
	if root == nil || rest == "" || strings.HasSuffix(rest, "/") {
		http.NotFound(w, r)
		return
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg[0] == '.' {
			// Hidden names are the publisher's temporary files.
			http.NotFound(w, r)
			return
		}
	}
	name := top + "/" + rest
	immutable := top == "dists" && strings.Contains(rest, "/by-hash/")
	h := w.Header()
	inm, ims := r.Header["If-None-Match"], r.Header["If-Modified-Since"]
	if top == "dists" && (len(inm) == 1 || len(inm) == 0 && len(ims) == 1) {
		// The common case of a fleet: "has anything changed?" (apt asks
		// with If-Modified-Since, other clients with If-None-Match).
		if e, ok := s.hot.lookup(name); ok && e.unchanged(inm, ims) {
			h["Etag"] = e.tagHdr
			if immutable {
				h["Cache-Control"] = []string{cacheImmutable}
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	gen, cacheable := uint64(0), false
	if top == "dists" {
		gen, cacheable = s.hot.prepare(path.Join(s.dir, top), rest)
	}
	f, err := root.open(rest)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	tag, err := s.tags.get(name, f, fi)
	if err != nil {
		http.Error(w, "cannot read file", http.StatusInternalServerError)
		return
	}
	if cacheable {
		s.hot.store(name, newHotEntry(gen, tag, fi.ModTime()))
	}
	h["Content-Type"] = contentTypeHdr(rest)
	h["Etag"] = []string{tag}
	if immutable {
		// Content addressed: never changes under this name.
		h["Cache-Control"] = []string{cacheImmutable}
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

const cacheImmutable = "public, max-age=31536000, immutable"

// serveKey serves a keyring at the top of the repository: not the file
// itself but the public keys it holds, re-serialized (armored when the
// file is), so that nothing else in the file can ever be served; a file
// holding secret key material anywhere, or anything but public keys, is
// not served at all (see keyCache). The answer is cached per version of
// the file.
func (s *fileServer) serveKey(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := openNoWait(s.base, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		k := s.keys.get(name, f, fi)
		if k.body == nil {
			http.NotFound(w, r)
			return
		}
		w.Header()["Content-Type"] = []string{contentType(name)}
		w.Header()["Etag"] = []string{k.tag}
		http.ServeContent(w, r, "", fi.ModTime(), bytes.NewReader(k.body))
	})
}

// publicKeyFiles lists the top-level *.gpg, *.asc and *.pub files of the
// repository base that hold public keys only; refused maps the others to
// the reason.
func publicKeyFiles(base *os.Root) (names []string, refused map[string]error) {
	dir, err := openNoWait(base, ".")
	if err != nil {
		return nil, nil
	}
	entries, err := dir.ReadDir(-1)
	dir.Close()
	if err != nil {
		return nil, nil
	}
	refused = map[string]error{}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !keyExt(n) {
			continue
		}
		if _, err := readPublicKeys(base, n); err != nil {
			refused[n] = err
			continue
		}
		names = append(names, n)
	}
	return names, refused
}

func keyExt(n string) bool {
	return strings.HasSuffix(n, ".gpg") || strings.HasSuffix(n, ".asc") || strings.HasSuffix(n, ".pub")
}

// maxKeyFile bounds a served key file.
const maxKeyFile = 1 << 20

// errNotKeyFile: a key file is not a regular file or too large.
var errNotKeyFile = errors.New("not a regular file of at most 1 MiB")

// readPublicKeys opens the key file name in base (never waiting on a
// FIFO) and returns what is served for it (see publicKeys).
func readPublicKeys(base *os.Root, name string) ([]byte, error) {
	f, err := openNoWait(base, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotKeyFile
	}
	return publicKeys(f, fi.Size())
}

// publicKeys reads a key file (size bytes) and returns the public keys
// it holds, re-serialized: armored when the file is text, else binary.
// A file with secret key material anywhere, or anything but public keys,
// is refused (signing.ReadPublicKeyring).
func publicKeys(f io.ReaderAt, size int64) ([]byte, error) {
	if size > maxKeyFile {
		return nil, errNotKeyFile
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, errNotKeyFile
	}
	kr, err := signing.ReadPublicKeyring(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := kr.Write(&out, len(data) > 0 && data[0]&0x80 == 0); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// contentTypeHdrs are the header values of contentType's answers,
// shared by all responses (net/http never modifies a header value slice
// in place, and each has len == cap, so an append copies).
var contentTypeHdrs = map[string][]string{}

func init() {
	for _, n := range []string{"a.deb", "a.gz", "a.xz", "a.zst", "a.bz2", "Release.gpg", "a.gpg", "a.asc", "InRelease", "a"} {
		ct := contentType(n)
		contentTypeHdrs[ct] = []string{ct}
	}
}

func contentTypeHdr(name string) []string {
	ct := contentType(name)
	if h, ok := contentTypeHdrs[ct]; ok {
		return h
	}
	return []string{ct}
}

// contentType maps published names to media types. by-hash files have no
// extension; they are served as octet streams (apt ignores the type).
func contentType(name string) string {
	base := path.Base(name)
	switch {
	case strings.HasSuffix(base, ".deb"):
		return "application/vnd.debian.binary-package"
	case strings.HasSuffix(base, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(base, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(base, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(base, ".bz2"):
		return "application/x-bzip2"
	case base == "Release.gpg":
		return "application/pgp-signature"
	case strings.HasSuffix(base, ".gpg"), strings.HasSuffix(base, ".pub"):
		return "application/pgp-keys"
	case strings.HasSuffix(base, ".asc"):
		return "application/pgp-keys"
	case base == "InRelease", base == "Release", base == "Packages", base == "Sources", base == "Contents":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// fileID identifies one version of a file: any write changes mtime and
// ctime, any replacement by rename the inode and ctime.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.dev, id.ino, id.ctime = statIdentity(fi)
	return id
}

// tagCache remembers the ETag of each served path for its current fileID.
type tagCache struct {
	mu sync.RWMutex
	m  map[string]tagEntry
}

type tagEntry struct {
	id  fileID
	tag string
}

// get returns the strong ETag of the open file f (fi = f.Stat()).
func (c *tagCache) get(name string, f *os.File, fi fs.FileInfo) (string, error) {
	id := idOf(fi)
	c.mu.RLock()
	e, ok := c.m[name]
	c.mu.RUnlock()
	if ok && e.id == id {
		return e.tag, nil
	}
	var tag string
	if id.size <= hashETagLimit {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, id.size)); err != nil {
			return "", err
		}
		tag = `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
		// A file rewritten in place while it was hashed (the publisher
		// never does this) gets no cached tag.
		if now, err := f.Stat(); err != nil || idOf(now) != id {
			tag = identityTag(id)
		}
	} else {
		tag = identityTag(id)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTags {
		c.m = make(map[string]tagEntry)
	}
	c.m[name] = tagEntry{id, tag}
	c.mu.Unlock()
	return tag, nil
}

func identityTag(id fileID) string {
	return `"` + strconv.FormatUint(id.ino, 16) + "-" + strconv.FormatInt(id.size, 16) + "-" +
		strconv.FormatInt(id.mtime, 16) + "-" + strconv.FormatInt(id.ctime, 16) + `"`
}

// keyCache remembers what is served for each top-level key file, per
// version of the file.
type keyCache struct {
	mu sync.Mutex
	m  map[string]keyEntry
}

// keyEntry: body is nil when the file is not served.
type keyEntry struct {
	id   fileID
	body []byte
	tag  string
}

func (c *keyCache) get(name string, f *os.File, fi fs.FileInfo) keyEntry {
	id := idOf(fi)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[name]; ok && e.id == id {
		return e
	}
	e := keyEntry{id: id}
	if body, err := publicKeys(f, fi.Size()); err == nil {
		sum := sha256.Sum256(body)
		e.body, e.tag = body, `"`+hex.EncodeToString(sum[:16])+`"`
	}
	// A file rewritten while it was read gets no cached answer.
	if now, err := f.Stat(); err != nil || idOf(now) != id {
		return e
	}
	if c.m == nil {
		c.m = make(map[string]keyEntry)
	}
	c.m[name] = e
	return e
}
