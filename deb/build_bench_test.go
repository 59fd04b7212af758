package deb_test

import (
	"context"
	"io"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// BenchmarkBuild measures Build on an in-memory tree of about 1 MiB
// (mixed text and random data), per compression.
func BenchmarkBuild(b *testing.B) {
	fsys := bigTree()
	for _, comp := range allCompressions {
		b.Run(string(comp), func(b *testing.B) {
			b.SetBytes(1100 << 10)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := deb.Build(context.Background(), fsys, io.Discard, deb.BuildOptions{Compression: comp}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
