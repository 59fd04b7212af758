// Package localfs holds the system-call level file code of the
// repository: reading a small package file, creating a pool file,
// making its directory, flushing a file system, touching a file's time.
// It is for local file systems only.
//
// A batch import makes three or four such calls per package, each taking
// tens to hundreds of microseconds in the kernel. Through the os package
// every descriptor is registered with the runtime poller (four fcntl and
// one epoll_ctl per file), and through the runtime's ordinary system-call
// path the scheduler's monitor may hand the processor to another thread
// and back for each call (futex wake-ups and context switches that, on a
// virtual machine, cost as much as the calls). [Files] therefore makes
// them as raw system calls, which never give up the processor.
//
// # Caveats
//
// A raw system call that blocks holds its processor for as long as it
// blocks. On a local disk that is the disk's latency; on a network file
// system (NFS, SMB, FUSE) a call can block for seconds or for ever, and
// with it a whole GOMAXPROCS share of the program. Set [Files].Plain
// there: every operation then goes through the os package, which the
// runtime can schedule around. Plain also applies on systems other than
// Linux, where the raw path is the syscall package's ordinary one.
package localfs
