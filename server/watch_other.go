//go:build !linux

package server

// watcher is Linux-only (inotify); elsewhere the 304 cache is off.
type watcher struct{}

func (*watcher) enabled() bool                       { return false }
func (*watcher) generation() uint64                  { return 0 }
func (*watcher) generations() (uint64, uint64)       { return 0, 0 }
func (*watcher) watchChain(map[string][]string) bool { return false }
func (*watcher) forgetTree()                         {}
func (*watcher) watch(string) bool                   { return false }
func (*watcher) close()                              {}
