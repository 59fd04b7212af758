package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// update is one planned package change.
type update struct {
	cand Candidate
	from string // installed version ("" for a new install)
	prev string // cached .deb of the installed version ("" when none)
	deb  string // verified .deb of the new version
}

// maxPlainDeferrals is how many Retry-After answers in a row (without a
// successful check between them) the agent honours when they come over
// plain HTTP, where anyone on the path can send them: after that it
// ignores them and backs off as after any failed check, until a check
// succeeds again. Answers over TLS are always honoured (capped at 24 h).
const maxPlainDeferrals = 3

// Once does one cycle: repair an interrupted dpkg, check every source,
// install what is newer (unless phased out, outside the maintenance
// window, held back after a rollback or waiting for the backoff of a
// failed attempt), run the health check and roll back on failure. The
// cycle's requests are bounded together by fetch_timeout and each by
// fetch_idle_timeout. The outcome is also persisted (Status reads it).
func (a *Agent) Once(ctx context.Context) *Outcome {
	a.cycleMu.Lock()
	defer a.cycleMu.Unlock()
	a.mu.Lock()
	cyc, err := a.st.Cycle.clone()
	a.mu.Unlock()
	if err != nil {
		return failed(fmt.Errorf("state: %w", err))
	}
	a.cyc = cyc
	defer func() { a.cyc = nil }()

	o := a.once(ctx)
	if o.attempted && ctx.Err() == nil {
		a.noteAttempt(o)
	}
	a.retryAfter(o)
	now := a.opts.Now()
	c := a.cyc
	c.LastAttempt = now
	c.Result = o.Result
	c.Error = ""
	if o.Err != nil {
		c.Error = o.Err.Error()
	}
	if o.Result == state.ResultFailed {
		c.Failures++
	} else {
		c.Failures = 0
	}
	c.RetryAfter = now.Add(o.RetryAfter)
	if o.RetryAfter == 0 {
		c.RetryAfter = now
	}
	c.Target = o.Target
	c.Pending = o.Pending
	if o.Installed != nil {
		c.Managed = o.Installed
	}
	o.Installed = c.Managed
	o.Checked = c.LastCheck
	a.mu.Lock()
	a.st.Cycle = *c
	err = a.st.save(a.cfg.StateDir)
	a.mu.Unlock()
	if err != nil && o.Err == nil {
		o.Result, o.Err = state.ResultFailed, fmt.Errorf("state: %w", err)
	}
	if o.Err != nil {
		a.opts.Logf("%s: %v", o.Result, o.Err)
	} else {
		a.opts.Logf("%s", o.Result)
	}
	return o
}

// retryAfter sets o.RetryAfter from the server's Retry-After, unless it
// came over plain HTTP maxPlainDeferrals times in a row already.
func (a *Agent) retryAfter(o *Outcome) {
	var ra *RetryAfterError
	if !errors.As(o.Err, &ra) {
		return
	}
	if !ra.TLS {
		if a.cyc.PlainDeferrals >= maxPlainDeferrals {
			o.RetryAfter = 0
			o.Err = fmt.Errorf("%w (Retry-After ignored: %d answers in a row asked to come back later over plain HTTP, which anyone on the path can send; use an https:// source)",
				o.Err, a.cyc.PlainDeferrals)
			return
		}
		a.cyc.PlainDeferrals++
	}
	o.RetryAfter = ra.After
}

func failed(err error) *Outcome {
	return &Outcome{Result: state.ResultFailed, Err: err}
}

