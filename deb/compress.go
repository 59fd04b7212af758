package deb

import (
	"fmt"
	"io"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression names the compressor of a .deb member.
type Compression string

// The compressions dpkg understands. Xz is dpkg-deb's default; zstd needs
// dpkg ≥ 1.21.18 and is never chosen by default.
const (
	CompressXZ   Compression = "xz"
	CompressGzip Compression = "gzip"
	CompressZstd Compression = "zstd"
	CompressNone Compression = "none"
)

// ParseCompression accepts the names dpkg-deb's -Z takes.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(strings.ToLower(s)); c {
	case CompressXZ, CompressGzip, CompressZstd, CompressNone:
		return c, nil
	case "":
		return CompressXZ, nil
	}
	return "", fmt.Errorf("%w: %q; choose xz (default), gzip, zstd or none", ErrCompression, s)
}

// Ext is the member name suffix: ".xz", ".gz", ".zst" or "".
func (c Compression) Ext() string {
	switch c {
	case CompressXZ:
		return ".xz"
	case CompressGzip:
		return ".gz"
	case CompressZstd:
		return ".zst"
	}
	return ""
}

// levelRange returns the valid levels and dpkg-deb's default level.
func (c Compression) levelRange() (lo, hi, def int) {
	switch c {
	case CompressGzip:
		return 1, 9, 9
	case CompressXZ:
		return 0, 9, 6
	case CompressZstd:
		return 1, 19, 3
	}
	return 0, 0, 0
}

// checkLevel validates a compression level; 0 means the default.
func (c Compression) checkLevel(level int) (int, error) {
	lo, hi, def := c.levelRange()
	if level == 0 {
		return def, nil
	}
	if c == CompressNone || level < lo || level > hi {
		if c == CompressNone {
			return 0, fmt.Errorf("%w: a level makes no sense without compression", ErrCompression)
		}
		return 0, fmt.Errorf("%w: level %d for %s; use %d to %d (default %d)", ErrCompression, level, c, lo, hi, def)
	}
	return level, nil
}

// pgzipMin is the input size from which gzip is compressed in parallel
// blocks; below it one plain stream is cheaper to set up.
const pgzipMin = 1 << 20

// newCompressor wraps w in the compressor c at level (already checked),
// compressing on up to workers goroutines where the format allows it.
// sizeHint (the expected input size) may pick the encoder; the output
// depends on the input and sizeHint, never on workers.
func newCompressor(w io.Writer, c Compression, level, workers int, sizeHint int64) (io.WriteCloser, error) {
	switch c {
	case CompressNone:
		return nopCloser{w}, nil
	case CompressGzip:
		// No name, no mtime in the gzip header: output depends on content
		// only. Blocks of 1 MiB, each primed with its predecessor's
		// window, make one ordinary gzip member.
		if sizeHint < pgzipMin {
			return kgzip.NewWriterLevel(w, level)
		}
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		return zw, zw.SetConcurrency(1<<20, max(workers, 1))
	case CompressXZ:
		return newParallelXZ(w, level, workers, sizeHint), nil
	case CompressZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(1))
	}
	return nil, fmt.Errorf("%w: %q", ErrCompression, c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
