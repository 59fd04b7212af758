package deb_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// makeSource builds a real source package with dpkg-source (format is
// "3.0 (quilt)", "3.0 (native)" or "1.0") and a source-only .changes with
// dpkg-genchanges, and returns the directory holding them.
func makeSource(t *testing.T, format string) string {
	t.Helper()
	testutil.RequireTool(t, "dpkg-source")
	testutil.RequireTool(t, "dpkg-genchanges")
	dir := t.TempDir()
	version := "1.2-3"
	if format == "3.0 (native)" {
		version = "1.2"
	}
	tree := filepath.Join(dir, "lamp-tools-1.2")
	files := map[string]string{
		"README":               "lamp tools\n",
		"debian/source/format": format + "\n",
		"debian/control": "Source: lamp-tools\nSection: admin\nPriority: optional\nMaintainer: Lampi <lampi@example.org>\n\n" +
			"Package: lamp-tools\nArchitecture: all\nDescription: tools for lamps\n more\n\n" +
			"Package: lamp-tools-doc\nArchitecture: all\nDescription: docs\n",
		"debian/changelog": "lamp-tools (" + version + ") unstable; urgency=low\n\n  * New.\n\n -- Lampi <lampi@example.org>  Mon, 07 Dec 2026 07:00:00 +0000\n",
	}
	for name, text := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if format != "3.0 (native)" {
		orig := exec.Command("tar", "-C", dir, "--exclude=debian", "-czf", filepath.Join(dir, "lamp-tools_1.2.orig.tar.gz"), "lamp-tools-1.2")
		if out, err := orig.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
	}
	run := func(name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1796626800")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		return stdout.Bytes()
	}
	run("dpkg-source", "-b", "lamp-tools-1.2")
	changes := exec.Command("dpkg-genchanges", "-S", "-u"+dir)
	changes.Dir = tree
	out, err := changes.Output()
	if err != nil {
		t.Fatalf("dpkg-genchanges: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lamp-tools_"+version+"_source.changes"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkListed verifies every listed file against its bytes on disk.
func checkListed(t *testing.T, dir string, files []deb.ListedFile) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		m, s1, s2 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data)
		if int64(len(data)) != f.Size || hex.EncodeToString(m[:]) != f.MD5 || hex.EncodeToString(s1[:]) != f.SHA1 || hex.EncodeToString(s2[:]) != f.SHA256 {
			t.Errorf("%s: listed %+v does not match the file (%d bytes)", f.Name, f, len(data))
		}
	}
}

func TestParseDscFromDpkgSource(t *testing.T) {
	testutil.Heavy(t, "builds source packages with the real dpkg-source in every format")
	for _, tc := range []struct {
		format string
		files  []string
	}{
		{"3.0 (quilt)", []string{"lamp-tools_1.2.orig.tar.gz", "lamp-tools_1.2-3.debian.tar.xz"}},
		{"3.0 (native)", []string{"lamp-tools_1.2.tar.xz"}},
		{"1.0", []string{"lamp-tools_1.2.orig.tar.gz", "lamp-tools_1.2-3.diff.gz"}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := makeSource(t, tc.format)
			matches, _ := filepath.Glob(filepath.Join(dir, "*.dsc"))
			if len(matches) != 1 {
				t.Fatalf("dpkg-source made %v", matches)
			}
			f, err := os.Open(matches[0])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d, err := deb.ParseDsc(f, matches[0])
			if err != nil {
				t.Fatal(err)
			}
			if d.Source != "lamp-tools" || d.Format != tc.format || strings.Join(d.Binaries, ",") != "lamp-tools,lamp-tools-doc" {
				t.Errorf("parsed %q %q %v", d.Source, d.Format, d.Binaries)
			}
			var names []string
			for _, lf := range d.Files {
				names = append(names, lf.Name)
			}
			if strings.Join(names, " ") != strings.Join(tc.files, " ") {
				t.Errorf("files %v, want %v", names, tc.files)
			}
			checkListed(t, dir, d.Files)
			// Section and priority come from debian/control inside the
			// Debian part, as reprepro's includedsc takes them.
			part := d.Files[len(d.Files)-1]
			pf, err := os.Open(filepath.Join(dir, part.Name))
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			ctl, err := deb.DebianControlFromSource(pf, part.Name)
			if err != nil {
				t.Fatal(err)
			}
			if ctl.Get("Section") != "admin" || ctl.Get("Priority") != "optional" || ctl.Get("Source") != "lamp-tools" {
				t.Errorf("debian/control of %s: %q", part.Name, ctl.String())
			}
		})
	}
}

