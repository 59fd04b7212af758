package deb_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// Helpers that craft archives by hand, so that tests can build every kind
// of broken or hostile package.

type rdMember struct {
	name string
	data []byte
	size int64 // header size; -1 means len(data)
}

func rdMem(name string, data []byte) rdMember { return rdMember{name, data, -1} }

// rdAr writes members as GNU ar does, padding odd sizes with "\n".
func rdAr(members ...rdMember) []byte {
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		size := m.size
		if size < 0 {
			size = int64(len(m.data))
		}
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 1700000000, 0, 0, "100644", size)
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// rdEntry is one entry of a crafted tarball.
type rdEntry struct {
	hdr  tar.Header
	body string
}

var rdEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func rdDir(name string) rdEntry {
	return rdEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: rdEpoch, Uname: "root", Gname: "root"}}
}

func rdFile(name, body string) rdEntry {
	return rdEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: rdEpoch, Uname: "root", Gname: "root"}, body: body}
}

func rdSym(name, target string) rdEntry {
	return rdEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: rdEpoch, Uname: "root", Gname: "root"}}
}

func rdLink(name, target string) rdEntry {
	return rdEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: rdEpoch, Uname: "root", Gname: "root"}}
}

func rdTar(t testing.TB, entries ...rdEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatGNU
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const rdControl = "Package: hi\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@example.org>\nDescription: test\n"

func rdControlTar(t testing.TB) []byte {
	return rdTar(t, rdDir("./"), rdFile("./control", rdControl))
}

// rdDeb builds an uncompressed package whose data.tar holds entries.
func rdDeb(t testing.TB, entries ...rdEntry) []byte {
	return rdAr(rdMem("debian-binary", []byte("2.0\n")), rdMem("control.tar", rdControlTar(t)), rdMem("data.tar", rdTar(t, entries...)))
}

// rdDpkgAccepts reports whether dpkg-deb --info reads the package.
func rdDpkgAccepts(t *testing.T, data []byte) (bool, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.deb")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testutil.RequireTool(t, "dpkg-deb"), "--info", p).CombinedOutput()
	return err == nil, string(out)
}

func TestFormatVersionLikeDpkg(t *testing.T) {
	ctl, data := rdControlTar(t), rdTar(t, rdDir("./"))
	for _, v := range []string{"2.0\n", "2.1\n", "2.10\n", "02.0\n", "2.0\nignored\n",
		"2.0", "3.0\n", "1.0\n", "2.\n", "2\n", " 2.0\n", "2.0 \n", "2.x\n", "2.0\r\n", "", "\n"} {
		pkg := rdAr(rdMem("debian-binary", []byte(v)), rdMem("control.tar", ctl), rdMem("data.tar", data))
		want, dpkgOut := rdDpkgAccepts(t, pkg)
		_, err := deb.Inspect(bytes.NewReader(pkg))
		if (err == nil) != want {
			t.Errorf("debian-binary %q: we say %v, dpkg-deb says %q", v, err, dpkgOut)
		}
		if err != nil && !errors.Is(err, deb.ErrNotDeb) {
			t.Errorf("debian-binary %q: error %v does not wrap ErrNotDeb", v, err)
		}
	}
}

func TestMemberStructure(t *testing.T) {
	db := rdMem("debian-binary", []byte("2.0\n"))
	ctl := rdMem("control.tar", rdControlTar(t))
	data := rdMem("data.tar", rdTar(t, rdDir("./"), rdFile("./a", "hello")))
	sig := rdMem("_gpgorigin", []byte("signature"))
	tests := []struct {
		name    string
		pkg     []byte
		want    error // nil: accepted
		message string
	}{
		{"plain", rdAr(db, ctl, data), nil, ""},
		{"signature after data", rdAr(db, ctl, data, sig), nil, ""},
		{"underscore members anywhere", rdAr(db, rdMem("_a", nil), ctl, rdMem("_b", []byte("x")), data, sig, rdMem("_c", nil)), nil, ""},
		{"gnu slash names", rdAr(rdMem("debian-binary/", []byte("2.0\n")), rdMem("control.tar/", rdControlTar(t)), rdMem("data.tar/", data.data)), nil, ""},
		{"empty", nil, deb.ErrNotDeb, "empty"},
		{"wrong magic", []byte("PK\x03\x04 this is a zip file"), deb.ErrNotDeb, "ar magic"},
		{"short magic", []byte("!<ar"), deb.ErrTruncated, "magic"},
		{"no members", []byte("!<arch>\n"), deb.ErrTruncated, "debian-binary"},
		{"control first", rdAr(ctl, db, data), deb.ErrNotDeb, "first member is \"control.tar\""},
		{"data before control", rdAr(db, data, ctl), deb.ErrNotDeb, "data.tar comes before the control member"},
		{"two controls", rdAr(db, ctl, ctl, data), deb.ErrNotDeb, "second control member"},
		{"two datas", rdAr(db, ctl, data, data), deb.ErrNotDeb, "second data member"},
		{"two debian-binary", rdAr(db, db, ctl, data), deb.ErrNotDeb, "second debian-binary"},
		{"unknown member", rdAr(db, rdMem("evil", nil), ctl, data), deb.ErrNotDeb, "unknown member \"evil\""},
		{"junk after data", rdAr(db, ctl, data, rdMem("junk", nil)), deb.ErrNotDeb, "unexpected member \"junk\""},
		{"missing data", rdAr(db, ctl), deb.ErrTruncated, "before its data.tar member"},
		{"bzip2 data", rdAr(db, ctl, rdMem("data.tar.bz2", []byte("BZh9"))), deb.ErrCompression, "data.tar.bz2"},
		{"lzma control", rdAr(db, rdMem("control.tar.lzma", nil), data), deb.ErrCompression, "control.tar.lzma"},
		{"odd suffix", rdAr(db, ctl, rdMem("data.tar.foo", nil)), deb.ErrCompression, "data.tar.foo"},
		{"size larger than file", rdAr(db, ctl, rdMember{"data.tar", data.data, 1 << 30}), deb.ErrTruncated, "data.tar"},
		{"truncated member", rdAr(db, ctl, data)[:200], deb.ErrTruncated, "control.tar"},
		{"truncated header", rdAr(db, ctl, data)[:8+60+4+30], deb.ErrTruncated, "header"},
		{"huge debian-binary", rdAr(rdMem("debian-binary", bytes.Repeat([]byte("2.0\n"), 1000)), ctl, data), deb.ErrNotDeb, "debian-binary"},
		{"no control file", rdAr(db, rdMem("control.tar", rdTar(t, rdDir("./"), rdFile("./md5sums", ""))), data), deb.ErrNotDeb, "no control file"},
		{"control file twice", rdAr(db, rdMem("control.tar", rdTar(t, rdFile("./control", rdControl), rdFile("control", rdControl))), data), deb.ErrCorrupt, "appears twice"},
		{"bad control syntax", rdAr(db, rdMem("control.tar", rdTar(t, rdFile("./control", "Package hi\n"))), data), deb.ErrSyntax, "control:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tc.pkg), rdPipe{bytes.NewReader(tc.pkg)}} {
				_, err := deb.Contents(r)
				t.Log(err)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("Contents: %v", err)
					}
					continue
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
					t.Errorf("Contents(%T) = %v; want %v mentioning %q", r, err, tc.want, tc.message)
				}
			}
		})
	}
}

