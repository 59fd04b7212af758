package repo

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	bolt "go.etcd.io/bbolt"
)

// IncludeOptions refine IncludeDeb like reprepro's -C, -A, -S and -P.
type IncludeOptions struct {
	// Component to put the packages in; "" guesses it from the Section.
	Component string
	// Architectures limits where "Architecture: all" packages go (and
	// which architectures are accepted); empty means all of the
	// distribution's.
	Architectures []string
	// Section and Priority replace the packages' own (reprepro needs both
	// in every Packages stanza; a package lacking one needs these).
	Section, Priority string
	// Type is the files' package type: "" for .deb files, DDeb for debug
	// packages (.ddeb, "reprepro includeddeb"), UDeb for installer
	// packages (.udeb, "reprepro includeudeb"); they go into the lists
	// of that type of their component (DDebComponents, UDebComponents).
	Type string
}

// Change is one effect of a command on a package list.
type Change struct {
	// Action is "add", "replace" (a newer version pushed OldVersion out
	// beyond Limit), "unchanged" (the same file was there already),
	// "remove" or "phase".
	Action     string `json:"action"`
	Target     Target `json:"target"`
	Package    string `json:"package"`
	Version    string `json:"version"`
	OldVersion string `json:"old_version,omitempty"`
	// File is the pool file of Version.
	File string `json:"file,omitempty"`
	// ArchivedFrom names the package list ("buster|main|amd64") Limit
	// pushed Version out of, for a change in its distribution's Archive
	// (archive.go).
	ArchivedFrom string `json:"archived_from,omitempty"`
}

// Result reports what a modifying command did.
type Result struct {
	Changes []Change
	// Exported lists the distributions whose dists/ tree was published.
	Exported []string
	// Deleted lists pool files removed because nothing needs them.
	Deleted []string
	// NotFound lists the package arguments (NAME or NAME=VERSION, as
	// given) that remove, copy or move did not find, with
	// Options.RepreproRules (otherwise they fail the command).
	NotFound []string `json:",omitempty"`
	// Vanished lists the package lists clearvanished forgot.
	Vanished []string `json:",omitempty"`
}

// incoming is a staged package with where it goes. A big batch holds
// thousands of them until its last commit: what they keep is kept small
// (the stanza and checksums go to the spill file, the strings share
// arena blocks, the targets are shared).
type incoming struct {
	debFile
	filekey string
	// vers is the version as a string (in the arena, like filekey and
	// name): the form of keys and of Change.Version.
	vers    string
	value   []byte // pool file key "\x00" Packages stanza
	targets []Target
	// ptype is the package type ("", DDeb, UDeb): the lists it goes in.
	ptype string
	// spillAt, spillLen and sumsLen: value and sums are in the stager's
	// spill file instead (see spilled; spillLen 0: not spilled).
	spillAt  int64
	spillLen int32
	sumsLen  uint16
	// prewritten: the pool file did not exist and was written while
	// the batch was read (removed again if the command fails).
	prewritten bool
}

// IncludeDeb adds .deb files to a distribution, as "reprepro includedeb":
// the same file again changes nothing; a newer version replaces the older
// one (Limit versions are kept); an older version is refused
// (ErrOlderVersion), or with Options.RepreproRules skipped when Limit
// versions newer than it are there (Change "skip") and added otherwise;
// the same name, version and architecture with other bytes is refused. Every file is
// checked before anything changes: one bad file fails the command and
// leaves the repository untouched. The changed distribution is then
// published (unless Options.Export is ExportNever).
func (r *Repo) IncludeDeb(ctx context.Context, codename string, files []string, o IncludeOptions) (*Result, error) {
	d, err := r.Conf.Distribution(codename)
	if err != nil {
		return nil, err
	}
	if err := checkInclude(d, o); err != nil {
		return nil, err
	}
	// The lock is taken first so that packages can be written into the
	// pool while others are still being read: no other writer can touch
	// the pool meanwhile, and a failure removes what was written. The
	// database is opened only afterwards, so readers wait at most for
	// the commit.
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	staging := newStager(r)
	defer staging.remove()
	staging.spillValues = len(files) >= r.bulkMin
	debs, err := r.stageAll(ctx, files, staging, func(in *incoming) error {
		in.ptype = o.Type
		if err := in.place(d, o, staging); err != nil {
			return err
		}
		if err := r.preWrite(ctx, in, staging); err != nil {
			return err
		}
		if staging.spillValues {
			return staging.keep(in)
		}
		return nil
	})
	if err != nil {
		r.undoPool(ctx, staging, debs, nil)
		return nil, err
	}
	sortIncoming(debs)
	if err := w.openDB(); err != nil {
		r.undoPool(ctx, staging, debs, nil)
		return nil, err
	}
	res := &Result{}
	unref, err := r.includeCommit(ctx, w.db, d, debs, staging, res)
	if err != nil {
		return nil, err
	}
	r.log(d, logLines(d, res.Changes))
	return res, r.finish(ctx, w, []*Distribution{d}, unref, res)
}

