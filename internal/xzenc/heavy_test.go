//go:build !race

// Compute-heavy tests, left out of the race detector's build (it slows
// the encoder 25-40 times): "make test" runs them in a second pass
// without -race. The encoder's concurrency is checked under the race
// detector by TestWorkersDoNotChangeOutput.

package xzenc

import (
	"bytes"
	"io"
	"os/exec"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/ulikunitz/xz"
)

// TestRoundTrip: the real xz and another decoder (ulikunitz/xz) read
// back exactly the input.
func TestRoundTrip(t *testing.T) {
	testutil.Heavy(t, "compresses the whole corpus at every level and decompresses it with the real xz")
	xzTool := testutil.RequireTool(t, "xz")
	for name, data := range corpus() {
		out := Compress(data, Options{Workers: 2})
		cmd := exec.Command(xzTool, "--decompress", "--stdout")
		cmd.Stdin = bytes.NewReader(out)
		got, err := cmd.Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: xz -d: %v; %d bytes back of %d (equal %v)", name, err, len(got), len(data), bytes.Equal(got, data))
		}
		r, err := xz.NewReader(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err = io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: ulikunitz/xz: %v (equal %v)", name, err, bytes.Equal(got, data))
		}
	}
}

// TestChunks: incompressible input is stored, long input spans several
// LZMA chunks (2 MiB of input, 64 KiB of output each at most).
func TestChunks(t *testing.T) {
	testutil.Heavy(t, "compresses the whole corpus to count chunk kinds")
	c := corpus()
	if stored, _ := chunkKinds(t, Compress(c["random"], Options{})); stored < 3 {
		t.Errorf("random input: %d stored chunks, want ≥ 3 (64 KiB each)", stored)
	}
	if _, n := chunkKinds(t, Compress(c["runs"], Options{})); n < 2 {
		t.Errorf("%d bytes of runs: %d LZMA chunks, want ≥ 2 (2 MiB of input each)", len(c["runs"]), n)
	}
	if _, n := chunkKinds(t, Compress(c["letters"], Options{})); n < 3 {
		t.Errorf("random letters: %d LZMA chunks, want ≥ 3 (64 KiB of output each)", n)
	}
	if stored, n := chunkKinds(t, Compress(c["mixed"], Options{})); n < 2 || stored < 1 {
		t.Errorf("mixed input: %d LZMA and %d stored chunks, want LZMA after stored", n, stored)
	}
}
