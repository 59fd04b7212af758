package deb

import (
	"bufio"
	"errors"
	"io"
)

// framing is what the framing guards (xzGuard, zstdGuard) share: Read
// returns the bytes next has checked and queued with take, then the raw
// bytes next said to pass through unchecked (compressed data).
type framing struct {
	r       *bufio.Reader
	next    func() error // checks the next structural element
	pending []byte       // checked bytes not yet returned
	raw     int64        // bytes to pass through unchecked
	off     int64        // input bytes read (the guard may reset it)
	err     error
}

func (g *framing) Read(p []byte) (int, error) {
	for len(g.pending) == 0 && g.raw == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.pending = g.pending[:0]
		g.err = g.next()
		if g.err != nil && !errors.Is(g.err, io.EOF) {
			g.pending = nil // never hand out a half-checked structure
		}
	}
	if len(g.pending) > 0 {
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	if int64(len(p)) > g.raw {
		p = p[:g.raw]
	}
	n, err := g.r.Read(p)
	g.raw -= int64(n)
	g.off += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// take reads exactly n more bytes into pending and returns them.
func (g *framing) take(n int) ([]byte, error) {
	start := len(g.pending)
	g.pending = append(g.pending, make([]byte, n)...)
	k, err := io.ReadFull(g.r, g.pending[start:])
	g.off += int64(k)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return g.pending[start:], err
}
