package hugemem

import "testing"

// TestBuffers: small and large buffers have the capacity asked for, start
// zeroed, and can be written to their end before they are freed.
func TestBuffers(t *testing.T) {
	for _, n := range []int{0, 1, 100, huge/2 - 1, huge / 2, huge, 3*huge + 5} {
		b, free := Buffer(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("Buffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		b = b[:n]
		for i := range b {
			if b[i] != 0 {
				t.Fatalf("Buffer(%d): byte %d is %d, want 0", n, i, b[i])
			}
			b[i] = byte(i)
		}
		free()
		u, free := Uint32s(n)
		if len(u) != n {
			t.Fatalf("Uint32s(%d): %d", n, len(u))
		}
		for i := range u {
			if u[i] != 0 {
				t.Fatalf("Uint32s(%d): %d is %d, want 0", n, i, u[i])
			}
			u[i] = uint32(i)
		}
		free()
	}
}
