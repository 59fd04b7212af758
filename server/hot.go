package server

import (
	"strings"
	"sync"
)

// hotEntry is what a 304 answer needs about a file under dists/.
type hotEntry struct {
	gen uint64 // the change generation it was read in
	validators
	tagHdr []string // {tag}, shared by the responses (len == cap)
}

func newHotEntry(gen uint64, v validators) hotEntry {
	return hotEntry{gen: gen, validators: v, tagHdr: []string{v.tag}}
}

// unchanged answers a conditional request as servePublished does:
// If-None-Match (weak comparison) when present, else If-Modified-Since
// naming exactly the version's date (see dates.go).
func (e *hotEntry) unchanged(inm, ims []string) bool {
	if len(inm) == 1 {
		return matchesETag(inm[0], e.tag)
	}
	return !e.modifiedSince(ims[0])
}

// hotCache answers "has anything changed?" without a system call: it
// keeps the ETag of each file under dists/ that was served, and forgets
// them all (by bumping a generation) as soon as the kernel reports any
// change in a directory they were resolved through (inotify on Linux;
// elsewhere the cache stays empty). An entry is stored with the
// generation read after the watches were in place and before the file
// was opened, so a change racing with the first request leaves no stale
// entry; an answer can lag a change only by the kernel's event delivery.
type hotCache struct {
	w  watcher
	mu sync.RWMutex
	m  map[string]hotEntry
}

// lookup returns the entry of name if it was stored in generation gen
// (fileServer.current's answer).
func (c *hotCache) lookup(name string, gen uint64) (hotEntry, bool) {
	if gen == ^uint64(0) {
		return hotEntry{}, false
	}
	c.mu.RLock()
	e, ok := c.m[name]
	c.mu.RUnlock()
	return e, ok && e.gen == gen
}

// prepare watches the directories name is resolved through (dir is the
// served tree's path, name relative to it) and returns the generation to
// store an entry with, or ok=false when the cache is off.
func (c *hotCache) prepare(dir, name string) (uint64, bool) {
	if !c.w.enabled() {
		return 0, false
	}
	d := dir
	if !c.w.watch(d) {
		return 0, false
	}
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		d += "/" + p
		if !c.w.watch(d) {
			return 0, false
		}
	}
	return c.w.generation(), true
}

func (c *hotCache) store(name string, e hotEntry) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTags {
		c.m = make(map[string]hotEntry)
	}
	c.m[name] = e
	c.mu.Unlock()
}

// matchesETag implements If-None-Match's weak comparison against tag.
func matchesETag(header, tag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == tag {
			return true
		}
	}
	return false
}
