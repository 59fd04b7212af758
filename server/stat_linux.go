package server

import (
	"io/fs"
	"syscall"
)

// statIdentity returns device, inode and change time (ns) of fi.
func statIdentity(fi fs.FileInfo) (dev, ino uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino), int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)
	}
	return 0, 0, 0
}
