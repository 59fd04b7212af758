package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLongFunctionsAndFiles: a function over the limit and a file over the
// limit are found (methods by Type.Method, tests and testdata ignored),
// the allowlist excuses them, and a stale allowlist entry fails.
func TestLongFunctionsAndFiles(t *testing.T) {
	dir := t.TempDir()
	body := func(n int) string { return strings.Repeat("\tx++\n", n) }
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/a.go", "package a\n\ntype T struct{}\n\nfunc (t *T) Long(x int) {\n"+body(10)+"}\n\nfunc Short(x int) {\n"+body(2)+"}\n")
	write("a/big.go", "package a\n\nvar x int\n"+strings.Repeat("// line\n", 50))
	write("a/a_test.go", "package a\n\nfunc TestX(x int) {\n"+body(20)+"}\n")
	write("a/testdata/t.go", "package t\n\nfunc F(x int) {\n"+body(20)+"}\n")
	long, err := scan(dir, 8, 40)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range long {
		keys = append(keys, it.key)
	}
	if got, want := strings.Join(keys, " "), "a/a.go:T.Long a/big.go"; got != want {
		t.Fatalf("long: %q, want %q", got, want)
	}
	var out bytes.Buffer
	if bad := report(&out, long, map[string]string{}, 8, 40, false); bad != 2 {
		t.Errorf("nothing allowed: %d failures, want 2:\n%s", bad, out.String())
	}
	out.Reset()
	allow := map[string]string{"a/a.go:T.Long": "why", "a/big.go": "why"}
	if bad := report(&out, long, allow, 8, 40, false); bad != 0 || out.Len() != 0 {
		t.Errorf("all allowed: %d failures, output %q", bad, out.String())
	}
	allow["a/a.go:Short"] = "no longer long"
	out.Reset()
	if bad := report(&out, long, allow, 8, 40, false); bad != 1 || !strings.Contains(out.String(), "STALE") {
		t.Errorf("stale entry: %d failures, output %q", bad, out.String())
	}
}

// TestAllowlistNeedsReason: an entry without a reason is refused.
func TestAllowlistNeedsReason(t *testing.T) {
	p := filepath.Join(t.TempDir(), "allow.txt")
	if err := os.WriteFile(p, []byte("# comment\n\na/a.go:F\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readAllow(p); err == nil || !strings.Contains(err.Error(), "no reason") {
		t.Fatalf("entry without a reason: %v", err)
	}
}
