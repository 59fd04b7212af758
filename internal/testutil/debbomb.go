package testutil

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os/exec"
	"testing"
)

// BombControl is the control file of the packages ControlBomb makes: a
// good one, so that only the bomb is wrong with them.
const BombControl = "Package: bomb\nVersion: 1.0\nArchitecture: all\nMaintainer: Mallory <m@example.org>\n" +
	"Section: misc\nPriority: optional\nDescription: a control member that decompresses to far more than it weighs\n"

// bombChunk is the run of zeros compressed once and repeated.
const bombChunk = 16 << 20

// ControlBomb returns a .deb whose control member is small but
// decompresses to about total bytes: after "./control" come files of
// entry bytes of zeros each ("./junk-0001" …), the tar headers and the
// zeros compressed as concatenated streams (xz, gzip) or frames (zstd)
// by the real xz, gzip or zstd tool, the runs of zeros once per 16 MiB
// and repeated — as a hostile uploader would make it in a few seconds.
// zstd frames declare a 128 MiB window (--long=27 on a pipe). entry and
// total are multiples of 512; entry ≤ total.
func ControlBomb(t testing.TB, comp string, total, entry int64) []byte {
	t.Helper()
	var args []string
	var ext string
	switch comp {
	case "xz":
		args, ext = []string{"-c", "-6"}, ".xz"
	case "gzip":
		args, ext = []string{"-c", "-6"}, ".gz"
	case "zstd":
		args, ext = []string{"-c", "-q", "-3", "--long=27"}, ".zst"
	default:
		t.Fatalf("ControlBomb: compression %q: xz, gzip or zstd", comp)
	}
	tool := RequireTool(t, comp)
	compress := func(data []byte) []byte {
		cmd := exec.Command(tool, args...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		return out
	}
	header := func(h *tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		h.Mode, h.Format, h.Uname, h.Gname = 0o644, tar.FormatGNU, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		return b.Bytes() // tw is not closed: no end-of-archive blocks
	}
	zeros := map[int64][]byte{}
	zero := func(n int64) []byte {
		if zeros[n] == nil {
			zeros[n] = compress(make([]byte, n))
		}
		return zeros[n]
	}

	var member bytes.Buffer
	first := header(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755})
	first = append(first, header(&tar.Header{Typeflag: tar.TypeReg, Name: "./control", Size: int64(len(BombControl))})...)
	ctl := []byte(BombControl)
	first = append(first, append(ctl, make([]byte, (512-len(ctl)%512)%512)...)...)
	for i := int64(1); i*entry <= total; i++ {
		h := header(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("./junk-%04d", i), Size: entry})
		if i == 1 {
			h = append(first, h...)
		}
		member.Write(compress(h))
		for left := entry; left > 0; left -= bombChunk {
			member.Write(zero(min(left, bombChunk)))
		}
	}
	end := compress(make([]byte, 1024)) // the end-of-archive blocks
	member.Write(end)

	data := header(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755})
	data = append(data, make([]byte, 1024)...)
	return arArchive(
		arMember{"debian-binary", []byte("2.0\n")},
		arMember{"control.tar" + ext, member.Bytes()},
		arMember{"data.tar", data},
	)
}

type arMember struct {
	name string
	data []byte
}

// arArchive writes members as GNU ar does, odd sizes padded with "\n".
func arArchive(members ...arMember) []byte {
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 1700000000, 0, 0, "100644", len(m.data))
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
