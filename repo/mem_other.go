//go:build !linux

package repo

import bolt "go.etcd.io/bbolt"

// dropMapped is a no-op here (see the Linux version).
func dropMapped(tx *bolt.Tx) {}
