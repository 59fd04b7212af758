package xzenc

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// corpus returns inputs that reach every path of the encoder: empty, one
// byte, text with long and short repeats, random bytes (stored chunks),
// runs (rep matches, matches up to 273), and more than one LZMA2 chunk
// of input (2 MiB) and of output (64 KiB).
func corpus() map[string][]byte {
	rng := rand.New(rand.NewPCG(7, 8))
	text := func(n int) []byte {
		words := []string{"lamp ", "light ", "on ", "off ", "\n", "Description: ", "#!/bin/sh\n", "0123456789"}
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
		}
		return b.Bytes()[:n]
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	runs := bytes.Repeat([]byte{'a'}, 100000)
	runs = append(runs, bytes.Repeat([]byte("ab"), 50000)...)
	runs = append(runs, bytes.Repeat([]byte("lamp\n"), 500000)...) // > 2 MiB: several chunks
	mixed := append(append(text(400<<10), random(100<<10)...), text(300<<10)...)
	mixed = append(mixed, mixed[:100<<10]...) // a repeat 800 KiB back
	letters := make([]byte, 300<<10)          // about 4.7 bits a byte: several 64 KiB outputs
	for i := range letters {
		letters[i] = byte('a' + rng.IntN(26))
	}
	return map[string][]byte{
		"empty": {}, "one": {'x'}, "three": []byte("abc"), "text": text(100 << 10), "letters": letters,
		"random": random(200 << 10), "runs": runs, "mixed": mixed,
	}
}

// TestWorkersDoNotChangeOutput: the bytes depend on the options, never on
// how many goroutines found the matches.
func TestWorkersDoNotChangeOutput(t *testing.T) {
	testutil.Heavy(t, "compresses 300 KiB at two levels with one and two workers")
	data := corpus()["mixed"][:300<<10]
	for _, level := range []int{1, 6} {
		o := Preset(level)
		o.Workers = 1
		one := Compress(data, o)
		for _, w := range []int{2, 5} {
			o.Workers = w
			if !bytes.Equal(Compress(data, o), one) {
				t.Errorf("level %d: %d workers give other bytes than 1", level, w)
			}
		}
	}
}

// TestSmallerThanGreedy: on text, the optimal parser beats a greedy
// encoder (ulikunitz/xz, what deb used before) clearly.
func TestSmallerThanGreedy(t *testing.T) {
	testutil.Heavy(t, "compresses the mixed corpus twice to compare with a greedy parser")
	data := corpus()["mixed"]
	ours := Compress(data, Options{Workers: 2})
	var b bytes.Buffer
	w, _ := xz.WriterConfig{DictCap: 8 << 20}.NewWriter(&b)
	w.Write(data)
	w.Close()
	if float64(len(ours)) > 0.95*float64(b.Len()) {
		t.Errorf("%d bytes, greedy encoder %d: not 5 %% smaller", len(ours), b.Len())
	}
}

// chunkKinds walks the LZMA2 chunks of a stream's single block and counts
// stored and LZMA chunks.
func chunkKinds(t *testing.T, s []byte) (stored, lzma int) {
	t.Helper()
	p := 12 + (int(s[12])+1)*4
	for {
		c := s[p]
		switch {
		case c == 0:
			return
		case c == 1 || c == 2:
			stored++
			p += 3 + int(s[p+1])<<8 + int(s[p+2]) + 1
		case c >= 0x80:
			lzma++
			n := 5 + int(s[p+3])<<8 + int(s[p+4]) + 1
			if c >= 0xC0 {
				n++
			}
			p += n
		default:
			t.Fatalf("bad LZMA2 control byte %#x at %d", c, p)
		}
	}
}

// TestPrices: the integer prices are -log2(p/2048) in 1/16 bit, to within
// one unit.
func TestPrices(t *testing.T) {
	for i, got := range probPrices {
		p := float64(i<<4+8) / 2048
		want := -math.Log2(p) * 16
		if math.Abs(float64(got)-want) > 1 {
			t.Errorf("price of p=%d/2048: %d, want %.2f", i<<4+8, got, want)
		}
	}
}

