package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Front serves plain-HTTP connections with a fast path in front of
// net/http for the requests a fleet makes all day: a simple GET or HEAD
// of a file under dists/ or pool/, conditional or not. Such a request is
// parsed in place and answered straight from the hot cache (304) or with
// one openat2, one header write and sendfile(2) (200), logged and counted
// as by ServeHTTP. Anything else on the connection — another path or
// method, a Range, a body, an unusual header, HTTP/1.0, a 404, a header
// that does not fit in 4 KiB — hands the connection over, with the bytes
// already read, to the http.Server, which serves that request and all
// later ones on the connection exactly as without the front. The fast
// path answers only what it can answer exactly as net/http would (same
// status, headers and body; tested side by side in front_test.go).
//
// TLS connections are not fronted: serve them with the http.Server.
type Front struct {
	s    *Server
	hs   *http.Server
	hand *handoffListener
	fast bool // no Options.Extra pattern shadows dists/ or pool/

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*frontConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
	date    atomic.Pointer[dateLine]
}

// Front returns a front for hs, whose Handler must be s (possibly
// wrapped). hs's IdleTimeout, ReadHeaderTimeout and WriteTimeout apply
// to fronted connections too, as net/http applies them: the first
// request's head must arrive within ReadHeaderTimeout (else ReadTimeout)
// of the accept, so a connection that never sends a byte is closed then;
// later ones get IdleTimeout to start and ReadHeaderTimeout from their
// first byte. The server's connection limits (Options.MaxConns,
// Options.MaxConnsPerAddr) apply to every connection the front accepts,
// handed over or not.
func (s *Server) Front(hs *http.Server) *Front {
	return &Front{s: s, hs: hs, hand: newHandoffListener(), fast: s.fastOK, conns: map[*frontConn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown (then it returns
// http.ErrServerClosed) or an accept error.
func (f *Front) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.ln = ln
	f.hand.addr = ln.Addr()
	f.mu.Unlock()
	hsDone := make(chan error, 1)
	go func() { hsDone <- f.hs.Serve(f.hand) }()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return http.ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				// EMFILE and the like: net/http waits and retries too.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			f.hand.Close()
			<-hsDone
			return err
		}
		backoff = 0
		release, ok := f.s.conns.acquire(c.RemoteAddr())
		if !ok {
			c.Close() // over a limit: free the descriptor at once
			continue
		}
		tc, ok := c.(*net.TCPConn)
		if !ok || !f.fast {
			if ok {
				f.hand.put(&handConn{TCPConn: tc, release: release})
			} else {
				f.hand.put(&limitedConn{Conn: c, release: release})
			}
			continue
		}
		fc := &frontConn{f: f, tc: tc, release: release}
		f.mu.Lock()
		if f.closing.Load() {
			f.mu.Unlock()
			c.Close()
			release()
			continue
		}
		f.conns[fc] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go fc.serve()
	}
}

// Shutdown stops accepting, lets the requests in flight finish (on
// fronted and handed-over connections), closes idle connections and
// waits for them, at most until ctx is done.
func (f *Front) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closing.Store(true)
	ln := f.ln
	conns := make([]*frontConn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.tc.SetReadDeadline(aLongTimeAgo) // wakes a connection waiting for a request
	}
	err := f.hs.Shutdown(ctx)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.mu.Lock()
		for c := range f.conns {
			c.tc.Close()
		}
		f.mu.Unlock()
		return ctx.Err()
	}
	return err
}

var aLongTimeAgo = time.Unix(1, 0)

// frontConn is one fronted connection.
type frontConn struct {
	f        *Front
	tc       *net.TCPConn
	br       *bufio.Reader
	out      []byte // response header being built
	remote   string
	deadline time.Time   // the read deadline in place (zero: none)
	prev     fastRequest // the last request parsed
	release  func()      // gives the connection's slot back (connLimiter)
}

// maxFrontHead is the largest request head the front parses; a longer
// one goes to net/http (which allows up to MaxHeaderBytes).
const maxFrontHead = 4096