func (a *Agent) once(ctx context.Context) *Outcome {
	inv, err := a.inventory()
	if err != nil {
		return failed(err)
	}
	repaired := false
	if len(inv.Broken) > 0 || pendingUpdates(a.cfg.AdminDir) {
		a.opts.Logf("dpkg was interrupted (%s): running dpkg --configure -a", strings.Join(inv.Broken, ", "))
		if err := a.inst.repair(ctx); err != nil {
			return failed(fmt.Errorf("repair interrupted dpkg run: %w", err))
		}
		repaired = true
		if inv, err = a.inventory(); err != nil {
			return failed(err)
		}
	}
	selfResult := a.finishSelfUpdate(inv)
	if selfResult != nil {
		a.noteAttempt(selfResult)
	}

	// Every request of the cycle together gets fetch_timeout; installs
	// and health checks run on ctx alone.
	fctx, cancel := context.WithTimeoutCause(ctx, a.cfg.FetchTimeout,
		fmt.Errorf("%w: this cycle's requests took longer than fetch_timeout %s together (a server or proxy trickling data?)", ErrStalled, a.cfg.FetchTimeout))
	defer cancel()

	// A 304 for every source, an unchanged dpkg database and nothing
	// pending last time: nothing to plan. This is the idle check.
	stamp := statusStamp(a.cfg.AdminDir)
	quick := !repaired && stamp == a.cyc.StatusStamp && a.cyc.Result == state.ResultUpToDate && selfResult == nil
	rels := make([]*Release, len(a.sources))
	allNotModified := true
	for i := range a.sources {
		rel, notModified, err := a.checkSource(fctx, i)
		if err != nil {
			return failed(err)
		}
		rels[i] = rel
		allNotModified = allNotModified && notModified
	}
	a.cyc.LastCheck = a.opts.Now()
	a.cyc.PlainDeferrals = 0
	if quick && allNotModified {
		return &Outcome{Result: state.ResultUpToDate, NotModified: true, Installed: a.cyc.Managed}
	}
	var cands []Candidate
	var indexFiles []string
	for i, src := range a.sources {
		for _, comp := range src.Components {
			c, file, err := a.fetchIndex(fctx, src, rels[i], comp, a.cfg.Architecture)
			if err != nil {
				return failed(fmt.Errorf("source %s: %w", src, err))
			}
			cands = append(cands, c...)
			indexFiles = append(indexFiles, file)
		}
	}
	a.pruneIndices(indexFiles)

	o := a.plan(ctx, fctx, inv, cands)
	o.Repaired = repaired
	if selfResult != nil && o.Result == state.ResultUpToDate {
		o.Result, o.Err, o.Target = selfResult.Result, selfResult.Err, selfResult.Target
	}
	if after, err := a.inventory(); err == nil {
		o.Installed = a.managedVersions(after, o.Installed)
		if o.Result == state.ResultUpToDate {
			a.cyc.StatusStamp = statusStamp(a.cfg.AdminDir)
		} else {
			a.cyc.StatusStamp = ""
		}
	}
	return o
}

// managedVersions returns the installed versions of the managed packages.
func (a *Agent) managedVersions(inv *Inventory, managed map[string]string) map[string]string {
	out := map[string]string{}
	for name := range managed {
		if v := inv.Version(name); v != "" {
			out[name] = v
		}
	}
	if v := inv.Version(a.cfg.SelfPackage); v != "" {
		out[a.cfg.SelfPackage] = v
	}
	return out
}

// best picks the newest usable candidate per package for the native
// architecture or "all".
func (a *Agent) best(cands []Candidate) map[string]Candidate {
	out := map[string]Candidate{}
	for _, c := range cands {
		if c.Architecture != a.cfg.Architecture && c.Architecture != "all" && c.Err == nil {
			continue
		}
		cur, ok := out[c.Package]
		if !ok {
			out[c.Package] = c
			continue
		}
		if deb.CompareLoose(c.Version, cur.Version) > 0 {
			out[c.Package] = c
		}
	}
	return out
}

