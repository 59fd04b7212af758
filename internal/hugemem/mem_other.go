//go:build !linux

package hugemem

// Buffer returns an empty buffer with capacity for at least n bytes and
// the function that frees it (see the Linux version).
func Buffer(n int) ([]byte, func()) { return make([]byte, 0, n), func() {} }