// sortIncoming orders staged packages by name, then version.
func sortIncoming(debs []*incoming) {
	sort.SliceStable(debs, func(i, j int) bool {
		if debs[i].name != debs[j].name {
			return debs[i].name < debs[j].name
		}
		return debs[i].version.Compare(debs[j].version) < 0
	})
}

// checkInclude refuses an include into a read-only distribution, or with
// a component or architecture it does not list.
func checkInclude(d *Distribution, o IncludeOptions) error {
	if d.ReadOnly {
		return fmt.Errorf("includedeb %s: %w (ReadOnly in %s:%d)", d.Codename, ErrReadOnly, d.File, d.Line)
	}
	if o.Component != "" && !d.HasComponent(o.Component) {
		return fmt.Errorf("includedeb %s: %w: %q (Components: %v)", d.Codename, ErrComponent, o.Component, d.Components)
	}
	for _, a := range o.Architectures {
		if !d.HasArchitecture(a) {
			return fmt.Errorf("includedeb %s: %w: -A %q (Architectures: %v)", d.Codename, ErrArchitecture, a, d.Architectures)
		}
	}
	return nil
}

// includeCommit adds the staged packages to d and writes their pool
// files, in one transaction (or the bulk import's several), and returns
// the pool files that lost a reference. On failure it removes the pool
// files the command wrote.
func (r *Repo) includeCommit(ctx context.Context, db *bolt.DB, d *Distribution, debs []*incoming, staging *stager, res *Result) ([]string, error) {
	var unref, written, unused []string
	bulk, err := r.bulkEligible(db, debs)
	bulk = bulk && staging.before == nil && d.Tracking.Mode == ""
	if err != nil {
		r.undoPool(ctx, staging, debs, nil)
		return nil, err
	}
	if bulk {
		written, err = r.includeBatch(ctx, db, debs, staging, res)
	} else if err = staging.unspill(debs); err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			if staging.before != nil {
				gone, err := staging.before(tx)
				if err != nil {
					return err
				}
				unref = append(unref, gone...)
			}
			var toWrite []*incoming
			for _, in := range debs {
				added, gone, err := r.addPackage(tx, d, in, res)
				if err != nil {
					return err
				}
				unref = append(unref, gone...)
				if added && !in.prewritten {
					toWrite = append(toWrite, in)
				}
				if !added && in.prewritten {
					unused = append(unused, in.filekey)
				}
			}
			var err error
			if written, err = r.writePool(ctx, toWrite, staging); err != nil {
				return err
			}
			return r.storage.Sync(ctx)
		})
	}
	if err != nil {
		r.undoPool(ctx, staging, debs, written)
		return nil, err
	}
	if bulk {
		releaseBatch(debs)
	}
	// Skipped packages written into the pool ahead of the commit:
	// nothing names them (the journal does, should this fail).
	for _, name := range unused {
		if r.storage.Remove(ctx, name) != nil {
			staging.journal.failedUndo()
		}
	}
	return unref, nil
}

// undoPool removes the pool files the command wrote (the packages it
// wrote ahead, and extra); those it cannot remove stay in the journal for
// the next writer (orphans.go).
func (r *Repo) undoPool(ctx context.Context, staging *stager, debs []*incoming, extra []string) {
	for _, in := range debs {
		if in != nil && in.prewritten {
			if r.storage.Remove(ctx, in.filekey) != nil {
				staging.journal.failedUndo()
			}
		}
	}
	for _, name := range extra {
		if r.storage.Remove(ctx, name) != nil {
			staging.journal.failedUndo()
		}
	}
}