// TestBlockHeaderSizes: xz --list reads the block's sizes from its
// header (what decoders size their dictionary by).
func TestBlockHeaderSizes(t *testing.T) {
	xzTool := testutil.RequireTool(t, "xz")
	data := corpus()["text"]
	f := filepath.Join(t.TempDir(), "text.xz")
	if err := os.WriteFile(f, Compress(data, Options{}), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(xzTool, "--robot", "--list", "--verbose", "--verbose", f).Output()
	if err != nil {
		t.Fatalf("xz --list: %v", err)
	}
	// block lines: ... header size, flags "cu" (compressed and
	// uncompressed sizes present), ...
	if !bytes.Contains(got, []byte("\tcu\t")) {
		t.Errorf("block header without both sizes:\n%s", got)
	}
}

// TestRepeatsLeftOutOfTrees: the positions inside a long repeat are not
// inserted into the trees (the work saved on redundant input), and the
// parser still finds the repeat: the second copy of random bytes costs
// almost nothing.
func TestRepeatsLeftOutOfTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	half := make([]byte, 150<<10)
	for i := range half {
		half[i] = byte(rng.Uint32())
	}
	data := append(append([]byte{}, half...), half...)
	o := Preset(6).withDefaults()
	f := newFinder(data, o)
	defer f.close()
	skipped := 0
	for start := 0; start < len(data); start += windowSize {
		f.release(start)
		f.at(start)
		w := f.held[len(f.held)-1]
		for i := range w.end - w.start {
			if w.skip[i] {
				skipped++
			}
		}
	}
	if skipped < len(half)*99/100 {
		t.Errorf("%d positions left out of the trees, want about %d (the second copy)", skipped, len(half))
	}
	if n := len(Compress(data, Options{})); n > len(half)+len(half)/100 {
		t.Errorf("%d bytes of random data twice: %d compressed, want about %d", len(half), n, len(half))
	}
}

// TestLongLenLeavesShorterRepeatsOut: repeats of LongLen bytes or more,
// shorter than the nice length, leave the positions inside them out of
// the trees (level 6: 16 bytes), and only those: with LongLen at the nice
// length they are all inserted. Either way the output decodes.
func TestLongLenLeavesShorterRepeatsOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	letter := func() byte { return byte('0' + rng.IntN(64)) } // not "incompressible"
	var data []byte
	for range 40 << 10 {
		data = append(data, letter())
	}
	const copies, n = 1000, 20
	for range copies {
		at := rng.IntN(40<<10 - n)
		data = append(data, data[at:at+n]...)
		for range 12 {
			data = append(data, letter())
		}
	}
	skipped := func(o Options) int {
		f := newFinder(data, o.withDefaults())
		defer f.close()
		count := 0
		for start := 0; start < len(data); start += windowSize {
			f.release(start)
			f.at(start)
			w := f.held[len(f.held)-1]
			for i := range w.end - w.start {
				if w.skip[i] {
					count++
				}
			}
		}
		return count
	}
	o := Preset(6)
	if o.LongLen != 16 || o.NiceLen != 24 {
		t.Fatalf("level 6: LongLen %d, NiceLen %d; this test expects 16 and 24", o.LongLen, o.NiceLen)
	}
	if got := skipped(o); got < copies*(n-16)/2 {
		t.Errorf("LongLen 16: %d positions left out of the trees, want most of the %d inside %d repeats of %d bytes", got, copies*(n-1), copies, n)
	}
	o.LongLen = o.NiceLen
	if got := skipped(o); got > copies {
		t.Errorf("LongLen = NiceLen (24): %d positions left out of the trees, want about none (no repeat of 24 bytes)", got)
	}
	r, err := xz.NewReader(bytes.NewReader(Compress(data, Options{})))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
		t.Errorf("decoded: %v, equal %v", err, bytes.Equal(got, data))
	}
}

// TestIncompressibleLeftOutOfTrees: the positions of blocks of random
// bytes (a compressed file in a tar) are not inserted into the trees,
// those of text are; the text after them compresses as well as alone.
func TestIncompressibleLeftOutOfTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 128<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := corpus()["text"][:64<<10]
	data := append(append([]byte{}, random...), text...)
	f := newFinder(data, Preset(6).withDefaults())
	defer f.close()
	skipped := [2]int{}
	for start := 0; start < len(data); start += windowSize {
		f.release(start)
		f.at(start)
		w := f.held[len(f.held)-1]
		for i := range w.end - w.start {
			if w.skip[i] {
				skipped[min((w.start+i)/len(random), 1)]++
			}
		}
	}
	if skipped[0] < len(random)*99/100 || skipped[1] > len(text)/2 {
		t.Errorf("left out of the trees: %d of %d random positions (want all), %d of %d of text (want few)", skipped[0], len(random), skipped[1], len(text))
	}
	alone := len(Compress(text, Options{}))
	if n := len(Compress(data, Options{})); n > len(random)+alone+alone/50 {
		t.Errorf("%d random bytes and text (%d bytes alone): %d bytes", len(random), alone, n)
	}
}
