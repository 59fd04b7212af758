package repo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// SetProgress sets Options.Progress after Open.
func (r *Repo) SetProgress(fn func(done, total int)) { r.opts.Progress = fn }

// Check verifies the named distributions (all when none is named), as
// "reprepro check" and more: every package's pool file is registered,
// referenced and present; every index the published Release lists can be
// fetched by hash; a signed distribution has its InRelease; the published
// Release has not expired (Valid-Until). It returns the problems found,
// and an error wrapping ErrCheck when there are any. Checking all
// distributions also warns (Options.Warn) about pool files of
// interrupted commands.
func (r *Repo) Check(ctx context.Context, codenames ...string) ([]string, error) {
	dists, err := r.pick(codenames)
	if err != nil {
		return nil, err
	}
	var problems []string
	need := map[string]bool{}
	used := map[string]bool{} // distributions holding packages
	err = r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		refs := bucket(tx, bRefs)
		for _, d := range dists {
			for _, t := range d.Targets() {
				es, err := listTarget(tx, t, nil, nil)
				if err != nil {
					return err
				}
				for _, e := range es {
					for _, file := range e.Files() {
						if _, ok, err := fileSums(tx, file); err != nil || !ok {
							problems = append(problems, fmt.Sprintf("%s: %s %s: pool file %s is not registered", t, e.Package, e.Version, file))
						}
						if refs.Get(refKey(file, t)) == nil {
							problems = append(problems, fmt.Sprintf("%s: %s %s: no reference to %s", t, e.Package, e.Version, file))
						}
						need[file] = true
					}
					if f := stanzaField(e.Stanza, "Filename"); f != e.File && !t.IsSource() {
						problems = append(problems, fmt.Sprintf("%s: %s %s: Filename %q differs from %s", t, e.Package, e.Version, f, e.File))
					}
					used[d.Codename] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var files []string
	for f := range need {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		if ok, err := r.storage.Exists(ctx, f); err != nil || !ok {
			problems = append(problems, fmt.Sprintf("%s: missing from the pool", f))
		}
	}
	for _, d := range dists {
		problems = append(problems, r.checkPublished(ctx, d, used[d.Codename])...)
	}
	if len(codenames) == 0 {
		r.warnOrphans(ctx)
	}
	if len(problems) > 0 {
		return problems, fmt.Errorf("%w: %d problem(s)", ErrCheck, len(problems))
	}
	return nil, nil
}

// checkPublished checks that a client can fetch what dists/<codename>/Release
// lists: by hash, as apt does with Acquire-By-Hash.
// A distribution without packages need not be published yet.
func (r *Repo) checkPublished(ctx context.Context, d *Distribution, used bool) []string {
	base := "dists/" + d.Codename + "/"
	rc, err := r.storage.Open(ctx, base+"Release")
	if err != nil {
		if !used {
			return nil
		}
		return []string{fmt.Sprintf("%sRelease: not published (run lampi-pkg repo export %s)", base, d.Codename)}
	}
	defer rc.Close()
	var problems []string
	switch rel, err := r.publishedRelease(ctx, d); {
	case err != nil:
		problems = append(problems, err.Error())
	case !rel.validUntil.IsZero() && !r.opts.Now().Before(rel.validUntil):
		problems = append(problems, fmt.Sprintf("%sRelease: expired (Valid-Until %s), apt refuses it; re-sign it with lampi-pkg repo export --renew (lampi-pkg serve does it on its own)",
			base, releaseDate(rel.validUntil)))
	}
	if d.SignWith != "" {
		for _, n := range []string{"InRelease", "Release.gpg"} {
			if ok, _ := r.storage.Exists(ctx, base+n); !ok {
				problems = append(problems, fmt.Sprintf("%s%s: missing although SignWith is set", base, n))
			}
		}
	}
	sc := bufio.NewScanner(rc)
	inSHA256 := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			inSHA256 = line == "SHA256:"
			continue
		}
		f := strings.Fields(line)
		if !inSHA256 || len(f) != 3 || !isIndexName(f[2], d.DebIndices) {
			continue
		}
		bh := base + pathDir(f[2]) + "/by-hash/SHA256/" + f[0]
		if ok, _ := r.storage.Exists(ctx, bh); !ok {
			problems = append(problems, fmt.Sprintf("%s: listed in %sRelease but missing", bh, base))
		}
	}
	return problems
}

func pathDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// isIndexName tells the Release entries that are written with by-hash
// copies.
func isIndexName(rel string, ix Indices) bool {
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	return base == ix.Name+".gz" && ix.Gzip || base == ix.Name+".xz" && ix.XZ || base == ix.Name && ix.Uncompressed
}

// CheckPool verifies every pool file the state database knows: present,
// and (unless fast) with the recorded size and checksums, as "reprepro
// checkpool [fast]". It returns the problems found, and an error wrapping
// ErrCheck when there are any. Pool files of interrupted commands (which
// the database does not know) are warned about through Options.Warn: they
// are not damage.
func (r *Repo) CheckPool(ctx context.Context, fast bool) ([]string, error) {
	type rec struct {
		name string
		sums Checksums
	}
	var all []rec
	// Files a killed deletion removed before it could forget them are
	// not damage: the next writer forgets them.
	deleting, err := r.interruptedDeletes()
	if err != nil {
		return nil, err
	}
	err = r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		u := bucket(tx, bUnreferenced)
		return bucket(tx, bFiles).ForEach(func(k, v []byte) error {
			c, err := decodeChecksums(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if deleting[string(k)] && u.Get(k) != nil {
				if ok, err := r.storage.Exists(ctx, string(k)); err == nil && !ok {
					return nil
				}
			}
			all = append(all, rec{string(k), c})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	problems := make([]string, len(all))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range all {
		g.Go(func() error {
			problems[i] = r.checkPoolFile(ctx, all[i].name, all[i].sums, fast)
			return nil
		})
	}
	g.Wait()
	var out []string
	for _, p := range problems {
		if p != "" {
			out = append(out, p)
		}
	}
	r.warnOrphans(ctx)
	if len(out) > 0 {
		return out, fmt.Errorf("%w: %d of %d pool files", ErrCheck, len(out), len(all))
	}
	return nil, nil
}

func (r *Repo) checkPoolFile(ctx context.Context, name string, want Checksums, fast bool) string {
	if fast {
		if ok, _ := r.storage.Exists(ctx, name); !ok {
			return name + ": missing"
		}
		return ""
	}
	rc, err := r.storage.Open(ctx, name)
	if err != nil {
		return fmt.Sprintf("%s: %v", name, err)
	}
	defer rc.Close()
	h := newHasher()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Sprintf("%s: %v", name, err)
	}
	got := h.sums()
	switch {
	case got.Size != want.Size:
		return fmt.Sprintf("%s: size %d, recorded %d", name, got.Size, want.Size)
	case got != want:
		return fmt.Sprintf("%s: checksum mismatch (SHA256 %s, recorded %s)", name, got.SHA256, want.SHA256)
	}
	return ""
}

// DumpUnreferenced lists the pool files nothing needs any more, sorted:
// those the database knows that lost their last reference (as "reprepro
// dumpunreferenced"), and those interrupted commands wrote but never
// recorded, which no published index names (see orphans.go). Files a
// running writer is writing are not listed.
func (r *Repo) DumpUnreferenced(ctx context.Context) ([]string, error) {
	out, err := r.knownUnreferenced()
	if err != nil {
		return nil, err
	}
	orphans, err := r.orphans(ctx, nil, r.publishedOnce())
	if err != nil {
		return nil, err
	}
	out = append(out, orphans...)
	sort.Strings(out)
	return out, nil
}

// knownUnreferenced lists the pool files the database knows that nothing
// references.
func (r *Repo) knownUnreferenced() ([]string, error) {
	var out []string
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		return bucket(tx, bUnreferenced).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// DeleteUnreferenced deletes what DumpUnreferenced lists: the known pool
// files nothing needs any more (and forgets them), and the files of
// interrupted commands. A file that an index published under dists/
// still names is kept, with a warning: after changes made with
// ExportNever the published indices may name files the database no
// longer needs; they can go once the distribution is exported.
func (r *Repo) DeleteUnreferenced(ctx context.Context) (*Result, error) {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	var names []string
	err = w.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bUnreferenced).ForEach(func(k, _ []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	published := r.publishedOnce()
	if len(names) > 0 {
		named, err := published(ctx)
		if err != nil {
			return nil, fmt.Errorf("deleteunreferenced: %w", err)
		}
		var del, kept []string
		for _, n := range names {
			if named[n] {
				kept = append(kept, n)
			} else {
				del = append(del, n)
			}
		}
		if len(kept) > 0 {
			r.opts.Warn(fmt.Sprintf("kept %d pool file(s) that nothing in the database needs but a published index still names: %s; publish first (lampi-pkg repo export), then delete them",
				len(kept), briefList(kept)))
		}
		names = del
	}
	res := &Result{}
	if res.Deleted, err = r.deleteFiles(ctx, w.db, names); err != nil {
		return res, err
	}
	orphans, err := r.orphans(ctx, w.db, published)
	if err != nil {
		return res, fmt.Errorf("deleteunreferenced: %w", err)
	}
	gone, err := r.removeOrphans(ctx, orphans, published)
	res.Deleted = append(res.Deleted, gone...)
	sort.Strings(res.Deleted)
	if err != nil {
		return res, fmt.Errorf("deleteunreferenced: %w", err)
	}
	if ds, ok := r.storage.(*storage.DirStorage); ok {
		ds.RemoveTemp("pool") // interrupted copies into the pool
	}
	return res, nil
}
