package repo

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Tracking is a distribution's Tracking field: which files of each
// source package it keeps a record of, and how long.
type Tracking struct {
	// Mode is "keep", "all" or "minimal"; "" means no tracking.
	Mode string
}

// trackingOptions are the option words reprepro accepts after the mode;
// lampi-pkg refuses them (none is implemented).
var trackingOptions = []string{"includechanges", "includebyhand", "includelogs", "includebuildinfos",
	"keepsources", "needsources", "embargoalls"}

// parseTracking reads "Tracking: keep|all|minimal".
func parseTracking(v string) (Tracking, error) {
	var t Tracking
	for _, w := range strings.Fields(v) {
		switch w {
		case "keep", "all", "minimal":
			if t.Mode != "" {
				return Tracking{}, fmt.Errorf("%q: give one of keep, all and minimal, not %s and %s", v, t.Mode, w)
			}
			t.Mode = w
		default:
			if contains(trackingOptions, w) {
				return Tracking{}, fmt.Errorf("%q: option %q is not implemented by lampi-pkg (the records hold the packages' files only); remove it", v, w)
			}
			return Tracking{}, fmt.Errorf("%q: unknown word %q; use keep, all or minimal", v, w)
		}
	}
	if t.Mode == "" {
		return Tracking{}, fmt.Errorf("%q: no mode; use keep, all or minimal", v)
	}
	return t, nil
}

// The tracking bucket holds the records of distributions with a Tracking
// field: key codename "\x00" source "\x00" source version, value the
// tracking mode on the first line, then one line "FILEKEY TYPE COUNT"
// per file in the order they joined the record. A record holds every
// file it lists in the pool (a reference "track|CODENAME|SOURCE|VERSION"
// in the references bucket, trackHolder), whatever its count.
const bTracking = "tracking"

// trackedFile is one file of a tracking record.
type trackedFile struct {
	File  string
	Type  byte // 's' source, 'b' binary, 'a' Architecture: all binary
	Count int
}

// TrackRecord is one tracking record: the files of one version of a
// source package in a distribution, as "reprepro dumptracks" shows it.
type TrackRecord struct {
	Codename string        `json:"codename"`
	Source   string        `json:"source"`
	Version  string        `json:"version"`
	Files    []TrackedFile `json:"files"`
}

// TrackedFile is a file of a tracking record: its pool key, its type
// ("s" source, "b" binary, "a" Architecture: all binary) and how many
// package lists of the distribution use it.
type TrackedFile struct {
	File  string `json:"file"`
	Type  string `json:"type"`
	Count int    `json:"count"`
}

func trackKey(codename, source, version string) []byte {
	return []byte(codename + "\x00" + source + "\x00" + version)
}

// trackHolder is the reference a record holds on its files: like a
// target's, it starts with the codename ("#" cannot start a component).
func trackHolder(codename, source, version string) string {
	return codename + "|#track|" + source + "|" + version
}

func decodeTrack(v []byte) (mode string, files []trackedFile) {
	lines := strings.Split(strings.TrimSuffix(string(v), "\n"), "\n")
	mode = lines[0]
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 3 || len(f[1]) != 1 {
			continue
		}
		n, _ := strconv.Atoi(f[2])
		files = append(files, trackedFile{f[0], f[1][0], n})
	}
	return mode, files
}

func encodeTrack(mode string, files []trackedFile) []byte {
	var b strings.Builder
	b.WriteString(mode + "\n")
	for _, f := range files {
		fmt.Fprintf(&b, "%s %c %d\n", f.File, f.Type, f.Count)
	}
	return []byte(b.String())
}

// trackType is the record type of an entry's files.
func trackType(t Target, stanza []byte) byte {
	switch {
	case t.IsSource():
		return 's'
	case stanzaField(stanza, "Architecture") == "all":
		return 'a'
	}
	return 'b'
}

