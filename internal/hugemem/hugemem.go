// Package hugemem allocates large buffers outside the Go heap, in memory
// the kernel backs with 2 MB pages where it can (Linux, transparent huge
// pages in "madvise" mode or "always").
//
// Writing a large buffer into fresh 4 KiB pages costs one page fault per
// page, which on a virtual machine takes longer than filling it; reading
// it at random (a match finder's tables, tens of MB) costs a TLB miss a
// read. With 2 MB pages both are 512 times rarer.
//
// A buffer must be freed with the function returned with it, and not used
// afterwards; it is zero when allocated.
package hugemem

import "unsafe"

const huge = 2 << 20

// Uint32s returns a zeroed slice of n uint32 and the function that frees
// it (see Buffer).
func Uint32s(n int) ([]uint32, func()) {
	if n == 0 {
		return nil, func() {}
	}
	b, free := Buffer(4 * n)
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(b[:1]))), n), free
}