// place decides component, section, priority, pool file and targets.
func (in *incoming) place(d *Distribution, o IncludeOptions, st *stager) error {
	section, priority := in.control.Get("Section"), in.control.Get("Priority")
	if o.Section != "" {
		section = o.Section
	}
	if o.Priority != "" {
		priority = o.Priority
	}
	switch {
	case section == "":
		return fmt.Errorf("%s: %w: %s has no Section; add one to its control file or give it with -S", in.src, ErrBadPackage, in.name)
	case priority == "":
		return fmt.Errorf("%s: %w: %s has no Priority; add one to its control file or give it with -P", in.src, ErrBadPackage, in.name)
	}
	component := o.Component
	if component == "" {
		component = guessComponent(d, section)
	}
	if err := checkTypeComponent(d, in, component); err != nil {
		return err
	}
	arches := d.Architectures
	if len(o.Architectures) > 0 {
		arches = o.Architectures
	}
	if in.arch != "all" && !contains(arches, in.arch) {
		return fmt.Errorf("%s: %w: %s %s is for %s, but %s has Architectures: %v (%s:%d); add %s there or build the package for one of them",
			in.src, ErrArchitecture, in.name, in.version, in.arch, d.Codename, arches, d.File, d.Line, in.arch)
	}
	in.targets = st.targets(d, component, in.arch, arches, in.ptype)
	filekey := PoolPath(component, sourceName(in.control, in.name), in.name, in.version, in.arch)
	if in.ptype != "" {
		filekey = strings.TrimSuffix(filekey, ".deb") + "." + in.ptype
	}
	in.value = pkgValue(filekey, makeStanza(in.control, section, priority, filekey, *in.sums))
	// Only the stanza is needed from here on. The strings kept are
	// copied into the stager's arena: those parsed from the control file
	// would each keep a line of it alive, scattered over the heap.
	in.control = nil
	vers := in.version.String()
	all := st.arena.concat(filekey, in.name, vers)
	in.filekey = all[:len(filekey)]
	in.name = all[len(filekey) : len(filekey)+len(in.name)]
	in.vers = all[len(filekey)+len(in.name):]
	v, err := deb.ParseVersion(in.vers)
	if err != nil { // parsed before: cannot happen
		return fmt.Errorf("%s: %w: %w", in.src, ErrBadPackage, err)
	}
	in.version, in.arch = v, st.arena.intern(in.arch)
	return nil
}

// checkTypeComponent refuses a debug or installer package for a
// component without lists of its type.
func checkTypeComponent(d *Distribution, in *incoming, component string) error {
	var have []string
	what, field := "", ""
	switch in.ptype {
	case DDeb:
		have, what, field = d.DDebComponents, "a debug package (.ddeb)", "DDebComponents"
	case UDeb:
		have, what, field = d.UDebComponents, "an installer package (.udeb)", "UDebComponents"
	default:
		return nil
	}
	if contains(have, component) {
		return nil
	}
	return fmt.Errorf("%s: %w: %s is %s for component %s, but %s has no such list there (%s: %s, %s:%d); add %s to %s",
		in.src, ErrComponent, in.name, what, component, d.Codename, field, strings.Join(have, " "), d.File, d.Line, component, field)
}

// tooOld applies reprepro's rule for an older version (Options.RepreproRules;
// "" otherwise): v is skipped when the Limit-th newest version in have
// (oldest first; pinned versions do not count) is newer than v. It
// returns that version, or "" when v may be added. Without a Limit
// (Limit <= 0) every version may be added.
func tooOld(tx *bolt.Tx, d *Distribution, name string, have []existing, v deb.Version) string {
	if d.Limit <= 0 {
		return ""
	}
	var free []existing
	for _, e := range have {
		if !pinned(tx, d.Codename, name, e.version.String()) {
			free = append(free, e)
		}
	}
	if len(free) < d.Limit {
		return ""
	}
	if w := free[len(free)-d.Limit]; v.Compare(w.version) < 0 {
		return w.version.String()
	}
	return ""
}

// existing is a version of a package already in a target.
type existing struct {
	key     []byte
	version deb.Version
	filekey string
	files   []string // every pool file (entryFiles)
	value   []byte   // the stored value (for tracking)
}