// plan decides what to install and installs it: fctx bounds the
// downloads (the cycle's fetch_timeout), ctx the installs.
func (a *Agent) plan(ctx, fctx context.Context, inv *Inventory, cands []Candidate) *Outcome {
	best := a.best(cands)
	managed := map[string]string{}
	if len(a.cfg.Packages) > 0 {
		for _, p := range a.cfg.Packages {
			managed[p] = inv.Version(p)
		}
	} else {
		for name := range best {
			if v := inv.Version(name); v != "" {
				managed[name] = v
			}
		}
	}
	names := make([]string, 0, len(managed))
	for n := range managed {
		names = append(names, n)
	}
	sort.Strings(names)
	now := a.opts.Now()
	var ups []*update
	var held, waiting []*FailedUpdate
	pending := map[string]string{}
	seen := map[string]state.Candidate{}
	defer func() { a.cyc.Candidates = seen }()
	for _, name := range names {
		from := managed[name]
		c, ok := best[name]
		if !ok {
			if from == "" {
				a.opts.Logf("managed package %s is neither installed nor published", name)
			}
			continue
		}
		if from != "" {
			cmp, err := deb.CompareVersions(c.Version, from)
			if err != nil || cmp <= 0 {
				// up to date, or the repository holds an older version:
				// never downgrade on our own.
				if cmp == 0 && c.Err == nil {
					a.keepForRollback(fctx, c)
				}
				continue
			}
		}
		// New installs are not phased (apt phases upgrades only); a
		// device in a group the rollout names is eligible whatever its
		// draw.
		phasedOut := from != "" && PhasedOut(c, a.machineID) && !state.InGroups(a.cfg.Groups, c.Groups)
		a.noteCandidate(seen, c, !phasedOut)
		if c.Err != nil {
			return &Outcome{Result: state.ResultFailed, Err: fmt.Errorf("refusing %s %s: %w", c.Package, c.Version, c.Err), Installed: managed,
				Target: map[string]string{c.Package: c.Version}}
		}
		if h, w := a.failedGate(c, now); h != nil {
			a.opts.Logf("%s %s rolled back before: held back", c.Package, c.Version)
			held = append(held, h)
			continue
		} else if w != nil {
			a.opts.Logf("%s %s failed before: next attempt after %s", c.Package, c.Version, w.NotBefore.Format(time.RFC3339))
			waiting = append(waiting, w)
			pending[c.Package] = c.Version
			continue
		}
		if phasedOut {
			a.opts.Logf("%s %s is phased (%d%%) and this device is not in the cohort yet", c.Package, c.Version, c.Phased)
			pending[c.Package] = c.Version
			continue
		}
		ups = append(ups, &update{cand: c, from: from})
	}
	if len(ups) == 0 {
		o := &Outcome{Result: state.ResultUpToDate, Installed: managed}
		if len(pending) > 0 {
			o.Result, o.Pending = state.ResultDeferred, pending
		}
		if len(waiting) > 0 {
			o.Err = waitingError(waiting)
			for _, w := range waiting {
				if o.NextAttempt.IsZero() || w.NotBefore.Before(o.NextAttempt) {
					o.NextAttempt = w.NotBefore
				}
			}
		}
		if len(held) > 0 {
			o.Result, o.Err, o.Target = state.ResultHeldBack, heldBackError(held), map[string]string{}
			for _, h := range held {
				o.Target[h.Package] = h.Version
			}
		}
		return o
	}
	target := map[string]string{}
	for _, u := range ups {
		target[u.cand.Package] = u.cand.Version
		pending[u.cand.Package] = u.cand.Version
	}
	if !a.cfg.Window.Open(now) {
		return &Outcome{Result: state.ResultDeferred, Pending: pending, Installed: managed,
			Err: fmt.Errorf("outside the maintenance window %s; next opening %s", a.cfg.Window, a.cfg.Window.Next(now).Format("2006-01-02 15:04"))}
	}
	// Download and verify everything before touching dpkg.
	for _, u := range ups {
		p, err := a.fetchDeb(fctx, u.cand)
		if err != nil {
			return &Outcome{Result: state.ResultFailed, Err: err, Target: target, Installed: managed, attempted: true, undelivered: true}
		}
		u.deb = p
		if u.from != "" {
			u.prev = a.cachedDeb(u.cand.Package, u.from)
		}
	}
	var self *update
	var normal []*update
	for _, u := range ups {
		if u.cand.Package == a.cfg.SelfPackage {
			self = u
		} else {
			normal = append(normal, u)
		}
	}
	// A dpkg lock held by someone else is no failure of the update:
	// nothing was touched, and the next cycle finds the .deb cached.
	o := &Outcome{Result: state.ResultUpdated, Target: target, Installed: managed, attempted: true}
	if len(normal) > 0 {
		if res, err := a.apply(ctx, normal); err != nil {
			o.Result, o.Err, o.attempted = res, err, !errors.Is(err, ErrLocked)
			return o
		}
	}
	if self != nil {
		su, err := a.startSelfUpdate(ctx, self)
		if err != nil {
			o.Result, o.Err, o.attempted = state.ResultFailed, err, !errors.Is(err, ErrLocked)
			return o
		}
		o.SelfUpdate = su
		if len(normal) == 0 {
			// its result is the next agent's to report
			o.Result, o.attempted = state.ResultDeferred, false
			o.Pending = map[string]string{self.cand.Package: self.cand.Version}
		}
	}
	a.pruneDebs()
	return o
}