func (c *frontConn) serve() {
	f := c.f
	handed := false
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		if !handed {
			c.tc.Close()
			c.release()
		}
		f.wg.Done()
	}()
	c.br = bufio.NewReaderSize(c.tc, maxFrontHead)
	c.remote = c.tc.RemoteAddr().String()
	c.out = make([]byte, 0, 512)
	first := true
	for {
		idle := f.hs.IdleTimeout
		if idle == 0 {
			idle = f.hs.ReadTimeout
		}
		headTimeout := f.readHeaderTimeout()
		if first && headTimeout > 0 {
			// The first request's head, first byte included, must come
			// within the header timeout of the accept (as net/http
			// wants): a silent connection must not hold its descriptor
			// for the idle timeout.
			c.deadline = time.Now().Add(headTimeout)
			c.tc.SetReadDeadline(c.deadline)
		} else if idle > 0 {
			// Network deadlines are real time, whatever Options.Now says
			// (net/http's are too). Moving the deadline costs a timer
			// update: it is moved when it is more than a second behind,
			// so the idle time allowed is between idle-1s and idle.
			if d := time.Now().Add(idle); d.Sub(c.deadline) > time.Second || d.Before(c.deadline) {
				c.tc.SetReadDeadline(d)
				c.deadline = d
			}
		} else if !c.deadline.IsZero() {
			c.tc.SetReadDeadline(time.Time{})
			c.deadline = time.Time{}
		}
		if f.closing.Load() {
			return
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		head, ok := c.readHead(first && headTimeout > 0)
		first = false
		if !ok {
			return
		}
		var rq fastRequest
		if head == nil || !rq.parse(head, &c.prev) {
			handed = c.handOff()
			return
		}
		c.prev = rq
		start := f.s.opts.Now()
		code, n, handled, err := f.s.serveFast(c, &rq, start)
		if !handled {
			handed = c.handOff()
			return
		}
		c.br.Discard(len(head))
		f.s.record(rq.method, rq.path, code, n, start, c.remote, rq.ua, true, rq.inm != "" || rq.ims != "")
		if err != nil || f.closing.Load() {
			return
		}
	}
}

