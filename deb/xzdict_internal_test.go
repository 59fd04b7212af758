package deb

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// allocated reports how many bytes f allocates on the heap. Callers are
// not parallel tests, so nothing else allocates meanwhile.
func allocated(f func()) uint64 {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// xzBig compresses data as one block declaring an 8 MiB dictionary (xz -6).
func xzBig(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 8 << 20}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// repeated is n random bytes twice: the second half is one match at
// distance n.
func repeated(n int) []byte {
	half := make([]byte, n)
	rand.Read(half)
	return append(half, half...)
}

func decodeAll(t testing.TB, r io.Reader, size int64, blocks []int64) ([]byte, error) {
	t.Helper()
	dec, err := newSizedDecompressor(r, CompressXZ, size, blocks)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return io.ReadAll(dec)
}

// TestXZDictionaryFromIndex: with the block sizes from the index, a small
// block declaring an 8 MiB dictionary is decoded exactly, without
// allocating that dictionary.
func TestXZDictionaryFromIndex(t *testing.T) {
	data := repeated(60000)
	stream := xzBig(t, data)
	blocks := xzBlockSizes(bytes.NewReader(stream), int64(len(stream)))
	if len(blocks) != 1 || blocks[0] != int64(len(data)) {
		t.Fatalf("block sizes %v, want [%d]", blocks, len(data))
	}
	var got []byte
	var err error
	small := allocated(func() { got, err = decodeAll(t, bytes.NewReader(stream), int64(len(stream)), blocks) })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decode with index: %v, %d bytes (equal %v)", err, len(got), bytes.Equal(got, data))
	}
	big := allocated(func() { got, err = decodeAll(t, bytes.NewReader(stream), -1, nil) })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decode without index: %v", err)
	}
	t.Logf("allocated %d KiB with the index, %d KiB without", small>>10, big>>10)
	if big < 8<<20 {
		t.Fatalf("decoding without the index allocated %d bytes; the measurement does not see the dictionary", big)
	}
	if small > 1<<20 {
		t.Errorf("decoding with the index allocated %d bytes, want < 1 MiB", small)
	}
}

// TestXZDictionaryLyingIndex: an index understating a block's size cannot
// change the output: the decoder fails.
func TestXZDictionaryLyingIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"distant match", repeated(60000)},                                                  // a match beyond the shrunk dictionary
		{"no match", func() []byte { b := make([]byte, 120000); rand.Read(b); return b }()}, // only the size check can tell
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := xzBig(t, tc.data)
			// Rewrite the index's uncompressed size (3-byte varint) to 20000.
			n := (int(binary.LittleEndian.Uint32(stream[len(stream)-8:])) + 1) * 4
			index := stream[len(stream)-12-n : len(stream)-12]
			at := bytes.Index(index, binary.AppendUvarint(nil, uint64(len(tc.data))))
			if at < 0 {
				t.Fatal("uncompressed size not found in the index")
			}
			copy(index[at:], binary.AppendUvarint(nil, 20000))
			binary.LittleEndian.PutUint32(index[n-4:], crc32.ChecksumIEEE(index[:n-4]))
			blocks := xzBlockSizes(bytes.NewReader(stream), int64(len(stream)))
			if len(blocks) != 1 || blocks[0] != 20000 {
				t.Fatalf("block sizes %v, want [20000]", blocks)
			}
			got, err := decodeAll(t, bytes.NewReader(stream), int64(len(stream)), blocks)
			if err == nil {
				t.Fatalf("decoding a stream whose index lies succeeded (%d bytes)", len(got))
			}
			if !bytes.HasPrefix(tc.data, got) {
				t.Errorf("before failing, the decoder delivered bytes that differ from the data")
			}
		})
	}
}

// TestXZBlockSizesRefuses: anything but a sequence of well-formed
// streams (with stream padding between and after them) gives no sizes,
// and decoding then uses the declared dictionary; concatenated streams
// give every block's size, in order.
func TestXZBlockSizesRefuses(t *testing.T) {
	stream := xzBig(t, repeated(1000))
	other := xzBig(t, repeated(3000))
	two := append(append([]byte(nil), stream...), other...)
	padded := append(append(append([]byte(nil), stream...), 0, 0, 0, 0), other...)
	padded = append(padded, 0, 0, 0, 0, 0, 0, 0, 0)
	for name, s := range map[string][]byte{
		"truncated": stream[:len(stream)-1], "cut at the front": stream[4:], "empty": nil,
		"padding first":   append([]byte{0, 0, 0, 0}, stream...),
		"odd padding":     append(append([]byte(nil), stream...), 0, 0),
		"garbage between": append(append(append([]byte(nil), stream...), 1, 2, 3, 4), other...),
	} {
		if got := xzBlockSizes(bytes.NewReader(s), int64(len(s))); got != nil {
			t.Errorf("%s: block sizes %v, want none", name, got)
		}
	}
	for name, s := range map[string][]byte{"two streams": two, "padding": padded} {
		blocks := xzBlockSizes(bytes.NewReader(s), int64(len(s)))
		if len(blocks) != 2 || blocks[0] != 2000 || blocks[1] != 6000 {
			t.Errorf("%s: block sizes %v, want [2000 6000]", name, blocks)
		}
		got, err := decodeAll(t, bytes.NewReader(s), int64(len(s)), blocks)
		if err != nil || len(got) != 8000 {
			t.Errorf("%s: %d bytes, %v", name, len(got), err)
		}
	}
}