// rdPipe hides Seek, as a pipe would.
type rdPipe struct{ r io.Reader }

func (o rdPipe) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestMemberReaderBytes checks the raw member layer against "ar p": the
// bytes a debsigs signature covers.
func TestMemberReaderBytes(t *testing.T) {
	pkg := rdBuildWithDpkg(t, "xz")
	raw, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	raw = append(raw, rdAr(rdMem("_gpgorigin", []byte("sig!")))[8:]...)
	f := filepath.Join(t.TempDir(), "signed.deb")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mr, err := deb.NewMemberReader(rdPipe{bytes.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []deb.MemberKind
	for {
		m, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, m.Kind)
		got, err := io.ReadAll(mr)
		if err != nil {
			t.Fatal(err)
		}
		want, err := exec.Command("ar", "p", f, m.Name).Output()
		if err != nil {
			t.Fatalf("ar p %s: %v", m.Name, err)
		}
		if !bytes.Equal(got, want) || int64(len(got)) != m.Size {
			t.Errorf("member %s: %d bytes differ from ar p's %d", m.Name, len(got), len(want))
		}
		if !bytes.Equal(raw[m.Offset:m.Offset+m.Size], got) {
			t.Errorf("member %s: Offset %d is wrong", m.Name, m.Offset)
		}
	}
	want := []deb.MemberKind{deb.KindDebianBinary, deb.KindControl, deb.KindData, deb.KindIgnored}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	if mr.FormatVersion() != "2.0" || len(mr.Members()) != 4 || mr.Offset() != int64(len(raw)) {
		t.Errorf("FormatVersion %q, %d members, offset %d of %d", mr.FormatVersion(), len(mr.Members()), mr.Offset(), len(raw))
	}
}
