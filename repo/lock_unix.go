//go:build unix

package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileLock is an exclusive flock(2) on a file. The kernel releases it
// when the process dies, so a killed writer never leaves a stale lock.
type fileLock struct{ f *os.File }

// acquireLock takes the exclusive lock on path, retrying until timeout
// (0: fail at once if it is taken).
func acquireLock(ctx context.Context, path string, timeout time.Duration) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	expired := time.NewTimer(timeout)
	defer expired.Stop()
	wait := 2 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-expired.C:
			f.Close()
			return nil, fmt.Errorf("%w: %s is held (waited %v)", ErrLocked, path, timeout)
		case <-time.After(wait):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *fileLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Unlock explicitly: a child process forked by another goroutine may
	// briefly share the descriptor, and closing ours alone would leave the
	// lock held until that child execs.
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