// TestShrinkXZDict: the smallest dictionary holding the size, never a
// larger one than declared, and a header xz still accepts.
func TestShrinkXZDict(t *testing.T) {
	for _, tc := range []struct {
		declared byte
		size     int64
		want     byte
	}{
		{22, 0, 0}, {22, 4096, 0}, {22, 4097, 1}, {22, 122880, 10}, {22, 131072, 10},
		{22, 131073, 11}, {22, 100 << 20, 22}, {4, 1 << 20, 4},
	} {
		h := []byte{0x02, 0x00, 0x21, 0x01, tc.declared, 0, 0, 0, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(h[8:], crc32.ChecksumIEEE(h[:8]))
		shrinkXZDict(h, 4, tc.size)
		if h[4] != tc.want {
			t.Errorf("declared %d, size %d: props %d, want %d", tc.declared, tc.size, h[4], tc.want)
		}
		if xzDictSize(h[4]) < tc.size && h[4] != tc.declared {
			t.Errorf("size %d: dictionary %d too small", tc.size, xzDictSize(h[4]))
		}
		if crc32.ChecksumIEEE(h[:8]) != binary.LittleEndian.Uint32(h[8:]) {
			t.Errorf("declared %d, size %d: CRC32 not updated", tc.declared, tc.size)
		}
	}
}

// TestXZDictionaryFromBlockHeaders: multi-threaded xz writes each block's
// sizes into its header; a stream read from a pipe (no index up front) is
// decoded with dictionaries of the blocks' size.
func TestXZDictionaryFromBlockHeaders(t *testing.T) {
	xzTool := testutil.RequireTool(t, "xz")
	data := repeated(100000) // 200,000 bytes: four blocks of 64 KiB at most
	cmd := exec.Command(xzTool, "-6", "-T2", "--block-size=65536", "-c")
	cmd.Stdin = bytes.NewReader(data)
	stream, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	pipe := func() io.Reader { return io.MultiReader(bytes.NewReader(stream)) } // no ReaderAt, no Seeker
	n := allocated(func() { got, err = decodeAll(t, pipe(), -1, nil) })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decode: %v (equal %v)", err, bytes.Equal(got, data))
	}
	t.Logf("allocated %d KiB", n>>10)
	if n > 2<<20 {
		t.Errorf("decoding 64 KiB blocks declaring an 8 MiB dictionary allocated %d bytes, want < 2 MiB", n)
	}
}

// TestControlXZDictionaryBySize: reading the control member of a small
// package as dpkg-deb builds it (xz -6: an 8 MiB dictionary) — from a
// file-like input, at an offset, or from a pipe — does not allocate that
// dictionary, and reads the same control file.
func TestControlXZDictionaryBySize(t *testing.T) {
	dpkgDeb := testutil.RequireTool(t, "dpkg-deb")
	tree := t.TempDir()
	for name, body := range map[string]string{
		"DEBIAN/control":         "Package: small\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: small\n a small package\n",
		"usr/share/small/README": "small\n",
	} {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "small.deb")
	if b, err := exec.Command(dpkgDeb, "--root-owner-group", "-Zxz", "--build", tree, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pkg := bytes.NewBuffer(data)
	// The test means something only if the control member declares a
	// large dictionary.
	mr, err := NewMemberReader(bytes.NewReader(pkg.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var declared int64
	for {
		m, err := mr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == KindControl {
			if m.Compression != CompressXZ {
				t.Fatalf("control member %s, want xz", m.Name)
			}
			h := pkg.Bytes()[m.Offset+12:]
			props, _, err := checkXZGuardBlockHeader(h[1 : 1+int(h[0])*4+3])
			if err != nil || props < 0 {
				t.Fatalf("control member block header: %v", err)
			}
			declared = xzDictSize(h[1+props])
			break
		}
	}
	if declared < 1<<20 {
		t.Fatalf("the control member declares a %d byte dictionary; this test needs a large one", declared)
	}
	for name, in := range map[string]func() io.Reader{
		"file": func() io.Reader { return bytes.NewReader(pkg.Bytes()) },
		"pipe": func() io.Reader { return io.MultiReader(bytes.NewReader(pkg.Bytes())) },
		"offset": func() io.Reader {
			r := bytes.NewReader(append([]byte("junk"), pkg.Bytes()...))
			r.Seek(4, io.SeekStart)
			return r
		},
	} {
		var info *Info
		n := allocated(func() { info, err = Inspect(in()) })
		if err != nil || info.Control.Paragraph.Get("Package") != "small" {
			t.Fatalf("%s: inspect: %v", name, err)
		}
		t.Logf("%s: allocated %d KiB (declared dictionary %d KiB)", name, n>>10, declared>>10)
		if n > 1<<20 {
			t.Errorf("%s: reading the control member allocated %d bytes, want < 1 MiB", name, n)
		}
	}
}

// TestXZInputBufferSizedByHint: the data member's input is gathered in a
// buffer of the expected size, not grown (and copied) from 1 MiB up.
func TestXZInputBufferSizedByHint(t *testing.T) {
	const size = 6 << 20
	piece := make([]byte, 32<<10)
	var chunks []int
	pool := newOrderedPool(24<<20, 1, func(b []byte) (int, error) { return cap(b), nil }, func(n int) error {
		chunks = append(chunks, n)
		return nil
	})
	pool.first = size + size/8
	got := allocated(func() {
		for n := 0; n < size; n += len(piece) {
			pool.Write(piece)
		}
	})
	if err := pool.finish(); err != nil {
		t.Fatal(err)
	}
	if got > size+size/4 {
		t.Errorf("%d MiB of input allocated %.1f MiB of buffers, want one buffer of about %d MiB", size>>20, float64(got)/(1<<20), size>>20)
	}
	if len(chunks) != 1 || chunks[0] != size+size/8 {
		t.Errorf("chunk buffers of capacity %v, want [%d]", chunks, size+size/8)
	}
}
