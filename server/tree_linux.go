package server

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fastDir opens files beneath a directory with one openat2(2) call:
// RESOLVE_BENEATH makes the kernel refuse "..", absolute paths and
// symbolic links leading out, as os.Root does component by component
// with several system calls. The file is opened with O_NONBLOCK, so
// that a FIFO planted in the tree opens at once instead of waiting for a
// writer with an OS thread pinned (the caller refuses what is not a
// regular file); on a regular file the flag changes nothing.
type fastDir struct{ fd int }

func openFastDir(dir string) fastDir {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fastDir{fd: -1}
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	probe, err := unix.Openat2(fd, ".", &how)
	if err != nil { // no openat2 (Linux < 5.6, seccomp): use os.Root
		unix.Close(fd)
		return fastDir{fd: -1}
	}
	unix.Close(probe)
	return fastDir{fd: fd}
}

// open reports ok=false when the fast path is not available.
func (d fastDir) open(name string) (*os.File, bool, error) {
	if d.fd < 0 {
		return nil, false, nil
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(d.fd, name, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil, true, &os.PathError{Op: "openat2", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), true, nil
	}
}

// noBlock is O_NONBLOCK, for opens that must not wait on a FIFO.
const noBlock = unix.O_NONBLOCK

// is reports whether the directory d holds is info's (true when the
// fast path is off: there is nothing to disagree).
func (d fastDir) is(info fs.FileInfo) bool {
	if d.fd < 0 {
		return true
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	var own unix.Stat_t
	if err := unix.Fstat(d.fd, &own); err != nil {
		return false
	}
	return uint64(own.Dev) == uint64(st.Dev) && uint64(own.Ino) == uint64(st.Ino)
}

func (d fastDir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
	}
}
