package deb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/lampi-pkg/lampi-pkg/internal/xzenc"
)

// Large xz members: the input is cut into chunks of three dictionaries
// (as "xz -T" does), each compressed into a one-block xz stream by the
// parallel encoder of internal/xzenc; the blocks are then spliced, in
// order, into a single multi-block stream with a combined index. The
// output depends on the level only, never on the number of workers, so
// builds stay byte-identical on any machine.

var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

// xzRecord is one index record: a block's unpadded and uncompressed size.
type xzRecord struct{ unpadded, uncompressed uint64 }

// xzChunk is a compressed chunk: its blocks (with padding) and records.
type xzChunk struct {
	blocks  []byte
	records []xzRecord
}

// compressXZChunk compresses one chunk into a standalone stream (with
// the project's own encoder, see internal/xzenc) and cuts out its blocks
// and index records. workers only speeds it up.
func compressXZChunk(data []byte, level, workers int) (xzChunk, error) {
	o := xzenc.Preset(level)
	o.Workers = workers
	return splitXZStream(xzenc.Compress(data, o))
}

// splitXZStream parses a single xz stream written by us and returns its
// blocks and index records.
func splitXZStream(s []byte) (xzChunk, error) {
	if len(s) < 24 || !bytes.Equal(s[:6], xzMagic) {
		return xzChunk{}, errors.New("xz: not a stream")
	}
	footer := s[len(s)-12:]
	backward := (uint64(binary.LittleEndian.Uint32(footer[4:8])) + 1) * 4
	if backward > uint64(len(s)-24) {
		return xzChunk{}, errors.New("xz: bad backward size")
	}
	indexStart := len(s) - 12 - int(backward)
	index := s[indexStart : len(s)-12]
	if index[0] != 0 {
		return xzChunk{}, errors.New("xz: no index indicator")
	}
	r := bytes.NewReader(index[1:])
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return xzChunk{}, fmt.Errorf("xz: index: %w", err)
	}
	c := xzChunk{blocks: s[12:indexStart]}
	for i := uint64(0); i < n; i++ {
		u, err1 := binary.ReadUvarint(r)
		v, err2 := binary.ReadUvarint(r)
		if err := errors.Join(err1, err2); err != nil {
			return xzChunk{}, fmt.Errorf("xz: index record: %w", err)
		}
		c.records = append(c.records, xzRecord{u, v})
	}
	return c, nil
}

// xzStreamWriter writes the stream header, then blocks as they come, then
// the combined index and footer on close.
type xzStreamWriter struct {
	w       io.Writer
	records [][2]uint64
	started bool
}

func (x *xzStreamWriter) writeChunk(c xzChunk) error {
	if !x.started {
		if err := x.header(); err != nil {
			return err
		}
	}
	for _, r := range c.records {
		x.records = append(x.records, [2]uint64{r.unpadded, r.uncompressed})
	}
	_, err := x.w.Write(c.blocks)
	return err
}

func (x *xzStreamWriter) header() error {
	x.started = true
	_, err := x.w.Write(xzenc.StreamHeader())
	return err
}

func (x *xzStreamWriter) close() error {
	if !x.started {
		if err := x.header(); err != nil {
			return err
		}
	}
	_, err := x.w.Write(xzenc.IndexAndFooter(x.records))
	return err
}
