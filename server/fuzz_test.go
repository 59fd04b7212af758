package server

import (
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
