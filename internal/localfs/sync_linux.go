package localfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SyncFS flushes the whole file system holding dir: one syncfs(2) call
// instead of an fsync per file (an ordinary system call).
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
