package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// accessLog writes the access log record of each request to
// Options.AccessLog in the format of slog.NewJSONHandler — the same
// bytes as Logger.LogAttrs(…, "request", method, path, status, bytes,
// duration, remote, ua) through a default JSON handler — without
// slog's per-record machinery (caller lookup, attribute slices,
// reflection-free but general encoding), which cost as much as the rest
// of a 304 answer. A record with a string that needs escaping is handed
// to slog itself, so the output never differs.
type accessLog struct {
	w    io.Writer
	slow *slog.Logger // same writer, for records that need escaping
	pool sync.Pool    // *[]byte
}

func newAccessLog(w io.Writer) *accessLog {
	return &accessLog{w: w, slow: slog.New(slog.NewJSONHandler(w, nil))}
}

func (a *accessLog) record(t time.Time, method, path string, code int, n int64, d time.Duration, remote, ua string) {
	bp, _ := a.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
		*bp = make([]byte, 0, 512)
	}
	b, ok := appendAccessJSON((*bp)[:0], t, method, path, code, n, d, remote, ua)
	if ok {
		a.w.Write(b)
	} else {
		a.slow.Handler().Handle(context.Background(), accessRecord(t, method, path, code, n, d, remote, ua))
	}
	if cap(b) <= 4096 {
		*bp = b
		a.pool.Put(bp)
	}
}

func accessRecord(t time.Time, method, path string, code int, n int64, d time.Duration, remote, ua string) slog.Record {
	r := slog.NewRecord(t, slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("method", method), slog.String("path", path),
		slog.Int("status", code), slog.Int64("bytes", n),
		slog.Duration("duration", d),
		slog.String("remote", remote), slog.String("ua", ua))
	return r
}

// appendAccessJSON appends the record as slog's JSONHandler writes it,
// or reports ok=false when a string needs escaping or the time is out
// of RFC 3339's range.
func appendAccessJSON(b []byte, t time.Time, method, path string, code int, n int64, d time.Duration, remote, ua string) ([]byte, bool) {
	if y := t.Year(); y < 0 || y >= 10000 || !plainJSON(method) || !plainJSON(path) || !plainJSON(remote) || !plainJSON(ua) {
		return b, false
	}
	b = append(b, `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":"`...)
	b = append(b, method...)
	b = append(b, `","path":"`...)
	b = append(b, path...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(d), 10)
	b = append(b, `,"remote":"`...)
	b = append(b, remote...)
	b = append(b, `","ua":"`...)
	b = append(b, ua...)
	b = append(b, "\"}\n"...)
	return b, true
}

// plainJSON: printable ASCII without '"' and '\', written by slog as is.
func plainJSON(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// LogWriter is an asynchronous, buffered io.Writer for the access log.
// Write copies the line into memory and returns at once; a goroutine
// writes the buffer out when it is half full, and Flush (or Close)
// writes what is left. A request never waits for the disk: when the
// output falls so far behind that the buffer is full, the line is
// dropped and counted — Dropped, and lampi_access_log_dropped_total in
// /metrics when the LogWriter is Options.AccessLog.
type LogWriter struct {
	out  io.Writer
	size int

	mu      sync.Mutex
	buf     []byte // being filled
	closed  bool
	outMu   sync.Mutex // held while writing out
	spare   []byte
	kick    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	dropped atomic.Uint64
	errs    atomic.Uint64
}

// NewLogWriter returns a LogWriter writing to out with a buffer of size
// bytes (0: 1 MiB). Close it to stop its goroutine.
func NewLogWriter(out io.Writer, size int) *LogWriter {
	if size <= 0 {
		size = 1 << 20
	}
	w := &LogWriter{out: out, size: size, buf: make([]byte, 0, size), spare: make([]byte, 0, size),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Write buffers p (one or more whole lines); it never blocks on the
// output and never fails: a line that does not fit is dropped and
// counted.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.buf)+len(p) > w.size {
		w.mu.Unlock()
		w.dropped.Add(1)
		w.wake()
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	half := len(w.buf) >= w.size/2
	w.mu.Unlock()
	if half {
		w.wake()
	}
	return len(p), nil
}

func (w *LogWriter) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *LogWriter) loop() {
	defer w.wg.Done()
	for {
		select {
		case <-w.kick:
			w.Flush()
		case <-w.done:
			return
		}
	}
}

// Flush writes out what was buffered so far. It returns the output's
// error, if any (the lines are then lost, and counted in Errors).
func (w *LogWriter) Flush() error {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.mu.Lock()
	out := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	var err error
	if len(out) > 0 {
		if _, err = w.out.Write(out); err != nil {
			w.errs.Add(1)
		}
	}
	w.spare = out[:0]
	return err
}

// Close flushes and stops the writer; later writes are dropped.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.done)
	w.wg.Wait()
	return w.Flush()
}

// Dropped returns how many writes were dropped because the buffer was
// full (or the writer closed).
func (w *LogWriter) Dropped() uint64 { return w.dropped.Load() }

// Errors returns how many buffer flushes the output refused.
func (w *LogWriter) Errors() uint64 { return w.errs.Load() }
