package server

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher turns inotify events on watched directories into generation
// counters. Two kinds of directories are watched: those files under
// dists/ are resolved through (the tree: any event there — a file
// created, renamed, written, deleted, its attributes changed, the
// directory itself moved — bumps gen), and those the paths of the
// repository's base, dists/ and pool/ are looked up through (the chain,
// from / down: only an event naming the entry looked up there, or the
// directory itself moving, counts; it bumps chain and gen). So a busy
// parent directory (/tmp, /srv) costs a read of its events but keeps the
// cache. The kernel queues an event before the rename(2) that caused it
// returns, and generations() looks at the queue (one FIONREAD ioctl)
// before answering, so a request that starts after a publish, or after
// dists/ or the whole repository was replaced, never sees the old state.
type watcher struct {
	once    sync.Once
	fd      int
	gen     atomic.Uint64
	chain   atomic.Uint64
	pending atomic.Int64 // drains in progress
	off     atomic.Bool

	mu      sync.Mutex
	wds     map[int]bool            // tree watch descriptors in place
	pathGen map[string]uint64       // dir → generation its watch was checked in
	names   map[int]map[string]bool // chain watch descriptor → entries looked up there
}

const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// chainMask: what can change where a name leads. IN_MASK_ADD keeps a
// tree watch's events on a directory that is both.
const chainMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_MASK_ADD | unix.IN_ONLYDIR

// selfEvents concern the watched directory itself.
const selfEvents = unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_IGNORED | unix.IN_UNMOUNT

func (w *watcher) start() {
	w.once.Do(func() {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			w.fd = -1
			w.off.Store(true)
			return
		}
		w.fd = fd
		w.wds, w.pathGen, w.names = map[int]bool{}, map[string]uint64{}, map[int]map[string]bool{}
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
	gen, _ := w.generations()
	return gen
}

// generations returns the tree's and the chain's generations after
// taking in the events queued so far (^0 each when unknown).
func (w *watcher) generations() (gen, chain uint64) {
	n, err := queued(w.fd)
	if err != nil {
		w.off.Store(true)
		return ^uint64(0), ^uint64(0)
	}
	if n > 0 {
		w.drain()
	}
	if w.pending.Load() != 0 {
		return ^uint64(0), ^uint64(0)
	}
	// gen first: a drain bumps chain before gen, so a pair read here may
	// have a chain event without its gen (the trees are checked again for
	// nothing), never gen without the chain event that bumped it.
	gen = w.gen.Load()
	return gen, w.chain.Load()
}

// drain reads the queued events and bumps the generations they concern.
func (w *watcher) drain() {
	w.pending.Add(1)
	defer w.pending.Add(-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf [8192]byte
	tree, chain := false, false
	for {
		n, err := unix.Read(w.fd, buf[:])
		if n <= 0 || err != nil {
			break
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+unix.SizeofInotifyEvent : min(n, off+unix.SizeofInotifyEvent+size)]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			off += unix.SizeofInotifyEvent + size
			if mask&unix.IN_Q_OVERFLOW != 0 {
				tree, chain = true, true // events were lost
			}
			if w.wds[wd] {
				tree = true
			}
			if names := w.names[wd]; names != nil && (mask&selfEvents != 0 || names[string(name)]) {
				chain = true
			}
			if mask&unix.IN_IGNORED != 0 { // the kernel dropped the watch
				delete(w.wds, wd)
				delete(w.names, wd)
			}
		}
	}
	if chain {
		w.chain.Add(1)
		tree = true
	}
	if tree {
		w.gen.Add(1)
	}
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

// watchChain watches the directories paths are looked up through
// (dir → the entries looked up there), in place of the chain watched
// before. It reports false when a watch could not be added.
func (w *watcher) watchChain(dirs map[string][]string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make(map[int]map[string]bool, len(dirs))
	ok := true
	for dir, entries := range dirs {
		wd, err := unix.InotifyAddWatch(w.fd, dir, chainMask)
		if err != nil {
			ok = false
			continue
		}
		m := names[wd]
		if m == nil {
			m = map[string]bool{}
			names[wd] = m
		}
		for _, e := range entries {
			m[e] = true
		}
	}
	for wd := range w.names {
		if names[wd] == nil && !w.wds[wd] {
			unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	w.names = names
	return ok
}

// forgetTree drops the tree's watches (its directories were replaced):
// the next requests watch the directories now at those paths.
func (w *watcher) forgetTree() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wd := range w.wds {
		if w.names[wd] == nil {
			unix.InotifyRmWatch(w.fd, uint32(wd))
		}
	}
	w.wds, w.pathGen = map[int]bool{}, map[string]uint64{}
	w.gen.Add(1)
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
