package repo

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"unsafe"

	bolt "go.etcd.io/bbolt"
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
// compressing it. Only the whole huge pages within n get them: the rest
// of the last one would be resident for nothing (up to 2 MB). The buffer
// must not be used after free, nor grown with append beyond its capacity
// (append then copies to the Go heap, which is harmless).
func hugeBuffer(n int) ([]byte, func()) {
	const huge = 2 << 20
	if n < huge/2 {
		return make([]byte, 0, n), func() {}
	}
	// A whole number of huge pages: the kernel aligns such a mapping to
	// them.
	size := (n + huge - 1) &^ (huge - 1)
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, 0, n), func() {}
	}
	if whole := n &^ (huge - 1); whole > 0 {
		unix.Madvise(b[:whole], unix.MADV_HUGEPAGE)
	}
	return b[:0:size], func() { unix.Munmap(b) }
}

// dropMapped takes the state database's pages that tx has read out of the
// process's resident memory: bbolt reads through a read-only shared map
// of the file, and reading a whole package list (10,000 stanzas: some
// 8 MB) would otherwise count that much on top of what is built from it.
// The pages stay in the page cache; touching them again maps them again.
// bbolt never writes through the map, so nothing is lost.
func dropMapped(tx *bolt.Tx) {
	unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
}

// The small-file system calls of a batch (read a package, create its pool
// directory and file) are made as raw system calls: each takes tens to
// hundreds of microseconds in the kernel, and through the runtime's
// ordinary path every one of them would let the scheduler's monitor hand
// the processor to another thread and back (futex wake-ups and context
// switches that, on a virtual machine, cost as much as the calls). They
// are local file operations that do not wait for anything but the disk.

const atFDCWD = ^uintptr(99) // AT_FDCWD, -100

func rawOpen(path string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func rawRead(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawClose(fd int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

func rawFstat(fd int, st *syscall.Stat_t) error {
	if _, _, e := unix.RawSyscall(unix.SYS_FSTAT, uintptr(fd), uintptr(unsafe.Pointer(st)), 0); e != 0 {
		return e
	}
	return nil
}

// mkdirFast is os.Mkdir(dir, 0755) as a raw system call.
func mkdirFast(dir string) error {
	p, err := unix.BytePtrFromString(dir)
	if err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o755); e != 0 {
		return &fs.PathError{Op: "mkdir", Path: dir, Err: e}
	}
	return nil
}
