package repo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// The plan of a target sync: what the target should hold (from the
// state database and the local Release files) and what it holds by its
// upload record.

// mirrorObject is a file of the published tree as a target should hold it.
type mirrorObject struct {
	name   string
	size   int64
	sha256 string // "" for by-hash files: their name fixes their content
	md5    string // "" when unknown
	stage  int
	data   []byte // the content, for the small Release files
	// copyFrom names an object of an earlier stage with the same content:
	// a server-side copy spares uploading it again.
	copyFrom string
	// suite: a copy of a codename's file under its suite's name (the
	// local tree has the symbolic link dists/SUITE → CODENAME); written
	// after the codename's files of the same stage.
	suite bool
}

// localPath returns the file of name in a local storage.DirStorage, "" when the
// repository publishes elsewhere.
func (r *Repo) localPath(name string) string {
	ds, ok := r.storage.(*storage.DirStorage)
	if !ok {
		return ""
	}
	p, err := ds.Path(name)
	if err != nil {
		return ""
	}
	return p
}

// readLocal returns the content of a published file; a missing file
// gives an error matching fs.ErrNotExist.
func (r *Repo) readLocal(ctx context.Context, name string) ([]byte, error) {
	if p := r.localPath(name); p != "" {
		return os.ReadFile(p)
	}
	rc, err := r.storage.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// localSize returns the size of a published file, -1 when it is missing.
func (r *Repo) localSize(ctx context.Context, name string) (int64, error) {
	if p := r.localPath(name); p != "" {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return -1, nil
		}
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	data, err := r.readLocal(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	return int64(len(data)), err
}

// targetPlan is what a target should hold (want) and what its upload
// record says it holds (have), read in one transaction of view, with
// the local Release files and the suites' copies.
func (r *Repo) targetPlan(ctx context.Context, view func(func(*bolt.Tx) error) error, t *storage.PublishTarget) (want map[string]mirrorObject, have map[string]uploadRecord, behind bool, err error) {
	err = view(func(tx *bolt.Tx) error {
		var err error
		want, err = r.desiredObjects(ctx, tx, t)
		have, behind = readRecord(tx, t)
		return err
	})
	if err != nil {
		return nil, nil, false, err
	}
	if err := r.addReleaseFiles(ctx, t, want); err != nil {
		return nil, nil, false, err
	}
	r.addSuiteCopies(t, want)
	return want, have, behind, nil
}

// desiredObjects lists what target t should hold, from the state
// database (tx) and the local Release files.
func (r *Repo) desiredObjects(ctx context.Context, tx *bolt.Tx, t *storage.PublishTarget) (map[string]mirrorObject, error) {
	out := map[string]mirrorObject{}
	if tx == nil {
		return out, nil
	}
	var dists []*Distribution
	covered := map[string]bool{}
	for _, d := range r.Conf.Distributions {
		if t.Covers(d.Codename) {
			dists = append(dists, d)
			covered[d.Codename] = true
		}
	}
	if err := desiredPool(tx, t, covered, out); err != nil {
		return nil, err
	}
	twins, err := desiredIndices(tx, dists, out)
	if err != nil {
		return nil, err
	}
	if err := r.desiredByHash(ctx, tx, covered, out); err != nil {
		return nil, err
	}
	copyTwins(out, twins)
	return out, nil
}

// desiredPool adds the pool files the covered distributions use, with
// the checksums recorded at inclusion.
func desiredPool(tx *bolt.Tx, t *storage.PublishTarget, covered map[string]bool, out map[string]mirrorObject) error {
	refs := bucket(tx, bRefs)
	return bucket(tx, bFiles).ForEach(func(k, v []byte) error {
		if len(t.Config.Codenames) > 0 {
			used := false
			prefix := append(append([]byte{}, k...), 0)
			c := refs.Cursor()
			for rk, _ := c.Seek(prefix); rk != nil && bytes.HasPrefix(rk, prefix); rk, _ = c.Next() {
				holder := strings.TrimPrefix(strings.TrimPrefix(string(rk[len(prefix):]), "d|"), "u|")
				codename, _, _ := strings.Cut(holder, "|")
				if covered[codename] {
					used = true
					break
				}
			}
			if !used {
				return nil
			}
		}
		c, err := decodeChecksums(v)
		if err != nil {
			return fmt.Errorf("pool file %s: %w", k, err)
		}
		out[string(k)] = mirrorObject{name: string(k), size: c.Size, sha256: c.SHA256, md5: c.MD5, stage: stagePool}
		return nil
	})
}

// byHashTwin is an index's SHA512 by-hash name and checksums, keyed by
// its SHA256 by-hash name: the one is a server-side copy of the other.
type byHashTwin struct {
	sha512 string
	c      Checksums
}

// desiredIndices adds the index files of dists as last published; an
// index whose by-hash file is recorded is copied from it on the target.
func desiredIndices(tx *bolt.Tx, dists []*Distribution, out map[string]mirrorObject) (map[string]byHashTwin, error) {
	exp := bucket(tx, bExported)
	twins := map[string]byHashTwin{} // by-hash SHA256 name → its index's checksums
	for _, d := range dists {
		for _, tg := range d.Targets() {
			for _, n := range indexNames(d, tg) {
				if !n.written {
					continue
				}
				v := exp.Get([]byte(d.Codename + "/" + n.rel))
				if v == nil {
					continue
				}
				c, err := decodeChecksums(v)
				if err != nil {
					return nil, err
				}
				name := "dists/" + d.Codename + "/" + n.rel
				o := mirrorObject{name: name, size: c.Size, sha256: c.SHA256, md5: c.MD5, stage: stageIndex}
				if f := (indexFile{rel: n.rel, sums: c}); !strings.HasSuffix(n.rel, "/Release") {
					sha256Name, sha512Name := byHashNames(d.Codename, f)
					if bucket(tx, bByHash).Get([]byte(sha256Name)) != nil {
						o.copyFrom = sha256Name
						twins[sha256Name] = byHashTwin{sha512Name, c}
					}
				}
				out[name] = o
			}
		}
	}
	return twins, nil
}

// desiredByHash adds the by-hash files of the covered distributions,
// current and within their grace period, that exist locally (an
// interrupted export may have recorded some it never wrote).
func (r *Repo) desiredByHash(ctx context.Context, tx *bolt.Tx, covered map[string]bool, out map[string]mirrorObject) error {
	var byHash []string
	err := bucket(tx, bByHash).ForEach(func(k, v []byte) error {
		parts := strings.SplitN(string(k), "/", 3)
		if len(parts) == 3 && covered[parts[1]] {
			byHash = append(byHash, string(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range byHash {
		size, err := r.localSize(ctx, name)
		if err != nil {
			return err
		}
		if size >= 0 {
			out[name] = mirrorObject{name: name, size: size, stage: stageByHash}
		}
	}
	return nil
}

// copyTwins makes each SHA512 by-hash file a copy of its SHA256 twin,
// and uploads instead the indices whose copy source is not there.
func copyTwins(out map[string]mirrorObject, twins map[string]byHashTwin) {
	for src, tw := range twins {
		if _, ok := out[src]; !ok {
			for name, o := range out { // the source is gone: upload instead
				if o.copyFrom == src {
					o.copyFrom = ""
					out[name] = o
				}
			}
			continue
		}
		if o, ok := out[tw.sha512]; ok {
			o.copyFrom, o.stage = src, stageByHashCopy
			o.sha256, o.md5 = tw.c.SHA256, tw.c.MD5
			out[tw.sha512] = o
		}
	}
}

// addReleaseFiles adds the Release files of the distributions t covers,
// read from the local tree.
func (r *Repo) addReleaseFiles(ctx context.Context, t *storage.PublishTarget, want map[string]mirrorObject) error {
	for _, d := range r.Conf.Distributions {
		if !t.Covers(d.Codename) {
			continue
		}
		for _, n := range []string{"Release", "Release.gpg", "InRelease"} {
			name := "dists/" + d.Codename + "/" + n
			data, err := r.readLocal(ctx, name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			sha, m := sumsOf(data)
			stage := stageRelease
			if n == "InRelease" {
				stage = stageInRelease
			}
			want[name] = mirrorObject{name: name, size: int64(len(data)), sha256: sha, md5: m, stage: stage, data: data}
		}
	}
	return nil
}

// addSuiteCopies adds, for every distribution whose suite is a symbolic
// link to its codename in the local tree (createsymlinks), the files of
// dists/CODENAME/ again under dists/SUITE/: object storage has no links,
// and devices keep their "stable" sources lines.
func (r *Repo) addSuiteCopies(t *storage.PublishTarget, want map[string]mirrorObject) {
	for _, d := range r.Conf.Distributions {
		if !t.Covers(d.Codename) || d.Suite == "" || d.Suite == d.Codename || strings.Contains(d.Suite, "/") {
			continue
		}
		link := r.localPath("dists/" + d.Suite)
		if link == "" {
			continue
		}
		if dest, err := os.Readlink(link); err != nil || strings.TrimSuffix(dest, "/") != d.Codename {
			continue
		}
		prefix := "dists/" + d.Codename + "/"
		var twins []mirrorObject
		for name, o := range want {
			if strings.HasPrefix(name, prefix) && !o.suite {
				o.name = "dists/" + d.Suite + "/" + name[len(prefix):]
				o.copyFrom, o.suite = name, true
				twins = append(twins, o)
			}
		}
		for _, o := range twins {
			want[o.name] = o
		}
	}
}

func sumsOf(data []byte) (sha, m string) {
	s := sha256.Sum256(data)
	h := md5.Sum(data)
	return hex.EncodeToString(s[:]), hex.EncodeToString(h[:])
}
