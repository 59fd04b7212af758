package deb

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// nameInputs are checked with both validators and against dpkg.
var nameInputs = []string{
	"", "a", "ab", "a0", "0a", "12", "hello", "lampi-agent", "libc6", "g++", "lib++dfa", "a.b", "a..b", "x-", "x+",
	"Ab", "aB", "a_b", "+a", "-a", ".a", "a:", "a b", " ab", "ab ", "é", "aé", "ab\n", "a/b", "a,b", "a@b",
	"amd64", "i386", "armhf", "arm64", "armel", "all", "any", "linux-any", "any-amd64", "any-any", "source", "native",
	"musl-linux-arm64", "hurd-i386", "AMD64", "amd_64", "amd64-", "-amd64", "a--b", "x", "64", "a.b+c",
}

// policyName is what Debian Policy adds to dpkg's package-name rule.
func policyName(s string) bool {
	return len(s) >= 2 && strings.IndexFunc(s, func(r rune) bool { return r == '_' || 'A' <= r && r <= 'Z' }) < 0
}

// binaryArch is what a binary package's Architecture adds to dpkg's rule.
func binaryArch(s string) bool {
	if s != strings.ToLower(s) || s == "source" {
		return false
	}
	for _, p := range strings.Split(s, "-") {
		if p == "" || p == "any" {
			return false
		}
	}
	return true
}

func TestValidatePackageName(t *testing.T) {
	for _, s := range []string{"ab", "0a", "g++", "lampi-agent", "a.b", "lib++dfa"} {
		if err := ValidatePackageName(s); err != nil {
			t.Errorf("ValidatePackageName(%q): %v", s, err)
		}
	}
	for s, msg := range map[string]string{
		"":    `package name "": empty`,
		"a":   "too short",
		"+a":  "must start with a lowercase letter or a digit, not '+'",
		"Ab":  "must start with a lowercase letter",
		"aB":  "uppercase 'B' at byte 1",
		"a_b": "character '_' at byte 1 not allowed",
		"a b": "character ' ' at byte 1",
	} {
		err := ValidatePackageName(s)
		if !errors.Is(err, ErrInvalidField) || !strings.Contains(fmt.Sprint(err), msg) {
			t.Errorf("ValidatePackageName(%q) = %v, want ErrInvalidField containing %q", s, err, msg)
		}
	}
}

func TestValidateArchitecture(t *testing.T) {
	for _, s := range []string{"amd64", "arm64", "armhf", "all", "i386", "musl-linux-arm64"} {
		if err := ValidateArchitecture(s); err != nil {
			t.Errorf("ValidateArchitecture(%q): %v", s, err)
		}
	}
	for s, msg := range map[string]string{
		"":          "empty",
		"any":       "wildcard",
		"linux-any": "wildcard",
		"any-arm64": "wildcard",
		"source":    "not a binary architecture",
		"AMD64":     "uppercase 'A' at byte 0",
		"amd_64":    "character '_' at byte 3",
		"amd64-":    "empty part",
	} {
		err := ValidateArchitecture(s)
		if !errors.Is(err, ErrInvalidField) || !strings.Contains(fmt.Sprint(err), msg) {
			t.Errorf("ValidateArchitecture(%q) = %v, want ErrInvalidField containing %q", s, err, msg)
		}
	}
}

// TestNamesAgainstDpkg checks both validators against dpkg
// --validate-pkgname and --validate-archname: we accept exactly what dpkg
// accepts, minus what Policy or a binary package's rules forbid.
func TestNamesAgainstDpkg(t *testing.T) {
	g := versionGen{dpkgRand(t)}
	inputs := append([]string(nil), nameInputs...)
	for range dpkgCalls(60) {
		var b strings.Builder
		for range 1 + g.r.IntN(6) {
			b.WriteString(g.pick("a", "z", "0", "9", "A", "-", "+", ".", "_", "any", "linux", ":", " "))
		}
		inputs = append(inputs, b.String())
	}
	var calls [][]string
	for _, s := range inputs {
		calls = append(calls, []string{"--validate-pkgname", "--", s}, []string{"--validate-archname", "--", s})
	}
	res := runDpkg(t, calls)
	for i, s := range inputs {
		pkg, arch := res[2*i], res[2*i+1]
		wantPkg := pkg.code == 0 && policyName(s)
		if err := ValidatePackageName(s); (err == nil) != wantPkg {
			t.Errorf("ValidatePackageName(%q) = %v; dpkg: exit %d %s", s, err, pkg.code, pkg.stderr)
		}
		wantArch := arch.code == 0 && binaryArch(s)
		if err := ValidateArchitecture(s); (err == nil) != wantArch {
			t.Errorf("ValidateArchitecture(%q) = %v; dpkg: exit %d %s", s, err, arch.code, arch.stderr)
		}
	}
}
