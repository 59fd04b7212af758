package deb

import (
	"io"

	"github.com/lampi-pkg/lampi-pkg/internal/xzenc"
)

// orderedPool compresses fixed-size chunks of its input on up to workers
// goroutines and emits the results in input order. At most workers chunks
// are in flight, which bounds memory to about (workers+1) × chunk bytes.
type orderedPool[T any] struct {
	chunk int
	first int // capacity of the first chunk's buffer: the expected input, if known
	work  func([]byte) (T, error)
	buf   []byte
	queue chan chan result[T]
	done  chan error
	err   error
}

type result[T any] struct {
	v   T
	err error
}

func newOrderedPool[T any](chunk, workers int, work func([]byte) (T, error), emit func(T) error) *orderedPool[T] {
	if workers < 1 {
		workers = 1
	}
	p := &orderedPool[T]{chunk: chunk, work: work, queue: make(chan chan result[T], workers), done: make(chan error, 1)}
	go func() {
		var err error
		for ch := range p.queue {
			r := <-ch
			if err == nil {
				err = r.err
			}
			if err == nil {
				err = emit(r.v)
			}
		}
		p.done <- err
	}()
	return p
}

func (p *orderedPool[T]) submit(data []byte) {
	ch := make(chan result[T], 1)
	p.queue <- ch
	go func() {
		v, err := p.work(data)
		ch <- result[T]{v, err}
	}()
}

// Write buffers p's input and hands out every full chunk.
func (p *orderedPool[T]) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if p.buf == nil {
			// Sized for the expected input when known (no copies as it
			// grows), else grows up to chunk.
			p.buf = make([]byte, 0, min(p.chunk, max(p.first, 1<<20)))
			p.first = 0
		}
		m := min(p.chunk-len(p.buf), len(b))
		p.buf = append(p.buf, b[:m]...)
		b = b[m:]
		if len(p.buf) == p.chunk {
			p.submit(p.buf)
			p.buf = nil
		}
	}
	return n, nil
}

// finish submits the last partial chunk and waits for everything to be
// emitted; it returns the first error of any chunk or of emit.
func (p *orderedPool[T]) finish() error {
	if len(p.buf) > 0 {
		p.submit(p.buf)
		p.buf = nil
	}
	close(p.queue)
	return <-p.done
}

// parallelXZ is an io.WriteCloser writing one multi-block xz stream.
type parallelXZ struct {
	pool   *orderedPool[xzChunk]
	stream *xzStreamWriter
}

// sizeHint, the expected input size (0 if unknown), sizes the first
// chunk's buffer.
func newParallelXZ(w io.Writer, level, workers int, sizeHint int64) *parallelXZ {
	s := &xzStreamWriter{w: w}
	chunk := max(3*xzenc.Preset(level).DictSize, 1<<20)
	// One chunk at a time, each on every worker: chunks are large, and
	// the encoder shares its work out without changing its output.
	pool := newOrderedPool(chunk, 1, func(b []byte) (xzChunk, error) { return compressXZChunk(b, level, workers) }, s.writeChunk)
	// A little more than the hint: it counts 512 bytes of header per
	// entry but not the padding of each file to 512 bytes.
	pool.first = int(min(sizeHint+sizeHint/8, int64(chunk)))
	return &parallelXZ{pool: pool, stream: s}
}

func (x *parallelXZ) Write(b []byte) (int, error) { return x.pool.Write(b) }

func (x *parallelXZ) Close() error {
	if err := x.pool.finish(); err != nil {
		return err
	}
	return x.stream.close()
}
