package deb_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestControlBombMemory: control members that decompress to far more
// than they weigh — one file declaring 1 GiB (xz streams, the reported
// 150 KiB upload; zstd frames declaring a 128 MiB window) or many files
// of 1 MiB (gzip, xz, zstd) — are refused with ErrTooLarge, and reading them
// allocates no more than about twice the control limit, whatever the
// archive declares: the default limit, and a small one as a server
// sets. (Reading the 1 GiB file with io.ReadAll up to the 64 MiB limit
// allocated some 300 MiB; the zstd window alone was 128 MiB.)
//
// Not parallel: it measures the allocations of the whole process.
func TestControlBombMemory(t *testing.T) {
	testutil.Heavy(t, "decompresses control-member bombs of up to 1 GiB to measure memory")
	bombs := map[string][]byte{
		"xz 1 GiB file":         testutil.ControlBomb(t, "xz", 1<<30, 1<<30),
		"zstd 256 MiB file":     testutil.ControlBomb(t, "zstd", 256<<20, 256<<20),
		"gzip 1 MiB files":      testutil.ControlBomb(t, "gzip", 80<<20, 1<<20),
		"xz 1 MiB files":        testutil.ControlBomb(t, "xz", 80<<20, 1<<20),
		"zstd 1 MiB files":      testutil.ControlBomb(t, "zstd", 80<<20, 1<<20),
		"gzip 512 MiB one file": testutil.ControlBomb(t, "gzip", 512<<20, 512<<20),
	}
	// Without a readable xz index (here its footer is damaged) nothing
	// is known up front: each stream's block declares an 8 MiB
	// dictionary, and only their sum is bounded.
	noIndex := bytes.Clone(bombs["xz 1 MiB files"])
	m := controlMember(t, noIndex)
	noIndex[m.Offset+m.Size-8] ^= 0xff
	bombs["xz 1 MiB files, no index"] = noIndex
	for name, pkg := range bombs {
		t.Logf("%s: %d KiB", name, len(pkg)>>10)
		for _, limit := range []int64{0, 4 << 20} {
			bound := int64(deb.MaxControlSize)
			if limit > 0 {
				bound = limit
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			r, err := deb.NewReaderOptions(bytes.NewReader(pkg), deb.ReaderOptions{MaxControlSize: limit})
			if err == nil {
				_, err = r.Control()
			}
			runtime.ReadMemStats(&after)
			t.Logf("  limit %d MiB: %v", bound>>20, err)
			if !errors.Is(err, deb.ErrTooLarge) || !strings.Contains(err.Error(), "member control.tar") {
				t.Errorf("%s, limit %d MiB: err = %v, want ErrTooLarge naming the control member", name, bound>>20, err)
			}
			// Kept data and the decoder's window, each up to the limit
			// (a zstd window is rounded up to an encodable size past it).
			if n := int64(after.TotalAlloc - before.TotalAlloc); n > 2*bound+bound/4+4<<20 {
				t.Errorf("%s, limit %d MiB: allocated %d MiB, want at most about twice the limit", name, bound>>20, n>>20)
			}
		}
	}
}

// controlMember returns the control member of pkg.
func controlMember(t *testing.T, pkg []byte) deb.Member {
	t.Helper()
	mr, err := deb.NewMemberReader(bytes.NewReader(pkg))
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := mr.Next()
		if err != nil {
			t.Fatalf("no control member: %v", err)
		}
		if m.Kind == deb.KindControl {
			return *m
		}
	}
}

// TestControlWithinLimit: a control member just under the limit, with
// files of any size up to it, reads whole, in every compression; a
// zstd frame declaring a window far larger than the member reads too.
func TestControlWithinLimit(t *testing.T) {
	const limit = 4 << 20
	for _, comp := range []string{"xz", "gzip", "zstd"} {
		pkg := testutil.ControlBomb(t, comp, 3<<20, 1<<20)
		r, err := deb.NewReaderOptions(bytes.NewReader(pkg), deb.ReaderOptions{MaxControlSize: limit})
		if err != nil {
			t.Fatal(err)
		}
		ci, err := r.Control()
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		if len(ci.Files) != 4 || ci.Paragraph.Get("Package") != "bomb" || len(ci.File("junk-0003").Data) != 1<<20 {
			t.Errorf("%s: %d files, package %q", comp, len(ci.Files), ci.Paragraph.Get("Package"))
		}
	}
}
