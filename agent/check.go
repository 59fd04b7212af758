package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxInRelease bounds an InRelease file.
const maxInRelease = 16 << 20

// checkSource fetches InRelease conditionally (a 304 re-uses the stored
// copy), verifies it before reading anything in it, refuses replays, and
// records the accepted Date and validators.
func (a *Agent) checkSource(ctx context.Context, i int) (*Release, bool, error) {
	src, kr := a.sources[i], a.keyrings[i]
	now := a.opts.Now()
	ss := a.cyc.Sources[src.Key()]
	if ss == nil {
		ss = &SourceState{}
	}
	url := src.URI + "/dists/" + src.Suite + "/InRelease"
	limit := int64(maxInRelease)
	if a.cfg.MaxIndexSize < limit {
		limit = a.cfg.MaxIndexSize
	}
	cond := ss.Cond
	stored := filepath.Join(a.cfg.StateDir, "InRelease-"+ss.InRelease)
	if ss.InRelease == "" {
		cond = conditional{}
	} else if _, err := os.Stat(stored); err != nil {
		cond = conditional{}
	}
	body, next, notModified, err := a.f.getConditional(ctx, url, limit, cond)
	if isNotFound(err) {
		// No InRelease: Release + Release.gpg, as apt falls back.
		base := src.URI + "/dists/" + src.Suite + "/Release"
		var sig []byte
		if body, err = a.f.get(ctx, base, limit); err == nil {
			sig, err = a.f.get(ctx, base+".gpg", 1<<20)
		}
		if err != nil {
			return nil, false, fmt.Errorf("source %s: no InRelease, and %w", src, err)
		}
		rel, err := VerifyDetachedRelease(ctx, kr, body, sig, src.Suite, now, a.cfg.MaxFuture)
		if err != nil {
			return nil, false, fmt.Errorf("source %s: %w", src, err)
		}
		return a.acceptRelease(src, ss, rel, nil, conditional{}, false, true)
	}
	if err != nil {
		return nil, false, fmt.Errorf("source %s: %w", src, err)
	}
	if notModified {
		if body, err = os.ReadFile(stored); err != nil {
			return nil, false, fmt.Errorf("source %s: stored InRelease: %w", src, err)
		}
	}
	rel, err := VerifyRelease(ctx, kr, body, src.Suite, now, a.cfg.MaxFuture)
	if err != nil {
		return nil, false, fmt.Errorf("source %s: %w", src, err)
	}
	return a.acceptRelease(src, ss, rel, body, next, notModified, false)
}

// acceptRelease refuses a Release older than the last accepted one, then
// records its Date, validators and (for InRelease) a copy for 304 answers.
func (a *Agent) acceptRelease(src Source, ss *SourceState, rel *Release, body []byte, next conditional, notModified, detached bool) (*Release, bool, error) {
	stored := filepath.Join(a.cfg.StateDir, "InRelease-"+ss.InRelease)
	if rel.Date.Before(ss.ReleaseDate) {
		return nil, false, fmt.Errorf("source %s: %w: Date %s is older than the last accepted %s (replayed or stale mirror)",
			src, ErrReplay, rel.Date.UTC().Format("2006-01-02 15:04:05Z"), ss.ReleaseDate.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if detached {
		if ss.InRelease != "" {
			os.Remove(stored)
		}
		ss.InRelease, ss.Cond = "", conditional{}
	} else if !notModified {
		sum := sha256Hex(body)
		if sum != ss.InRelease {
			if err := writeFileAtomic(filepath.Join(a.cfg.StateDir, "InRelease-"+sum), body, 0o644); err != nil {
				return nil, false, fmt.Errorf("state: %w", err)
			}
			if ss.InRelease != "" {
				os.Remove(stored)
			}
		}
		ss.InRelease, ss.Cond = sum, next
	}
	if rel.Date.After(ss.ReleaseDate) {
		ss.ReleaseDate = rel.Date
	}
	a.cyc.Sources[src.Key()] = ss
	return rel, notModified, nil
}

// fetchIndex returns the candidates of COMP/binary-ARCH/Packages, fetched
// by hash when the Release offers it, verified against the Release's size
// and SHA256 before it is decompressed or parsed.
func (a *Agent) fetchIndex(ctx context.Context, src Source, rel *Release, comp, arch string) ([]Candidate, string, error) {
	base := comp + "/binary-" + arch + "/Packages"
	var ext string
	var sum FileSum
	found := false
	for _, e := range []string{".xz", ".gz", ""} {
		if s, ok := rel.Files[base+e]; ok {
			ext, sum, found = e, s, true
			break
		}
	}
	if !found {
		return nil, "", fmt.Errorf("%w: the Release lists no %s (is architecture %s published?)", ErrIndex, base, arch)
	}
	if sum.Size > a.cfg.MaxIndexSize {
		return nil, "", fmt.Errorf("%w: %s is %d bytes, more than max_index_size %d", ErrTooLarge, base+ext, sum.Size, a.cfg.MaxIndexSize)
	}
	cache := filepath.Join(a.cfg.CacheDir, "indices", sum.SHA256)
	data, err := os.ReadFile(cache)
	if err != nil || int64(len(data)) != sum.Size || sha256Hex(data) != sum.SHA256 {
		dir := src.URI + "/dists/" + src.Suite + "/" + comp + "/binary-" + arch + "/"
		byHash := src.ByHash == "force" || (rel.ByHash && src.ByHash != "no")
		named := dir + "Packages" + ext
		url := named
		if byHash {
			url = dir + "by-hash/SHA256/" + sum.SHA256
		}
		data, err = a.f.get(ctx, url, sum.Size)
		if err != nil && byHash && src.ByHash != "force" && isNotFound(err) {
			url = named
			data, err = a.f.get(ctx, url, sum.Size)
		}
		if err != nil {
			return nil, "", err
		}
		if int64(len(data)) != sum.Size || sha256Hex(data) != sum.SHA256 {
			return nil, "", fmt.Errorf("%w: %s: got %d bytes with SHA256 %s, the signed Release says %d bytes, %s",
				ErrHashMismatch, url, len(data), sha256Hex(data), sum.Size, sum.SHA256)
		}
		if err := writeFileAtomic(cache, data, 0o644); err != nil {
			return nil, "", fmt.Errorf("cache: %w", err)
		}
	}
	plain, err := decompress(data, ext, a.cfg.MaxIndexSize)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", base+ext, err)
	}
	if ext != "" {
		if s, ok := rel.Files[base]; ok && (int64(len(plain)) != s.Size || sha256Hex(plain) != s.SHA256) {
			return nil, "", fmt.Errorf("%w: %s decompressed differs from the signed Release's %s entry", ErrHashMismatch, base+ext, base)
		}
	}
	cands, err := ParsePackages(plain, src.URI+"/dists/"+src.Suite+"/"+base, src.URI)
	if err != nil {
		return nil, "", err
	}
	return cands, cache, nil
}

// pruneIndices removes cached indices no current Release refers to.
func (a *Agent) pruneIndices(keep []string) {
	dir := filepath.Join(a.cfg.CacheDir, "indices")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	k := map[string]bool{}
	for _, f := range keep {
		k[filepath.Base(f)] = true
	}
	for _, e := range ents {
		if !k[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
