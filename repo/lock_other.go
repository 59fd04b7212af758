//go:build !unix

package repo

import (
	"context"
	"errors"
	"time"
)

type fileLock struct{}

func acquireLock(ctx context.Context, path string, timeout time.Duration) (*fileLock, error) {
	return nil, errors.New("repository locking needs flock(2), which this system lacks")
}

func (l *fileLock) release() error { return nil }
