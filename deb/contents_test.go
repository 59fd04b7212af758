package deb_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestContentsWriterOddEntries lists entries dpkg-deb --build never makes
// (long owner names, numeric owners, devices, special bits without execute,
// hostile names, long names) next to dpkg-deb --contents, in a time zone
// with a half-hour offset.
func TestContentsWriterOddEntries(t *testing.T) {
	h := func(typ byte, name string, mode int64) tar.Header {
		return tar.Header{Typeflag: typ, Name: name, Mode: mode, ModTime: rdEpoch.Add(90 * time.Minute), Uname: "root", Gname: "root"}
	}
	e := func(hdr tar.Header, body string) rdEntry {
		hdr.Size = int64(len(body))
		return rdEntry{hdr: hdr, body: body}
	}
	long := h(tar.TypeReg, "./x", 0o644)
	long.Uname, long.Gname = "averyveryverylongusername", "staff"
	numeric := h(tar.TypeReg, "./numeric", 0o640)
	numeric.Uname, numeric.Gname, numeric.Uid, numeric.Gid = "", "", 1234, 5678
	chr := h(tar.TypeChar, "./dev/null", 0o666)
	chr.Devmajor, chr.Devminor = 1, 3
	blk := h(tar.TypeBlock, "./dev/sda", 0o660)
	blk.Devmajor = 8
	lnk := h(tar.TypeSymlink, "./back", 0o777)
	lnk.Linkname = `..\odd`
	hard := h(tar.TypeLink, "./hard", 0o644)
	hard.Linkname = "./x"
	pkg := rdDeb(t,
		e(h(tar.TypeDir, "./", 0o755), ""),
		e(h(tar.TypeReg, "./before", 0o644), "12345"),
		e(long, "hello"),
		e(h(tar.TypeReg, "./after", 0o4644), "1"),
		e(numeric, ""),
		e(h(tar.TypeReg, "./setgid", 0o2644), ""),
		e(h(tar.TypeDir, "./sticky/", 0o1755), ""),
		e(h(tar.TypeDir, "./Sticky/", 0o1754), ""),
		e(h(tar.TypeDir, "./dev/", 0o755), ""),
		e(chr, ""), e(blk, ""),
		e(h(tar.TypeFifo, "./fifo", 0o600), ""),
		e(h(tar.TypeReg, "./bad\nname\tand\x1b[31mred", 0o644), ""),
		e(lnk, ""), e(hard, ""),
		e(h(tar.TypeReg, "./"+strings.Repeat("ünïcödé/", 20)+"long", 0o644), "long"),
	)
	f := filepath.Join(t.TempDir(), "odd.deb")
	rdMust(t, os.WriteFile(f, pkg, 0o644))
	cmd := exec.Command(testutil.RequireTool(t, "dpkg-deb"), "--contents", f)
	cmd.Env = []string{"TZ=XST-5:30", "LC_ALL=C.UTF-8", "PATH=" + os.Getenv("PATH")}
	want, err := cmd.CombinedOutput()
	rdMust(t, err)

	entries, err := deb.Contents(bytes.NewReader(pkg))
	rdMust(t, err)
	var got bytes.Buffer
	cw := deb.NewContentsWriter(&got, time.FixedZone("XST", 5*3600+1800))
	for i := range entries {
		rdMust(t, cw.Write(&entries[i]))
	}
	if got.String() != string(want) {
		t.Errorf("listing differs\n got:\n%s\nwant:\n%s", got.String(), want)
	}
}

func TestEntryJSON(t *testing.T) {
	chr := tar.Header{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: rdEpoch}
	suid := rdFile("./bin/x", "abc")
	suid.hdr.Mode = 0o4755
	entries, err := deb.Contents(bytes.NewReader(rdDeb(t, suid, rdSym("./l", "a <b>"), rdEntry{hdr: chr})))
	rdMust(t, err)
	var lines []string
	for _, e := range entries {
		b, err := json.Marshal(e)
		rdMust(t, err)
		lines = append(lines, string(b))
	}
	want := []string{
		`{"name":"./bin/x","type":"file","mode":"4755","uid":0,"gid":0,"user":"root","group":"root","size":3,"mtime":"2024-01-01T00:00:00Z"}`,
		`{"name":"./l","type":"symlink","mode":"0777","uid":0,"gid":0,"user":"root","group":"root","size":0,"mtime":"2024-01-01T00:00:00Z","link":"a \u003cb\u003e"}`,
		`{"name":"./dev/null","type":"char","mode":"0666","uid":0,"gid":0,"size":0,"mtime":"2024-01-01T00:00:00Z","major":1,"minor":3}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("JSON:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
