//go:build !linux

package repo

import bolt "go.etcd.io/bbolt"

// hugeBuffer returns an empty buffer with capacity for at least n bytes
// and the function that frees it (see the Linux version).
func hugeBuffer(n int) ([]byte, func()) { return make([]byte, 0, n), func() {} }

// dropMapped is a no-op here (see the Linux version).
func dropMapped(tx *bolt.Tx) {}
