package deb_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

var rdSuffix = map[string]string{"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}

func rdCompress(t testing.TB, comp string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch comp {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "xz":
		w, err = xz.NewWriter(&b)
	case "zstd":
		w, err = zstd.NewWriter(&b)
	default:
		return data
	}
	rdMust(t, err)
	_, err = w.Write(data)
	rdMust(t, err)
	rdMust(t, w.Close())
	return b.Bytes()
}

// rdDebData wraps an already compressed data member.
func rdDebData(t testing.TB, comp string, data []byte) []byte {
	return rdAr(rdMem("debian-binary", []byte("2.0\n")), rdMem("control.tar", rdControlTar(t)), rdMem("data.tar"+rdSuffix[comp], data))
}

func rdPayload(t testing.TB) []byte {
	return rdTar(t, rdDir("./"), rdDir("./usr/"), rdFile("./usr/a", strings.Repeat("lamp ", 20000)), rdFile("./usr/b", "b"))
}

func TestControlBomb(t *testing.T) {
	// A control.tar.gz of about 64 KiB that inflates past MaxControlSize.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	rdMust(t, tw.WriteHeader(&tar.Header{Name: "./control", Mode: 0o644, Size: int64(len(rdControl)), Typeflag: tar.TypeReg}))
	io.WriteString(tw, rdControl)
	rdMust(t, tw.WriteHeader(&tar.Header{Name: "./bomb", Mode: 0o644, Size: deb.MaxControlSize + 1, Typeflag: tar.TypeReg}))
	_, err := io.Copy(tw, io.LimitReader(rdZeros{}, deb.MaxControlSize+1))
	rdMust(t, err)
	rdMust(t, tw.Close())
	rdMust(t, zw.Close())
	data := rdTar(t, rdDir("./"))
	pkg := rdAr(rdMem("debian-binary", []byte("2.0\n")), rdMem("control.tar.gz", gz.Bytes()), rdMem("data.tar", data))
	_, err = deb.Inspect(bytes.NewReader(pkg))
	if !errors.Is(err, deb.ErrTooLarge) || !strings.Contains(err.Error(), "member control.tar.gz") {
		t.Errorf("err = %v, want ErrTooLarge naming control.tar.gz", err)
	}

	big := rdTar(t, rdFile("./control", "Package: x\nDescription: y\n"+strings.Repeat(" z\n", deb.MaxControlFileSize/3+1)))
	pkg = rdAr(rdMem("debian-binary", []byte("2.0\n")), rdMem("control.tar", big), rdMem("data.tar", data))
	if _, err := deb.Inspect(bytes.NewReader(pkg)); !errors.Is(err, deb.ErrTooLarge) || !strings.Contains(err.Error(), "the control file is") {
		t.Errorf("err = %v, want ErrTooLarge for the control file", err)
	}
}

type rdZeros struct{}

func (rdZeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestXZDictionaryBound patches a valid xz stream to declare a 2 GiB
// dictionary: the reader must refuse it without allocating it.
func TestXZDictionaryBound(t *testing.T) {
	x := rdCompress(t, "xz", rdPayload(t))
	// Stream header (12 bytes), then the block header: size byte, flags,
	// filter id 0x21, props size 1, dictionary byte.
	if x[12+2] != 0x21 || x[12+3] != 1 {
		t.Fatalf("unexpected block header % x", x[12:24])
	}
	x[12+4] = 38 // 2 GiB
	hsize := (int(x[12]) + 1) * 4
	crc := crc32.ChecksumIEEE(x[12 : 12+hsize-4])
	x[12+hsize-4], x[12+hsize-3], x[12+hsize-2], x[12+hsize-1] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := deb.Contents(bytes.NewReader(rdDebData(t, "xz", x)))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, deb.ErrTooLarge) || !strings.Contains(err.Error(), "member data.tar.xz") || !strings.Contains(err.Error(), "2048 MiB dictionary") {
		t.Errorf("err = %v, want ErrTooLarge naming data.tar.xz", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("allocated %d MiB", n>>20)
	}
}

// TestXZFraming runs what the xz tool can produce (several blocks with
// sizes in their headers, every check type, concatenated streams with
// padding) through the reader's xz framing guard.
func TestXZFraming(t *testing.T) {
	xzTool := testutil.RequireTool(t, "xz")
	payload := rdPayload(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "data.tar")
	rdMust(t, os.WriteFile(in, payload, 0o644))
	xzOut := func(args ...string) []byte {
		out, err := exec.Command(xzTool, append(append([]string{"-c"}, args...), in)...).Output()
		rdMust(t, err)
		return out
	}
	variants := map[string][]byte{
		"default":      xzOut(),
		"level 0":      xzOut("-0"),
		"level 9e":     xzOut("-9e"),
		"blocks":       xzOut("-T2", "--block-size=8KiB"),
		"check none":   xzOut("--check=none"),
		"check crc32":  xzOut("--check=crc32"),
		"check sha256": xzOut("--check=sha256"),
	}
	// Two streams with stream padding between them: the first holds a
	// tarball's prefix, the second the rest.
	cut := len(payload) / 2
	rdMust(t, os.WriteFile(in, payload[:cut], 0o644))
	first := xzOut()
	rdMust(t, os.WriteFile(in, payload[cut:], 0o644))
	variants["two streams"] = append(append(first, 0, 0, 0, 0, 0, 0, 0, 0), xzOut()...)
	for name, x := range variants {
		t.Run(name, func(t *testing.T) {
			entries, err := deb.Contents(bytes.NewReader(rdDebData(t, "xz", x)))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 4 || entries[2].Size != 100000 {
				t.Errorf("entries = %+v", entries)
			}
		})
	}
	// Random data makes LZMA2 store uncompressed chunks.
	noise := make([]byte, 50000)
	rand.Read(noise)
	rdMust(t, os.WriteFile(in, rdTar(t, rdFile("./noise", string(noise))), 0o644))
	r, err := deb.NewReader(bytes.NewReader(rdDebData(t, "xz", xzOut("--block-size=16KiB"))))
	rdMust(t, err)
	if e, err := r.Next(); err != nil || e.Name != "./noise" {
		t.Fatalf("Next = %v, %v", e, err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, noise) {
		t.Errorf("noise: %d bytes, %v", len(got), err)
	}
}

func TestDamagedMembers(t *testing.T) {
	payload := rdPayload(t)
	for _, comp := range rdCompressions {
		t.Run(comp, func(t *testing.T) {
			c := rdCompress(t, comp, payload)
			cut := c[:len(c)/2]
			_, err := deb.Contents(bytes.NewReader(rdDebData(t, comp, cut)))
			t.Log(err)
			if !errors.Is(err, deb.ErrTruncated) || !strings.Contains(err.Error(), "member data.tar"+rdSuffix[comp]) {
				t.Errorf("truncated: err = %v, want ErrTruncated naming the member", err)
			}
			bad := bytes.Clone(c)
			start := len(bad) / 3
			if comp == "none" {
				start = 1024 // the header of ./usr/a
			}
			for i := start; i < start+64 && i < len(bad); i++ {
				bad[i] ^= 0x5a
			}
			_, err = deb.Contents(bytes.NewReader(rdDebData(t, comp, bad)))
			t.Log(err)
			if !errors.Is(err, deb.ErrCorrupt) || !strings.Contains(err.Error(), "member data.tar"+rdSuffix[comp]) {
				t.Errorf("corrupt: err = %v, want ErrCorrupt naming the member", err)
			}
		})
	}
}
