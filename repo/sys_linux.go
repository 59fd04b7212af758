package repo

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the whole file system holding dir (one syncfs(2) call
// instead of an fsync per file).
func syncFS(dir string) error {
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

// hugeBuffer returns an empty buffer with capacity for at least n bytes
// and the function that frees it. Large buffers are mapped with
// MADV_HUGEPAGE: writing a 6 MB Packages index into fresh 4 KiB pages costs
// some 1,500 page faults, which on a virtual machine take longer than
// compressing it. The buffer must not be used after free, nor grown with
// append beyond its capacity (append then copies to the Go heap, which is
// harmless).
func hugeBuffer(n int) ([]byte, func()) {
	const huge = 2 << 20
	if n < huge/2 {
		return make([]byte, 0, n), func() {}
	}
	size := (n + huge - 1) &^ (huge - 1)
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, 0, n), func() {}
	}
	unix.Madvise(b, unix.MADV_HUGEPAGE)
	return b[:0:size], func() { unix.Munmap(b) }
}
