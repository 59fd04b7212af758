package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// DefaultMaxUpload is the default limit of an upload's body.
const DefaultMaxUpload = 200 << 20

// Defaults of the checks of uploaded packages (Options.MaxControlSize,
// Options.MaxValidations, Options.ValidationWait).
const (
	// DefaultMaxControlSize bounds an uploaded package's decompressed
	// control member: 16 MiB is several times the largest in Debian
	// (md5sums of tens of thousands of files), a quarter of what
	// deb.MaxControlSize allows a local file.
	DefaultMaxControlSize = 16 << 20
	// DefaultMaxValidations: checking a package takes milliseconds, so
	// two at a time keep a queue of uploads moving while bounding the
	// memory of the checks to about 2 × 2 × MaxControlSize.
	DefaultMaxValidations = 2
	// DefaultValidationWait is how long an upload waits for its turn.
	DefaultValidationWait = 10 * time.Second
)

// Options configure a Server. Dir and Now are required.
type Options struct {
	// Dir is the repository's base directory (conf/, db/, dists/, pool/).
	Dir string
	// Now is the clock: signatures are verified at Now, durations measured
	// with it.
	Now func() time.Time
	// Logger receives one record per request (the access log) and upload
	// outcomes; nil discards them. Secrets are never logged.
	Logger *slog.Logger
	// AccessLog, when set, receives the access log instead of Logger: the
	// same records, byte for byte as slog.NewJSONHandler(AccessLog, nil)
	// would write them, from a specialised encoder (a fraction of slog's
	// cost per request). A LogWriter here has its dropped lines counted
	// in /metrics.
	AccessLog io.Writer
	// MaxUpload bounds an upload's body in bytes (0: DefaultMaxUpload).
	MaxUpload int64
	// MaxControlSize bounds an uploaded package's decompressed control
	// member (0: DefaultMaxControlSize), and with it the memory one check
	// takes, whatever the package declares: about twice this (see
	// deb.ReaderOptions). A package over it is refused 422.
	MaxControlSize int64
	// MaxValidations bounds the uploads whose packages are checked at
	// the same time (0: DefaultMaxValidations); an upload waits for its
	// turn at most ValidationWait (0: DefaultValidationWait), then is
	// answered 503 busy with Retry-After.
	MaxValidations int
	ValidationWait time.Duration
	// Tokens authenticates uploads; nil is a TokenStore at
	// Dir/db/tokens.db.
	Tokens *TokenStore
	// OpenRepo opens the repository for one upload; nil is repo.Open(Dir,
	// repo.Options{Now, LockTimeout}). The CLI passes one with its signer.
	OpenRepo func() (*repo.Repo, error)
	// LockTimeout is how long an upload waits for the repository lock
	// held by another process before it is answered 503 (0: 30 s).
	// Uploads to this server wait for each other without a limit.
	LockTimeout time.Duration
	// RequireSignature maps a codename to the keyring that an uploaded
	// package's origin signature (debsigs _gpgorigin, "lampi-pkg sign")
	// must verify against. reprepro's conf/distributions has no such
	// field; this is lampi-pkg's explicit opt-in (serve
	// --require-signature CODENAME=KEYRING).
	RequireSignature map[string]*signing.Keyring
	// TempDir is where uploads are staged (""= Dir/db/uploads).
	TempDir string
	// MaxConns bounds the connections open at once, MaxConnsPerAddr those
	// from one client address (IPv4 address, IPv6 /64); a connection over
	// a limit is closed as soon as it is accepted. 0 means
	// DefaultMaxConns, DefaultMaxConnsPerAddr; a negative value, no
	// limit. They apply to connections accepted by the Front or by a
	// Listener (see Server.Listener).
	MaxConns, MaxConnsPerAddr int

	// Extra mounts further handlers on the server's mux, pattern →
	// handler (net/http ServeMux patterns). lampi-pkg serve mounts the
	// fleet side here: the dashboard ("GET /{$}", "GET /devices/"), the
	// fleet JSON API ("/api/v1/fleet/") and the device-credential API
	// (token scope "devices"). MQTT is not served here: the broker has
	// a TCP listener of its own. They get the access log and metrics too.
	Extra map[string]http.Handler
	// ExtraMetrics, if set, writes further metrics (Prometheus text
	// format, complete with HELP and TYPE lines) at the end of /metrics:
	// serve adds its rollouts' there. It is called on every scrape.
	ExtraMetrics func(w io.Writer) error
}

