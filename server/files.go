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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// hashETagLimit: files up to this size get a content-hash ETag.
const hashETagLimit = 1 << 20

// maxCachedTags bounds the ETag cache (one entry per served file).
const maxCachedTags = 16384

// fileServer serves dists/ and pool/ (each its own os.Root, so that no
// symbolic link leads from one into conf/ or db/) and a fixed set of
// public keyring files at the top of the repository.
//
// It serves what is at those paths now: when dists/, pool/ or the whole
// repository is replaced (a backup restored, a synced tree moved into
// place, a symbolic link switched), the next request opens the new
// directory. On Linux the watcher tells when to look (an event on an
// entry the paths are looked up through); elsewhere every request checks.
type fileServer struct {
	dir   string // absolute
	mu    sync.Mutex
	trees [numTops]atomic.Pointer[tree]
	// checked is 1 + the watcher's chain generation in which the trees
	// were last found to be the directories at their paths (0: never).
	checked   atomic.Uint64
	unwatched atomic.Bool // the paths could not be watched: look every time
	tags      tagCache
	hot       hotCache
	keys      keyCache
	dates     dateBook
}

// The served trees: the repository's base (key files only), dists/, pool/.
const (
	topBase = iota
	topDists
	topPool
	numTops
)

var topNames = [numTops]string{"", "dists", "pool"}

func newFileServer(dir string, warn func(string, error)) (*fileServer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	s := &fileServer{dir: abs, dates: dateBook{path: repo.Layout{Base: abs}.ServeDates(), warn: warn}}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	if _, err := os.Stat(path.Join(abs, "dists")); err != nil {
		return nil, fmt.Errorf("%s has no dists/: %w; export the repository first (lampi-pkg repo -b %s export)", dir, err, dir)
	}
	return s, nil
}

// topOf maps the first segment of a request path to its tree.
func topOf(seg string) (int, bool) {
	switch seg {
	case "dists":
		return topDists, true
	case "pool":
		return topPool, true
	}
	return 0, false
}

// current makes sure the open trees are the directories at their paths
// and returns the watcher generation the hot cache's entries must have to
// be trusted (^0 when it must not be used).
//
// With the watcher on, the paths are looked at only after an event on an
// entry they are looked up through (the first time, the watches are put
// in place). Without it (not Linux, a watch refused, or the state unknown
// while another request reads the events), every request looks: a stat
// of each path.
func (s *fileServer) current() uint64 {
	w := &s.hot.w
	if !w.enabled() || s.unwatched.Load() {
		s.look()
		return ^uint64(0)
	}
	gen, chain := w.generations()
	if chain == ^uint64(0) {
		s.look()
		return ^uint64(0)
	}
	if s.checked.Load() != chain+1 && !s.rewatch(chain) {
		return ^uint64(0)
	}
	return gen
}

// rewatch watches the directories the paths are looked up through, then
// looks at the paths, and records that the trees are current as of the
// chain generation chain. It reports false when the watches could not be
// put in place (from then on every request looks).
func (s *fileServer) rewatch(chain uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checked.Load() == chain+1 {
		return true // another request just did
	}
	// Watches first, then the look: a change after the look is an event.
	dirs := map[string][]string{}
	err := lookups(path.Join(s.dir, "dists"), dirs)
	if err == nil {
		err = lookups(path.Join(s.dir, "pool"), dirs)
	}
	if err != nil || !s.hot.w.watchChain(dirs) {
		s.unwatched.Store(true)
		s.swapStale()
		return false
	}
	s.swapStale()
	s.checked.Store(chain + 1)
	return true
}

// look makes the open trees the directories at their paths now.
func (s *fileServer) look() {
	for i := range s.trees {
		if !s.isCurrent(i) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.swapStale()
			return
		}
	}
}

// isCurrent reports whether tree i is the directory at its path (both
// absent counts).
func (s *fileServer) isCurrent(i int) bool {
	cur := s.trees[i].Load()
	fi, err := os.Stat(path.Join(s.dir, topNames[i]))
	if err != nil || !fi.IsDir() {
		return cur == nil
	}
	return cur != nil && os.SameFile(cur.info, fi)
}

