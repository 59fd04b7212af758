//go:build unix && !linux

package localfs

import (
	"os"
	"syscall"
)

// The raw system calls of raw_linux.go, here through the runtime's
// ordinary path.

func rawOpen(path string, flags int, mode uint32) (int, error) {
	return syscall.Open(path, flags, mode)
}
func rawRead(fd int, b []byte) (int, error)     { return syscall.Read(fd, b) }
func rawWrite(fd int, b []byte) (int, error)    { return syscall.Write(fd, b) }
func rawClose(fd int) error                     { return syscall.Close(fd) }
func rawFstat(fd int, st *syscall.Stat_t) error { return syscall.Fstat(fd, st) }
func rawMkdir(dir string) error                 { return os.Mkdir(dir, 0o755) }
