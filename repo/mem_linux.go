package repo

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// dropMapped takes the state database's pages that tx has read out of the
// process's resident memory: bbolt reads through a read-only shared map
// of the file, and reading a whole package list (10,000 stanzas: some
// 8 MB) would otherwise count that much on top of what is built from it.
// The pages stay in the page cache; touching them again maps them again.
// bbolt never writes through the map, so nothing is lost.
func dropMapped(tx *bolt.Tx) {
	unix.Syscall(unix.SYS_MADVISE, tx.DB().Info().Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
}