func versionsOf(b *bolt.Bucket, name string) ([]existing, error) {
	var out []existing
	prefix := []byte(name + "\x00")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, ver := splitPkgKey(k)
		pv, err := deb.ParseVersion(ver)
		if err != nil {
			return nil, fmt.Errorf("%w: package %s has version %q: %w", ErrState, name, ver, err)
		}
		fk, _ := splitPkgValue(v)
		out = append(out, existing{append([]byte(nil), k...), pv, fk, entryFiles(v), append([]byte(nil), v...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version.Compare(out[j].version) < 0 })
	return out, nil
}

// addPackage applies the version rules to every target of in. It reports
// whether the pool file must be written, and the pool files that lost
// their last reference.
func (r *Repo) addPackage(tx *bolt.Tx, d *Distribution, in *incoming, res *Result) (bool, []string, error) {
	known, haveFile, err := fileSums(tx, in.filekey)
	if err != nil {
		return false, nil, err
	}
	if haveFile && known != *in.sums {
		return false, nil, fmt.Errorf("%s: %w: %s already holds %s %s (%s) with SHA256 %s, this file has %s; give the new build a new version",
			in.src, ErrVersionClash, in.filekey, in.name, in.version, in.arch, known.SHA256, in.sums.SHA256)
	}
	var gone []string
	added := false
	for _, t := range in.targets {
		b, err := targetBucket(tx, t, true)
		if err != nil {
			return false, nil, err
		}
		have, err := versionsOf(b, in.name)
		if err != nil {
			return false, nil, err
		}
		same, err := r.judgeVersions(in, t, have)
		if err != nil {
			return false, nil, err
		}
		ch := Change{Action: "unchanged", Target: t, Package: in.name, Version: in.vers, File: in.filekey}
		if same {
			res.Changes = append(res.Changes, ch)
			continue
		}
		if kept := tooOld(tx, d, in.name, have, in.version); kept != "" {
			ch.Action, ch.OldVersion = "skip", kept
			res.Changes = append(res.Changes, ch)
			continue
		}
		if err := putPkg(tx, b, t, pkgKey(in.name, in.vers), in.value); err != nil {
			return false, nil, err
		}
		if err := addRef(tx, in.filekey, t); err != nil {
			return false, nil, err
		}
		if err := trackAdd(tx, d, t, in.name, in.vers, in.value); err != nil {
			return false, nil, err
		}
		added = true
		ch.Action = "add"
		if over := overLimit(tx, d, in.name, have); len(over) > 0 {
			archived, err := r.archiveOut(tx, d, t, in.name, over, res)
			if err != nil {
				return false, nil, err
			}
			dropped, err := dropVersions(tx, b, t, in.name, over)
			if err != nil {
				return false, nil, err
			}
			gone = append(append(gone, archived...), dropped...)
			ch.Action, ch.OldVersion = "replace", over[len(over)-1].version.String()
		}
		res.Changes = append(res.Changes, ch)
	}
	if !added || haveFile {
		return false, gone, nil
	}
	err = bucket(tx, bFiles).Put([]byte(in.filekey), in.sums.encode())
	in.sums = nil // recorded; a big batch need not keep the strings
	return true, gone, err
}

// judgeVersions compares an incoming package with the versions target t
// has of it: same when this very file is there already; an error for
// another file under the same version, and (under lampi-pkg's own rules)
// for a newer version already there.
func (r *Repo) judgeVersions(in *incoming, t Target, have []existing) (same bool, err error) {
	for _, e := range have {
		switch cmp := e.version.Compare(in.version); {
		case cmp == 0 && e.filekey == in.filekey:
			same = true
		case cmp == 0:
			return false, fmt.Errorf("%s: %w: %s already has %s %s as %s; give the new build a new version",
				in.src, ErrVersionClash, t, in.name, e.version, e.filekey)
		case cmp > 0 && !r.opts.RepreproRules:
			return false, fmt.Errorf("%s: %w: %s already has %s %s, newer than %s; remove it first to go back (lampi-pkg repo remove), or publish a higher version",
				in.src, ErrOlderVersion, t, in.name, e.version, in.version)
		}
	}
	return same, nil
}

// dropVersions removes the versions over (beyond Limit) of package name
// from target t's bucket b, with their file references and tracking; it
// returns the pool files nothing holds any more.
func dropVersions(tx *bolt.Tx, b *bolt.Bucket, t Target, name string, over []existing) (gone []string, err error) {
	for _, e := range over {
		if err := deletePkg(tx, b, t, e.key); err != nil {
			return nil, err
		}
		last, err := dropEntryRefs(tx, t, name, e.files)
		if err != nil {
			return nil, err
		}
		gone = append(gone, last...)
		untracked, err := trackRemove(tx, t, name, e.version.String(), e.value)
		if err != nil {
			return nil, err
		}
		gone = append(gone, untracked...)
	}
	return gone, nil
}
