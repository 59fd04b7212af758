//go:build !linux

package repo

import (
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// syncFS flushes every file system: without syncfs(2) there is no
// cheaper way to make many written files durable at once.
func syncFS(dir string) error {
	syscall.Sync()
	return nil
}

// hugeBuffer returns an empty buffer with capacity for at least n bytes
// and the function that frees it (see the Linux version).
func hugeBuffer(n int) ([]byte, func()) { return make([]byte, 0, n), func() {} }

// dropMapped is a no-op here (see the Linux version).
func dropMapped(tx *bolt.Tx) {}

// mkdirFast is os.Mkdir(dir, 0755) (see the Linux version).
func mkdirFast(dir string) error { return os.Mkdir(dir, 0o755) }
