// Package ctxio makes long copies cancellable: a reader that stops once its
// context is done.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader that reads from r until ctx is done, then fails
// every read with ctx's error.
func Reader(ctx context.Context, r io.Reader) io.Reader {
	return reader{ctx, r}
}

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