// apply installs the updates, runs the health check, and rolls back on
// failure. It returns the failure result with its error.
func (a *Agent) apply(ctx context.Context, ups []*update) (string, error) {
	var debs []string
	for _, u := range ups {
		debs = append(debs, u.deb)
	}
	err := a.inst.install(ctx, debs, false)
	if errors.Is(err, ErrLocked) {
		return state.ResultFailed, err // nothing was touched
	}
	if err == nil {
		err = a.inst.healthCheck(ctx)
	}
	if err == nil {
		return state.ResultUpdated, nil
	}
	a.opts.Logf("update failed, rolling back: %v", err)
	var prev []string
	var missing []string
	for _, u := range ups {
		switch {
		case u.prev != "":
			prev = append(prev, u.prev)
		case u.from != "":
			missing = append(missing, u.cand.Package+" "+u.from)
		}
	}
	if len(missing) > 0 {
		return state.ResultFailed, fmt.Errorf("%w; %w: %s not in the cache", err, ErrNoRollback, strings.Join(missing, ", "))
	}
	if len(prev) == 0 {
		return state.ResultFailed, err
	}
	// Finish whatever dpkg left half-done, then reinstall the old versions.
	if inv, ierr := a.inventory(); ierr == nil && len(inv.Broken) > 0 {
		a.inst.repair(ctx)
	}
	if rerr := a.inst.install(ctx, prev, true); rerr != nil {
		return state.ResultFailed, fmt.Errorf("%w; rollback failed too: %w", err, rerr)
	}
	if herr := a.inst.healthCheck(ctx); herr != nil {
		return state.ResultFailed, fmt.Errorf("%w; after the rollback the health check still fails: %w", err, herr)
	}
	return state.ResultRolledBack, err
}

// debName is the cache file name of a package version (apt's escaping of
// the epoch colon).
func debName(pkg, version, arch string) string {
	return pkg + "_" + strings.ReplaceAll(version, ":", "%3a") + "_" + arch + ".deb"
}

