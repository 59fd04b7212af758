package server

// The front's request parser: which requests take the fast path, read
// straight from the bytes of the head without net/http's allocations.

import (
	"bytes"
	"net/http"
	"strings"
)

// fastRequest is a parsed simple request.
type fastRequest struct {
	method, path, host, ua string
	inm, ims               string // If-None-Match, If-Modified-Since
}

// parse accepts only "GET|HEAD /dists/…|/pool/… HTTP/1.1" with a plain
// path (no query, no percent-encoding, no dot segments, no empty
// segments) and a short list of header fields, each at most once, with a
// Host. Everything else is for net/http.
//
// prev is the connection's previous request: its strings are reused when
// the bytes are the same (Host and User-Agent always are, the path and
// validators often), which saves an allocation and a copy each.
func (rq *fastRequest) parse(head []byte, prev *fastRequest) bool {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		rq.method, line = http.MethodGet, line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		rq.method, line = http.MethodHead, line[5:]
	default:
		return false
	}
	target, proto, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" || !plainTarget(target) {
		return false
	}
	if !bytes.HasPrefix(target, []byte("/dists/")) && !bytes.HasPrefix(target, []byte("/pool/")) {
		return false
	}
	rq.path = reuse(target, prev.path)
	if badPath(rq.path) || strings.Contains(rq.path, "//") {
		return false
	}
	seen := 0
	for len(rest) > 2 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(l) == 0 || l[0] == ' ' || l[0] == '\t' {
			return false // obs-fold
		}
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok || len(name) == 0 || !isToken(name) {
			return false
		}
		value = trimOWS(value)
		for _, b := range value {
			if b < ' ' && b != '\t' || b == 0x7f {
				return false
			}
		}
		var bit int
		switch h := headerName(name); {
		case h == "Host":
			bit = 1
			if len(value) == 0 || !plainHost(value) {
				return false
			}
			rq.host = reuse(value, prev.host)
		case h == "User-Agent":
			bit = 2
			rq.ua = reuse(value, prev.ua)
		case h == "If-None-Match":
			bit = 4
			rq.inm = reuse(value, prev.inm)
			if rq.inm == "" {
				return false
			}
		case h == "If-Modified-Since":
			bit = 8
			rq.ims = reuse(value, prev.ims)
			if rq.ims == "" {
				return false
			}
		case h == "Connection":
			bit = 16
			if !asciiEqualFold(value, "keep-alive") {
				return false
			}
		case h == "Accept", h == "Accept-Encoding", h == "Accept-Language", h == "Cache-Control", h == "Pragma":
			continue // no effect on a static file's answer
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return seen&1 != 0
}

// reuse returns old when it holds the bytes b, else a new string.
func reuse(b []byte, old string) string {
	if string(b) == old {
		return old
	}
	return string(b)
}

// plainTarget: an origin-form path of unreserved characters, '/' and a
// few sub-delimiters, so that it is its own decoded form.
func plainTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for _, b := range t {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '/', b == '-', b == '.', b == '_', b == '~', b == '+', b == ':', b == '@', b == ',', b == '=':
		default:
			return false
		}
	}
	return true
}

func plainHost(h []byte) bool {
	for _, b := range h {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '-', b == ':', b == '[', b == ']', b == '_':
		default:
			return false
		}
	}
	return true
}

func isToken(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// frontHeaders are the header fields the fast path knows, canonical.
var frontHeaders = [...]string{"Host", "User-Agent", "If-None-Match", "If-Modified-Since", "Connection",
	"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Pragma"}

// headerName returns the canonical name of a known header field, or "".
func headerName(name []byte) string {
	for _, h := range frontHeaders {
		if len(h) == len(name) && asciiEqualFold(name, h) {
			return h
		}
	}
	return ""
}

// trimOWS removes optional white space (SP, HTAB) around a field value.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