// readHead returns the complete request head at the start of the
// buffer (not consumed), nil when the front should not parse it (too
// long, bare LF line ends), ok=false when the connection failed.
// deadlineSet: the header deadline is in place already; else it is set
// once the head has started.
func (c *frontConn) readHead(deadlineSet bool) (head []byte, ok bool) {
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(buf, crlfcrlf); i >= 0 {
			head = buf[:i+4]
			if hasBareLF(head) {
				return nil, true
			}
			return head, true
		}
		if len(buf) >= maxFrontHead || hasBareLF(buf) {
			return nil, true
		}
		if t := c.f.readHeaderTimeout(); !deadlineSet && t > 0 {
			c.deadline = time.Now().Add(t)
			c.tc.SetReadDeadline(c.deadline)
			deadlineSet = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return nil, false
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// readHeaderTimeout is net/http's: ReadHeaderTimeout, else ReadTimeout.
func (f *Front) readHeaderTimeout() time.Duration {
	if f.hs.ReadHeaderTimeout > 0 {
		return f.hs.ReadHeaderTimeout
	}
	return f.hs.ReadTimeout
}

// hasBareLF: a LF not preceded by CR (net/http accepts those; the front
// leaves them to it).
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// handOff gives the connection, with what was read and not answered, to
// the http.Server.
func (c *frontConn) handOff() bool {
	pre, _ := c.br.Peek(c.br.Buffered())
	hc := &handConn{TCPConn: c.tc, pre: bytes.Clone(pre), release: c.release}
	c.tc.SetReadDeadline(time.Time{})
	return c.f.hand.put(hc)
}

// serveFast answers rq as servePublished and http.ServeContent would, or
// returns handled=false having written nothing (the request then goes to
// net/http: missing files, directories, errors).
func (s *Server) serveFast(c *frontConn, rq *fastRequest, now time.Time) (code int, n int64, handled bool, err error) {
	fsrv := s.files
	rel := rq.path[1:]
	top, rest, ti, ok := fastTarget(rel)
	if !ok {
		return 0, 0, false, nil
	}
	immutable := ti == topDists && strings.Contains(rest, "/by-hash/")
	inm, ims := rq.conditions()
	valid := fsrv.current()
	if ti == topDists && (inm != nil || ims != nil) {
		if e, ok := fsrv.hot.lookup(rel, valid); ok && e.unchanged(inm, ims) {
			err := c.writeNotModified(now, e.tag, immutable)
			return http.StatusNotModified, 0, true, err
		}
	}
	gen, cacheable := uint64(0), false
	if ti == topDists {
		gen, cacheable = fsrv.hot.prepare(fsrv.dir+"/"+top, rest)
		cacheable = cacheable && gen == valid
	}
	f, oerr := fsrv.open(ti, rest)
	if oerr != nil {
		return 0, 0, false, nil
	}
	defer f.Close()
	fi, serr := f.Stat()
	if serr != nil || !fi.Mode().IsRegular() {
		return 0, 0, false, nil
	}
	v, verr := fsrv.validators(rel, f, fi)
	if verr != nil || isZeroTime(v.mod) {
		return 0, 0, false, nil
	}
	e := newHotEntry(gen, v)
	if cacheable {
		fsrv.hot.store(rel, e)
	}
	if (inm != nil || ims != nil) && e.unchanged(inm, ims) {
		err := c.writeNotModified(now, v.tag, immutable)
		return http.StatusNotModified, 0, true, err
	}
	head := okHead{size: fi.Size(), ctype: contentType(rest), tag: v.tag, lastMod: e.lastMod, immutable: immutable}
	n, err = c.writeFile(rq.method == http.MethodGet, f, head, now)
	return http.StatusOK, n, true, err
}

// fastTarget splits the path of a fast request (without its leading
// slash) into the top directory and the rest, and says whether the fast
// path may serve it: a file (no trailing slash) under dists/ or pool/
// with no empty or dot-led segment.
func fastTarget(rel string) (top, rest string, ti int, ok bool) {
	top, rest, _ = strings.Cut(rel, "/")
	ti, ok = topOf(top)
	if !ok || rest == "" || strings.HasSuffix(rest, "/") {
		return "", "", 0, false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg[0] == '.' {
			return "", "", 0, false
		}
	}
	return top, rest, ti, true
}

// conditions are the request's If-None-Match and If-Modified-Since as
// the header lists hotEntry.unchanged takes (nil when absent).
func (rq *fastRequest) conditions() (inm, ims []string) {
	if rq.inm != "" {
		inm = []string{rq.inm}
	}
	if rq.ims != "" {
		ims = []string{rq.ims}
	}
	return inm, ims
}

// okHead is what a 200 answer of the fast path says about the file.
type okHead struct {
	size       int64
	ctype, tag string
	lastMod    string
	immutable  bool
}

// writeFile answers 200 with h's head and, when body is set and the file
// is not empty, the file's first h.size bytes (sendfile through
// ReadFrom). It returns the body bytes written.
func (c *frontConn) writeFile(body bool, f *os.File, h okHead, now time.Time) (int64, error) {
	b := c.out[:0]
	b = append(b, "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\n"...)
	if h.immutable {
		b = append(b, "Cache-Control: "+cacheImmutable+"\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, h.size, 10)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, h.ctype...)
	b = append(b, "\r\nEtag: "...)
	b = append(b, h.tag...)
	b = append(b, "\r\nLast-Modified: "...)
	b = append(b, h.lastMod...)
	b = append(b, "\r\n"...)
	b = c.f.appendTrailer(b, now)
	c.out = b
	if wt := c.f.hs.WriteTimeout; wt > 0 {
		c.tc.SetWriteDeadline(time.Now().Add(wt))
	}
	body = body && h.size > 0
	c.f.s.metrics.fast.Add(1) // counted before the answer leaves, for tests
	if err := writeHead(c.tc, b, body); err != nil {
		return 0, err
	}
	if !body {
		return 0, nil
	}
	n, err := c.tc.ReadFrom(&io.LimitedReader{R: f, N: h.size})
	if err == nil && n != h.size {
		err = io.ErrUnexpectedEOF // the file shrank: the connection cannot go on
	}
	return n, err
}

// isZeroTime is http.ServeContent's test for "no modification time".
func isZeroTime(t time.Time) bool {
	return t.IsZero() || t.Equal(time.Unix(0, 0))
}

func (c *frontConn) writeNotModified(now time.Time, tag string, immutable bool) error {
	b := c.out[:0]
	b = append(b, "HTTP/1.1 304 Not Modified\r\n"...)
	if immutable {
		b = append(b, "Cache-Control: "+cacheImmutable+"\r\n"...)
	}
	b = append(b, "Etag: "...)
	b = append(b, tag...)
	b = append(b, "\r\n"...)
	b = c.f.appendTrailer(b, now)
	c.out = b
	if wt := c.f.hs.WriteTimeout; wt > 0 {
		c.tc.SetWriteDeadline(time.Now().Add(wt))
	}
	c.f.s.metrics.fast.Add(1)
	_, err := c.tc.Write(b)
	return err
}

// appendTrailer ends a response head: Connection: close while shutting
// down, Date, the empty line.
func (f *Front) appendTrailer(b []byte, now time.Time) []byte {
	if f.closing.Load() {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(append(b, f.dateLine(now)...), "\r\n"...)
}

// dateLine is "Date: …\r\n" for the current second, formatted once.
type dateLine struct {
	sec  int64
	line string
}

func (f *Front) dateLine(now time.Time) string {
	sec := now.Unix()
	if d := f.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateLine{sec: sec, line: "Date: " + now.UTC().Format(http.TimeFormat) + "\r\n"}
	f.date.Store(d)
	return d.line
}

// handoffListener is the listener the http.Server gets its handed-over
// connections from.
type handoffListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) put(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		c.Close()
		return true
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr {
	if l.addr == nil {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	return l.addr
}

// handConn is a handed-over connection: the bytes the front read come
// first. The embedded *net.TCPConn keeps ReadFrom (sendfile) and
// CloseWrite. Close gives the connection's slot back.
type handConn struct {
	*net.TCPConn
	mu      sync.Mutex
	pre     []byte
	release func()
}

func (c *handConn) Close() error {
	err := c.TCPConn.Close()
	c.release()
	return err
}

func (c *handConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.TCPConn.Read(p)
}

// WriteTo keeps the read-ahead bytes in front of a hijacker's copy.
func (c *handConn) WriteTo(w io.Writer) (int64, error) {
	c.mu.Lock()
	pre := c.pre
	c.pre = nil
	c.mu.Unlock()
	var n int64
	if len(pre) > 0 {
		m, err := w.Write(pre)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	m, err := io.Copy(w, c.TCPConn)
	return n + m, err
}

// File is not offered: the read-ahead bytes would be lost.
func (c *handConn) File() (*os.File, error) { return nil, errors.ErrUnsupported }