// fetchDeb downloads a candidate into the cache (resuming a partial
// download), verifies size and SHA256 (and the origin signature when
// configured) and returns its path.
func (a *Agent) fetchDeb(ctx context.Context, c Candidate) (string, error) {
	name := debName(c.Package, c.Version, c.Architecture)
	final := filepath.Join(a.cfg.CacheDir, name)
	if ok, _ := fileMatches(final, c.Size, c.SHA256); ok {
		return final, a.verifyOrigin(ctx, final)
	}
	if c.Size > a.cfg.MaxDebSize {
		return "", fmt.Errorf("%w: %s %s is %d bytes, more than max_deb_size %d", ErrTooLarge, c.Package, c.Version, c.Size, a.cfg.MaxDebSize)
	}
	part := filepath.Join(a.cfg.CacheDir, "partial", name+".part")
	url := c.Base + "/" + c.Filename
	if err := a.f.download(ctx, url, part, c.Size); err != nil {
		return "", fmt.Errorf("download %s %s: %w", c.Package, c.Version, err)
	}
	ok, sum := fileMatches(part, c.Size, c.SHA256)
	if !ok {
		os.Remove(part)
		return "", fmt.Errorf("%w: %s: SHA256 %s, the signed Packages index says %s; the file was discarded", ErrHashMismatch, url, sum, c.SHA256)
	}
	if err := a.verifyOrigin(ctx, part); err != nil {
		os.Remove(part)
		return "", err
	}
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	return final, nil
}

func (a *Agent) verifyOrigin(ctx context.Context, path string) error {
	if a.origin == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := signing.VerifyDeb(ctx, a.origin, f, fi.Size(), signing.VerifyOptions{Now: a.opts.Now}); err != nil {
		return fmt.Errorf("%w: %s: origin signature: %w", ErrSignature, filepath.Base(path), err)
	}
	return nil
}

// cachedDeb returns the cached .deb of an installed version ("" when the
// cache does not hold it).
func (a *Agent) cachedDeb(pkg, version string) string {
	ents, _ := filepath.Glob(filepath.Join(a.cfg.CacheDir, pkg+"_"+strings.ReplaceAll(version, ":", "%3a")+"_*.deb"))
	for _, e := range ents {
		return e
	}
	return ""
}

// keepForRollback makes sure the installed version's .deb is in the cache
// (so a later failed update can be rolled back), fetching it once.
func (a *Agent) keepForRollback(ctx context.Context, c Candidate) {
	final := filepath.Join(a.cfg.CacheDir, debName(c.Package, c.Version, c.Architecture))
	if _, err := os.Stat(final); err == nil {
		return
	}
	if _, err := a.fetchDeb(ctx, c); err != nil {
		a.opts.Logf("cannot cache %s %s for rollbacks: %v", c.Package, c.Version, err)
	}
}

// pruneDebs keeps the installed and the previous version of each package
// in the cache.
func (a *Agent) pruneDebs() {
	inv, err := a.inventory()
	if err != nil {
		return
	}
	ents, _ := filepath.Glob(filepath.Join(a.cfg.CacheDir, "*.deb"))
	byPkg := map[string][]string{}
	for _, e := range ents {
		pkg, rest, ok := strings.Cut(filepath.Base(e), "_")
		if !ok {
			continue
		}
		ver, _, _ := strings.Cut(rest, "_")
		byPkg[pkg] = append(byPkg[pkg], strings.ReplaceAll(ver, "%3a", ":"))
	}
	for pkg, vers := range byPkg {
		sort.Slice(vers, func(i, j int) bool { return deb.CompareLoose(vers[i], vers[j]) > 0 })
		cur := inv.Version(pkg)
		kept := 0
		for _, v := range vers {
			keep := v == cur || kept < 2
			if keep {
				kept++
				continue
			}
			m, _ := filepath.Glob(filepath.Join(a.cfg.CacheDir, pkg+"_"+strings.ReplaceAll(v, ":", "%3a")+"_*.deb"))
			for _, f := range m {
				os.Remove(f)
			}
		}
	}
}

// fileMatches reports whether the file has the size and SHA256; it also
// returns the SHA256 it found.
func fileMatches(path string, size int64, sum string) (bool, string) {
	f, err := os.Open(path)
	if err != nil {
		return false, ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != size {
		return false, ""
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, ""
	}
	got := hex.EncodeToString(h.Sum(nil))
	return got == sum, got
}