// trackAdd counts an entry (a stored value) just added to target t of d
// in the record of its source package and version, creating the record,
// when d has tracking.
func trackAdd(tx *bolt.Tx, d *Distribution, t Target, name, version string, value []byte) error {
	if d.Tracking.Mode == "" {
		return nil
	}
	b := bucket(tx, bTracking)
	if b == nil {
		return fmt.Errorf("%w: no tracking bucket", ErrState)
	}
	_, stanza := splitPkgValue(value)
	src, srcVersion := entrySource(Entry{Target: t, Package: name, Version: version, Stanza: stanza})
	key := trackKey(d.Codename, src, srcVersion)
	var files []trackedFile
	if v := b.Get(key); v != nil {
		_, files = decodeTrack(v)
	}
	mode := d.Tracking.Mode // the mode in force when last added to
	typ := trackType(t, stanza)
	holder := trackHolder(d.Codename, src, srcVersion)
	for _, f := range entryFiles(value) {
		found := false
		for i := range files {
			if files[i].File == f {
				files[i].Count++
				found = true
				break
			}
		}
		if !found {
			files = append(files, trackedFile{f, typ, 1})
			if err := addHolderRef(tx, f, holder); err != nil {
				return err
			}
		}
	}
	return b.Put(key, encodeTrack(mode, files))
}

// trackRemove uncounts an entry just removed from target t in the record
// of its source package and version (if there is one), and tidies the
// record as its mode says: "all" deletes a record whose counts are all
// 0, "minimal" drops the files whose count is 0, "keep" keeps all. It
// returns the pool files that lost their last reference.
func trackRemove(tx *bolt.Tx, t Target, name, version string, value []byte) ([]string, error) {
	b := bucket(tx, bTracking)
	if b == nil {
		return nil, nil
	}
	_, stanza := splitPkgValue(value)
	src, srcVersion := entrySource(Entry{Target: t, Package: name, Version: version, Stanza: stanza})
	key := trackKey(t.Codename, src, srcVersion)
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	mode, files := decodeTrack(v)
	for _, f := range entryFiles(value) {
		for i := range files {
			if files[i].File == f && files[i].Count > 0 {
				files[i].Count--
				break
			}
		}
	}
	holder := trackHolder(t.Codename, src, srcVersion)
	var keep []trackedFile
	var dropped []string
	all0 := true
	for _, f := range files {
		all0 = all0 && f.Count == 0
		if mode == "minimal" && f.Count == 0 {
			dropped = append(dropped, f.File)
			continue
		}
		keep = append(keep, f)
	}
	if mode == "all" && all0 {
		keep, dropped = nil, nil
		for _, f := range files {
			dropped = append(dropped, f.File)
		}
	}
	var gone []string
	for _, f := range dropped {
		last, err := dropRefOf(tx, f, holder)
		if err != nil {
			return nil, err
		}
		if last {
			gone = append(gone, f)
		}
	}
	if len(keep) == 0 && mode != "keep" {
		return gone, b.Delete(key)
	}
	return gone, b.Put(key, encodeTrack(mode, keep))
}

// DumpTracks returns the tracking records of the named distributions (all
// when none is named), in distribution order, each distribution's by
// source name and then version as bytes (as "reprepro dumptracks" orders
// them).
func (r *Repo) DumpTracks(ctx context.Context, codenames ...string) ([]TrackRecord, error) {
	dists, err := r.pick(codenames)
	if err != nil {
		return nil, err
	}
	var out []TrackRecord
	err = r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		b := tx.Bucket([]byte(bTracking))
		if b == nil {
			return nil
		}
		for _, d := range dists {
			prefix := []byte(d.Codename + "\x00")
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				parts := strings.SplitN(string(k), "\x00", 3)
				if len(parts) != 3 {
					return fmt.Errorf("%w: tracking record %q", ErrState, k)
				}
				rec := TrackRecord{Codename: parts[0], Source: parts[1], Version: parts[2]}
				_, files := decodeTrack(v)
				for _, f := range files {
					rec.Files = append(rec.Files, TrackedFile{f.File, string(f.Type), f.Count})
				}
				out = append(out, rec)
			}
		}
		return nil
	})
	return out, err
}

// dropTracking deletes every tracking record of a distribution (one that
// left conf/distributions: clearvanished) and returns the pool files that
// lost their last reference with them.
func dropTracking(tx *bolt.Tx, codename string) ([]string, error) {
	b := bucket(tx, bTracking)
	if b == nil {
		return nil, nil
	}
	var keys [][]byte
	prefix := []byte(codename + "\x00")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	var gone []string
	for _, k := range keys {
		parts := strings.SplitN(string(k), "\x00", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: tracking record %q", ErrState, k)
		}
		_, files := decodeTrack(b.Get(k))
		for _, f := range files {
			last, err := dropRefOf(tx, f.File, trackHolder(parts[0], parts[1], parts[2]))
			if err != nil {
				return nil, err
			}
			if last {
				gone = append(gone, f.File)
			}
		}
		if err := b.Delete(k); err != nil {
			return nil, err
		}
	}
	return gone, nil
}
