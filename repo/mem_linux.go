package repo

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

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
