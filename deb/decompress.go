package deb

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Decompression limits. A hostile archive must not make the reader
// allocate without bound: compressors that declare their window or
// dictionary size up front are refused beyond these sizes (xz -9 uses
// 64 MiB, zstd -19 8 MiB, zstd --long=27 128 MiB).
const (
	maxXZDict     = 128 << 20
	maxZstdWindow = 128 << 20
)

// compressionOfMember returns the compression of a control.tar* or
// data.tar* member from its name's suffix.
func compressionOfMember(name string) (Compression, error) {
	i := strings.Index(name, ".tar")
	ext := name[i+len(".tar"):]
	switch ext {
	case "":
		return CompressNone, nil
	case ".gz":
		return CompressGzip, nil
	case ".xz":
		return CompressXZ, nil
	case ".zst":
		return CompressZstd, nil
	case ".bz2":
		return "", fmt.Errorf("member %s: %w: bzip2; only xz, gzip, zstd and none are read", name, ErrCompression)
	case ".lzma":
		return "", fmt.Errorf("member %s: %w: lzma; only xz, gzip, zstd and none are read", name, ErrCompression)
	}
	return "", fmt.Errorf("member %s: %w: unknown suffix %q; expected .xz, .gz, .zst or none", name, ErrCompression, ext)
}

// newDecompressor returns a reader of the decompressed content of r.
// Close releases the decoder; it does not close r.
func newDecompressor(r io.Reader, c Compression) (io.ReadCloser, error) {
	return newSizedDecompressor(r, c, -1, nil)
}

// newSizedDecompressor is newDecompressor with what is known of the
// compressed data up front: its size (-1 if unknown) and, for xz, the
// uncompressed size of each block as the stream's index declares it
// (nil if unknown; see xzBlockSizes). They only bound allocations.
func newSizedDecompressor(r io.Reader, c Compression, size int64, xzBlocks []int64) (io.ReadCloser, error) {
	return newBoundedDecompressor(r, c, size, xzBlocks, -1)
}

// newBoundedDecompressor is newSizedDecompressor for output that is cut
// at limit bytes (-1: no limit): the decoder's window never exceeds what
// the first limit bytes can refer to, so that its memory is bounded by
// the limit, not by what the data declares; data that declares more
// output than the limit is refused up front (ErrTooLarge).
func newBoundedDecompressor(r io.Reader, c Compression, size int64, xzBlocks []int64, limit int64) (io.ReadCloser, error) {
	switch c {
	case CompressNone:
		return io.NopCloser(r), nil
	case CompressGzip:
		z, err := kgzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", decodeErr(err))
		}
		return z, nil
	case CompressXZ:
		g := newXZGuard(r, size)
		g.blocks, g.limit = xzBlocks, limit
		z, err := xz.NewReader(g)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", decodeErr(err))
		}
		return io.NopCloser(z), nil
	case CompressZstd:
		if limit >= 0 {
			r = newZstdGuard(r, limit)
		}
		z, err := zstd.NewReader(r,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", decodeErr(err))
		}
		return z.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrCompression, c)
}

// decodeErr maps a decoder's error: a truncation reported by our own
// readers is kept, an early end of input becomes ErrTruncated, anything
// else is corrupt data.
func decodeErr(err error) error {
	switch {
	case errors.Is(err, ErrTruncated), errors.Is(err, ErrTooLarge), errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: compressed data ends early", ErrTruncated)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// decodedReader reads decompressed data, mapping decoder errors with
// decodeErr and refusing to deliver more than limit bytes (when limit ≥ 0).
type decodedReader struct {
	r     io.Reader
	c     Compression
	limit int64
	n     int64
}

func (d *decodedReader) Read(p []byte) (int, error) {
	if d.limit >= 0 && d.n >= d.limit {
		// Find out whether there is more before calling it a bomb.
		var one [1]byte
		if k, err := d.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("%w: it decompresses to more than %d bytes", ErrTooLarge, d.limit)
		} else if err != nil {
			return 0, d.mapErr(err)
		}
		return 0, nil
	}
	if d.limit >= 0 && int64(len(p)) > d.limit-d.n {
		p = p[:d.limit-d.n]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	return n, d.mapErr(err)
}

func (d *decodedReader) mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if d.c == CompressNone {
		return err
	}
	return fmt.Errorf("%s: %w", d.c, decodeErr(err))
}

// limitString shows a size limit in messages: in MiB when it is whole.
func limitString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// tarErr maps archive/tar's errors onto the package's sentinels.
func tarErr(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the tarball ends early", ErrTruncated)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// tarNext is tr.Next, except that archive/tar's ErrInsecurePath (returned
// with GODEBUG=tarinsecurepath=0) is left to this package's own path
// checks, which name the entry.
func tarNext(tr *tar.Reader) (*tar.Header, error) {
	h, err := tr.Next()
	if h != nil && errors.Is(err, tar.ErrInsecurePath) {
		err = nil
	}
	return h, err
}