// swapStale opens, in place of each tree that is not the directory at its
// path, the one there now (none when there is none). Only call it holding
// s.mu.
func (s *fileServer) swapStale() {
	changed := false
	for i := range s.trees {
		if s.isCurrent(i) {
			continue
		}
		var t *tree
		if p := path.Join(s.dir, topNames[i]); isDir(p) {
			t, _ = openTree(p) // none when it cannot be opened: 404 until it can
		}
		cur := s.trees[i].Swap(t)
		if cur != nil {
			cur.release()
		}
		changed = changed || cur != nil || t != nil
	}
	if changed {
		s.hot.w.forgetTree()
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// open opens name (relative, slash-separated) in a tree; a missing tree
// gives fs.ErrNotExist.
func (s *fileServer) open(top int, name string) (*os.File, error) {
	for range 3 { // a tree replaced meanwhile: take the new one
		t := s.trees[top].Load()
		if t == nil {
			break
		}
		if !t.acquire() {
			continue
		}
		f, err := t.open(name)
		t.release()
		return f, err
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func (s *fileServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hot.w.close()
	for i := range s.trees {
		if t := s.trees[i].Swap(nil); t != nil {
			t.release()
		}
	}
}

// validators returns the ETag and Last-Modified of the open file f
// (fi = f.Stat()), name being its path in the repository.
func (s *fileServer) validators(name string, f *os.File, fi fs.FileInfo) (validators, error) {
	tag, err := s.tags.get(name, f, fi)
	if err != nil {
		return validators{}, err
	}
	sec := fi.ModTime().Unix()
	if storage.RevalidatedByDate(name) {
		sec = s.dates.date(name, tag, sec)
	}
	return newValidators(tag, sec), nil
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

// conditional strips an If-Modified-Since that does not name the current
// version's date exactly (see dates.go), so that http.ServeContent
// answers it with the file; If-None-Match, when present, decides alone.
func conditional(r *http.Request, v *validators) {
	ims := r.Header["If-Modified-Since"]
	if len(ims) == 0 || len(r.Header["If-None-Match"]) > 0 {
		return
	}
	if len(ims) > 1 || v.modifiedSince(ims[0]) {
		delete(r.Header, "If-Modified-Since")
	}
}

// servePublished serves /dists/… and /pool/….
func (s *fileServer) servePublished(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, "/")
	top, rest, _ := strings.Cut(rel, "/")
	ti, ok := topOf(top)
	if !ok || rest == "" || strings.HasSuffix(rest, "/") {
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
	immutable := ti == topDists && strings.Contains(rest, "/by-hash/")
	h := w.Header()
	inm, ims := r.Header["If-None-Match"], r.Header["If-Modified-Since"]
	valid := s.current()
	if ti == topDists && (len(inm) == 1 || len(inm) == 0 && len(ims) == 1) {
		// The common case of a fleet: "has anything changed?" (apt asks
		// with If-Modified-Since, other clients with If-None-Match).
		if e, ok := s.hot.lookup(name, valid); ok && e.unchanged(inm, ims) {
			h["Etag"] = e.tagHdr
			if immutable {
				h["Cache-Control"] = []string{cacheImmutable}
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	gen, cacheable := uint64(0), false
	if ti == topDists {
		gen, cacheable = s.hot.prepare(path.Join(s.dir, top), rest)
		cacheable = cacheable && gen == valid
	}
	f, err := s.open(ti, rest)
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
	v, err := s.validators(name, f, fi)
	if err != nil {
		http.Error(w, "cannot read file", http.StatusInternalServerError)
		return
	}
	if cacheable {
		s.hot.store(name, newHotEntry(gen, v))
	}
	h["Content-Type"] = contentTypeHdr(rest)
	h["Etag"] = []string{v.tag}
	if immutable {
		// Content addressed: never changes under this name.
		h["Cache-Control"] = []string{cacheImmutable}
	}
	conditional(r, &v)
	http.ServeContent(w, r, "", v.mod, f)
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
		s.current()
		f, err := s.open(topBase, name)
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
func publicKeyFiles(repoDir string) (names []string, refused map[string]error) {
	base, err := os.OpenRoot(repoDir)
	if err != nil {
		return nil, nil
	}
	defer base.Close()
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
