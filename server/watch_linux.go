package server

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher turns inotify events on watched directories into a generation
// counter: any event (a file created, renamed, written, deleted, its
// attributes changed, the directory itself moved) bumps it. The kernel
// queues an event before the rename(2) that caused it returns, and
// generation() looks at the queue (one FIONREAD ioctl) before answering,
// so a request that starts after a publish never sees the old state.
type watcher struct {
	once    sync.Once
	fd      int
	gen     atomic.Uint64
	pending atomic.Int64 // drains in progress
	off     atomic.Bool

	mu      sync.Mutex
	wds     map[int]bool      // watch descriptors in place
	pathGen map[string]uint64 // dir → generation its watch was checked in
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

func (w *watcher) start() {
	w.once.Do(func() {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			w.fd = -1
			w.off.Store(true)
			return
		}
		w.fd = fd
		w.wds, w.pathGen = map[int]bool{}, map[string]uint64{}
	})
}

func (w *watcher) enabled() bool {
	w.start()
	return !w.off.Load()
}

// generation returns the current generation after taking in the events
// queued so far, or ^0 when the state is unknown (a drain by another
// goroutine is under way, or the watcher failed): no entry matches it.
func (w *watcher) generation() uint64 {
	n, err := queued(w.fd)
	if err != nil {
		w.off.Store(true)
		return ^uint64(0)
	}
	if n > 0 {
		w.drain()
	}
	if w.pending.Load() != 0 {
		return ^uint64(0)
	}
	return w.gen.Load()
}

// drain reads the queued events and bumps the generation.
func (w *watcher) drain() {
	w.pending.Add(1)
	defer w.pending.Add(-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [8192]byte
	for {
		n, err := unix.Read(w.fd, buf[:])
		if n <= 0 || err != nil {
			break
		}
	}
	w.gen.Add(1)
}

// watch makes sure the directory dir resolves to (following symbolic
// links) is watched. Without events since the last check nothing is done;
// after one (a link may now point elsewhere) the watch is added again,
// which for the same directory returns the same descriptor.
func (w *watcher) watch(dir string) bool {
	cur := w.generation()
	w.mu.Lock()
	defer w.mu.Unlock()
	if g, ok := w.pathGen[dir]; ok && g == cur {
		return true
	}
	if len(w.wds) >= 4096 || len(w.pathGen) >= 16384 {
		return false
	}
	wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return false
	}
	if !w.wds[wd] {
		// A directory newly watched may have changed before the watch
		// existed: entries read before now are not trusted.
		w.wds[wd] = true
		w.gen.Add(1)
	}
	w.pathGen[dir] = w.gen.Load()
	return true
}

func (w *watcher) close() {
	w.start()
	if !w.off.Swap(true) && w.fd >= 0 {
		unix.Close(w.fd)
	}
}

// queued returns the number of bytes of events queued on the inotify
// descriptor (FIONREAD). The ioctl never blocks, so it is made as a raw
// system call, without telling the scheduler: it is on the path of every
// conditional request.
func queued(fd int) (int, error) {
	var n int32
	_, _, e := unix.RawSyscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCINQ), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
