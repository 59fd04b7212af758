package hugemem

import "golang.org/x/sys/unix"

// Buffer returns an empty buffer with capacity for at least n bytes and
// the function that frees it. Buffers of 1 MB or more are mapped outside
// the Go heap with MADV_HUGEPAGE; only the whole huge pages within n get
// them: the rest of the last one would be resident for nothing (up to
// 2 MB). The buffer must not be used after free, nor grown with append
// beyond its capacity (append then copies to the Go heap, which is
// harmless).
func Buffer(n int) ([]byte, func()) {
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