// Server is the update server: an http.Handler.
type Server struct {
	opts    Options
	files   *fileServer
	mux     *http.ServeMux
	metrics *Metrics
	log     *slog.Logger
	publish chan struct{} // one upload is included at a time
	checks  chan struct{} // Options.MaxValidations uploads are checked at a time
	closeMu sync.Once
	fastOK  bool // no Options.Extra pattern can take dists/ or pool/ paths (see Front)
	access  *accessLog
	conns   *connLimiter
}

// New opens the repository's published tree and builds the handler.
func New(o Options) (s *Server, err error) {
	if o.Dir == "" || o.Now == nil {
		return nil, errors.New("server: Options.Dir and Options.Now are required")
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = DefaultMaxUpload
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 30 * time.Second
	}
	if o.Tokens == nil {
		o.Tokens = &TokenStore{Path: repo.Layout{Base: o.Dir}.Tokens(), Now: o.Now}
	}
	if o.MaxControlSize <= 0 {
		o.MaxControlSize = DefaultMaxControlSize
	}
	if o.MaxValidations <= 0 {
		o.MaxValidations = DefaultMaxValidations
	}
	if o.ValidationWait <= 0 {
		o.ValidationWait = DefaultValidationWait
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerAddr == 0 {
		o.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if o.TempDir == "" {
		o.TempDir = repo.Layout{Base: o.Dir}.Uploads()
	}
	if o.OpenRepo == nil {
		dir, now, lt := o.Dir, o.Now, o.LockTimeout
		o.OpenRepo = func() (*repo.Repo, error) {
			return repo.Open(dir, repo.Options{Now: now, LockTimeout: lt})
		}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	files, err := newFileServer(o.Dir, func(msg string, err error) { logger.Warn(msg, "err", err) })
	if err != nil {
		return nil, err
	}
	s = &Server{opts: o, files: files, mux: http.NewServeMux(), metrics: &Metrics{}, log: logger,
		publish: make(chan struct{}, 1), checks: make(chan struct{}, o.MaxValidations)}
	s.metrics.extra = o.ExtraMetrics
	s.conns = newConnLimiter(o.MaxConns, o.MaxConnsPerAddr, s.metrics)
	if o.AccessLog != nil {
		s.access = newAccessLog(o.AccessLog)
		if d, ok := o.AccessLog.(interface{ Dropped() uint64 }); ok {
			s.metrics.logDropped = d.Dropped
		}
	}
	defer func() {
		if r := recover(); r != nil { // ServeMux panics on conflicting patterns
			files.close()
			s, err = nil, fmt.Errorf("server: %v", r)
		}
	}()
	s.mux.HandleFunc("GET /dists/", s.files.servePublished)
	s.mux.HandleFunc("GET /pool/", s.files.servePublished)
	keys, refused := publicKeyFiles(o.Dir)
	for _, name := range keys {
		s.mux.Handle("GET /"+name, s.files.serveKey(name))
	}
	for name, err := range refused {
		logger.Warn("key file not served", "file", name, "error", err.Error())
	}
	s.mux.HandleFunc("POST /api/v1/repos/{codename}/packages", s.handleUpload)
	s.mux.HandleFunc("GET /api/v1/repos", s.handleDistributions)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.mux.HandleFunc("GET /metrics", s.metrics.serveHTTP)
	s.fastOK = true
	for pattern, h := range o.Extra {
		s.mux.Handle(pattern, h)
		if shadowsFiles(pattern) {
			s.fastOK = false
		}
	}
	return s, nil
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Close releases the directories the server holds open.
func (s *Server) Close() error {
	s.closeMu.Do(s.files.close)
	return nil
}

// ServeHTTP routes the request, then logs and counts it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	rw := &responseWriter{ResponseWriter: w}
	switch {
	case badPath(r.URL.Path):
		http.Error(rw, "bad path", http.StatusBadRequest)
	case s.fastOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) && isFilePath(r.URL.Path):
		// What the mux would choose ("GET /dists/", "GET /pool/"), without
		// its pattern matching: no Extra pattern shadows these paths, and
		// the path is clean (no "//"; badPath refused dot segments), so
		// the mux would not redirect either.
		s.files.servePublished(rw, r)
	default:
		s.mux.ServeHTTP(rw, r)
	}
	if rw.code == 0 {
		rw.code = http.StatusOK
	}
	file := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(strings.HasPrefix(r.URL.Path, "/dists/") || strings.HasPrefix(r.URL.Path, "/pool/"))
	s.record(r.Method, r.URL.Path, rw.code, rw.n, start, r.RemoteAddr, r.UserAgent(), file,
		file && (r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != ""))
}

// record counts a response and writes its access log record. file: a
// GET or HEAD of a repository file; conditional: one with If-None-Match
// or If-Modified-Since.
func (s *Server) record(method, path string, code int, n int64, start time.Time, remote, ua string, file, conditional bool) {
	s.metrics.request(code, n)
	if file {
		s.metrics.fileRequest(code, conditional)
	}
	if s.access != nil {
		now := s.opts.Now()
		s.access.record(now, method, path, code, n, now.Sub(start), remote, ua)
		return
	}
	ctx := context.Background()
	if s.log.Enabled(ctx, slog.LevelInfo) {
		s.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", method), slog.String("path", path),
			slog.Int("status", code), slog.Int64("bytes", n),
			slog.Duration("duration", s.opts.Now().Sub(start)),
			slog.String("remote", remote), slog.String("ua", ua))
	}
}

// isFilePath: a clean path under /dists/ or /pool/.
func isFilePath(p string) bool {
	return (strings.HasPrefix(p, "/dists/") || strings.HasPrefix(p, "/pool/")) && !strings.Contains(p, "//")
}

// shadowsFiles reports whether a ServeMux pattern could take requests for
// /dists/… or /pool/… from the file server: a host-specific pattern or a
// path below those.
func shadowsFiles(pattern string) bool {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimLeft(p, " \t")
	}
	return !strings.HasPrefix(pattern, "/") || strings.HasPrefix(pattern, "/dists/") || strings.HasPrefix(pattern, "/pool/")
}

// responseWriter records status and body size. It keeps ReadFrom, so
// that file bodies still go out with sendfile(2).
type responseWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(w.ResponseWriter, r)
	}
	w.n += n
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// acquirePublish waits for this server's upload slot, as long as the
// client waits: uploads to one server queue rather than fail. (The
// repository lock, shared with other processes, is then waited for at
// most Options.LockTimeout.)
func (s *Server) acquirePublish(ctx context.Context) error {
	select {
	case s.publish <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) releasePublish() { <-s.publish }

// acquireCheck waits for a turn to check an upload's packages, at most
// Options.ValidationWait and as long as the client waits; a refusal says
// why.
func (s *Server) acquireCheck(ctx context.Context) *refusal {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ValidationWait)
	defer cancel()
	select {
	case s.checks <- struct{}{}:
		return nil
	case <-ctx.Done():
		return refuse(OutcomeBusy, http.StatusServiceUnavailable, "busy",
			"%d uploads are being checked (serve --max-validations); this one waited %v for its turn; try again", cap(s.checks), s.opts.ValidationWait)
	}
}

func (s *Server) releaseCheck() { <-s.checks }
