package server

import (
	"bufio"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzNames: whatever a client sends as a file name or request path,
// the staged name stays a plain base name and badPath refuses every
// path with a "." or ".." segment.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"hi_0.1_all.deb", "../../etc/passwd", "..\\..\\x.deb", ".hidden", "a/b/c.deb", "", "é.deb", "/dists/../conf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := safeName(s)
		if n == "" || strings.ContainsAny(n, "/\\\x00") || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".deb") || filepath.Base(n) != n {
			t.Fatalf("safeName(%q) = %q", s, n)
		}
		if !badPath(s) {
			for seg := range strings.SplitSeq(s, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("badPath(%q) accepted a dot segment", s)
				}
			}
		}
		_ = matchesETag(s, `"x"`)
	})
}

// FuzzFrontParse: a request head the Front's fast path accepts is one
// net/http reads as well, as the same request: method, path, Host and the
// header values the fast path uses, no body, keep-alive, HTTP/1.1. (What
// the fast path refuses goes to net/http itself.)
func FuzzFrontParse(f *testing.F) {
	for _, s := range []string{
		"GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /pool/main/h/hi/hi_0.1_all.deb HTTP/1.1\r\nhost: 127.0.0.1:80\r\nIf-None-Match: \"a\"\r\nUser-Agent: apt\r\n\r\n",
		"GET /dists/stable/InRelease HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 22 Nov 2026 23:58:42 GMT\r\nConnection: keep-alive\r\nCache-Control: max-age=0\r\n\r\n",
		"GET /dists/../conf HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /dists/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"GET /dists/a HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		i := strings.Index(s, "\r\n\r\n")
		if i < 0 {
			return
		}
		head := s[:i+4]
		var rq fastRequest
		prev := fastRequest{path: "/dists/stable/InRelease", host: "x", ua: "apt", inm: `"a"`}
		if !rq.parse([]byte(head), &prev) {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("fast path accepts %q, net/http refuses it: %v", head, err)
		}
		if r.Method != rq.method || r.URL.Path != rq.path || r.URL.RawQuery != "" || r.Host != rq.host ||
			r.Header.Get("If-None-Match") != rq.inm || r.Header.Get("If-Modified-Since") != rq.ims ||
			r.UserAgent() != rq.ua || r.ContentLength != 0 || r.Close || r.ProtoMinor != 1 ||
			len(r.Header.Values("If-None-Match")) > 1 || len(r.Header.Values("If-Modified-Since")) > 1 {
			t.Fatalf("%q: fast path %+v, net/http %s %q host %q close %v len %d header %v",
				head, rq, r.Method, r.URL.Path, r.Host, r.Close, r.ContentLength, r.Header)
		}
		for _, k := range []string{"Range", "If-Range", "If-Match", "If-Unmodified-Since", "Transfer-Encoding", "Expect", "Upgrade"} {
			if _, ok := r.Header[k]; ok {
				t.Fatalf("fast path accepts %q with %s", head, k)
			}
		}
	})
}