func TestParseChangesFromDpkgGenchanges(t *testing.T) {
	testutil.Heavy(t, "builds a source package with dpkg-source and dpkg-genchanges")
	dir := makeSource(t, "3.0 (quilt)")
	name := filepath.Join(dir, "lamp-tools_1.2-3_source.changes")
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := deb.ParseChanges(f, name)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "lamp-tools" || c.Version.String() != "1.2-3" || c.SourceVersion.String() != "1.2-3" || strings.Join(c.Distribution, " ") != "unstable" {
		t.Errorf("parsed %q %s %s %v", c.Source, c.Version, c.SourceVersion, c.Distribution)
	}
	// A source-only upload names no binaries (dpkg ≥ 1.19 leaves Binary out).
	if len(c.Binaries) != 0 || strings.Join(c.Architectures, " ") != "source" {
		t.Errorf("binaries %v architectures %v", c.Binaries, c.Architectures)
	}
	kinds := map[deb.UploadFileKind]int{}
	for _, lf := range c.Files {
		kinds[deb.ClassifyFile(lf.Name)]++
		if lf.Section != "admin" || lf.Priority != "optional" {
			t.Errorf("%s: section %q priority %q", lf.Name, lf.Section, lf.Priority)
		}
	}
	if kinds[deb.UploadDsc] != 1 || kinds[deb.UploadSourcePart] != 2 || kinds[deb.UploadBuildinfo] > 1 {
		t.Errorf("kinds %v in %+v", kinds, c.Files)
	}
	checkListed(t, dir, c.Files)
}

func TestParseDscRefuses(t *testing.T) {
	const md5a, sha1a, sha256a = "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef01234567", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	base := "Format: 3.0 (native)\nSource: pq\nVersion: 1\n"
	for _, tc := range []struct {
		name, text string
		want       error
		msg        string
	}{
		{"no files", base, deb.ErrMissingField, "Files"},
		{"path in name", base + "Files:\n " + md5a + " 3 ../p_1.tar.xz\n", deb.ErrUnsafePath, "plain file name"},
		{"absolute", base + "Files:\n " + md5a + " 3 /etc/passwd\n", deb.ErrUnsafePath, "plain file name"},
		{"bad digest", base + "Files:\n 0123 3 p_1.tar.xz\n", deb.ErrInvalidField, "hexadecimal"},
		{"size differs", base + "Files:\n " + md5a + " 3 p_1.tar.xz\nChecksums-Sha1:\n " + sha1a + " 4 p_1.tar.xz\n", deb.ErrInvalidField, "size 4 here but 3"},
		{"not in Files", base + "Files:\n " + md5a + " 3 p_1.tar.xz\nChecksums-Sha256:\n " + sha256a + " 3 q_1.tar.xz\n", deb.ErrInvalidField, "not listed in Files"},
		{"missing sha256", base + "Files:\n " + md5a + " 3 p_1.tar.xz\n " + md5a + " 3 p_1.x\nChecksums-Sha256:\n " + sha256a + " 3 p_1.tar.xz\n", deb.ErrInvalidField, "p_1.x is listed in Files but not here"},
		{"twice", base + "Files:\n " + md5a + " 3 p_1.tar.xz\n " + md5a + " 3 p_1.tar.xz\n", deb.ErrInvalidField, "twice"},
		{"bad version", "Format: 1.0\nSource: pq\nVersion: a:1\nFiles:\n " + md5a + " 3 p_1.tar.gz\n", deb.ErrInvalidVersion, "Version"},
		{"bad name", "Format: 1.0\nSource: P_q\nVersion: 1\nFiles:\n " + md5a + " 3 p_1.tar.gz\n", deb.ErrInvalidField, "Source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := deb.ParseDsc(strings.NewReader(tc.text), "x.dsc")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "x.dsc") {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestParseChangesSourceWithVersion(t *testing.T) {
	text := "Format: 1.8\nDate: Mon, 07 Dec 2026 07:00:00 +0000\nSource: pq (1.0-1)\nBinary: pq\nArchitecture: amd64\nVersion: 1.0-1+b1\nDistribution: unstable\nMaintainer: M <m@example.org>\n" +
		"Files:\n 0123456789abcdef0123456789abcdef 3 admin optional p_1.0-1+b1_amd64.deb\n 0123456789abcdef0123456789abcdef 5 byhand - p-notes.txt\n"
	c, err := deb.ParseChanges(strings.NewReader(text), "p.changes")
	if err != nil {
		t.Fatal(err)
	}
	if c.SourceVersion.String() != "1.0-1" || c.Version.String() != "1.0-1+b1" || c.Files[1].Section != "byhand" || c.Files[1].Priority != "-" {
		t.Errorf("parsed %+v", c)
	}
	if _, err := deb.ParseChanges(strings.NewReader(strings.Replace(text, "pq (1.0-1)", "pq 1.0-1", 1)), "p.changes"); !errors.Is(err, deb.ErrInvalidField) {
		t.Errorf("Source without parentheses: %v", err)
	}
	if _, err := deb.ParseChanges(strings.NewReader(strings.Replace(text, " byhand - ", " ", 1)), "p.changes"); !errors.Is(err, deb.ErrInvalidField) || !strings.Contains(err.Error(), "MD5 SIZE SECTION PRIORITY NAME") {
		t.Errorf("Files line without section: %v", err)
	}
}
