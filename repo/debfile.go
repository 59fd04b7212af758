package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/localfs"
)

// debFile is a .deb staged for inclusion: read once while hashing, kept
// in memory when small (within the stager's budget) or copied into the
// staging directory, and inspected from what was read (so the bytes we
// check are the bytes that go into the pool).
type debFile struct {
	src     string     // the path the user gave
	data    []byte     // the content, when kept in memory
	staged  string     // the copy in the staging directory, otherwise
	sums    *Checksums // nil once recorded or spilled
	control *deb.Paragraph
	name    string
	version deb.Version
	arch    string
}

// maxInMemory bounds the size of a package kept in memory.
const maxInMemory = 1 << 20

// stageDeb reads src, computes its checksums and reads its control file.
// Errors wrap ErrBadPackage (and the deb package's sentinel) and name src.
func stageDeb(ctx context.Context, src string, st *stager, df *debFile) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	limit := int64(maxInMemory)
	if st.budget.Load() <= 0 {
		limit = -1
	}
	data, size, err := st.r.files().ReadSmall(src, limit)
	if errors.Is(err, localfs.ErrNotRegular) {
		return fmt.Errorf("%s: %w: not a regular file", src, ErrBadPackage)
	}
	if err != nil {
		return err
	}
	*df = debFile{src: src}
	if data != nil {
		st.budget.Add(-size)
		sums := sumBytes(data)
		df.data, df.sums = data, &sums
		return df.inspect(bytes.NewReader(data), int64(len(data)))
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := st.create()
	if err != nil {
		return fmt.Errorf("stage %s: %w", src, err)
	}
	defer f.Close()
	df.staged = f.Name()
	h := newHasher()
	n, err := io.Copy(io.MultiWriter(f, h), in)
	if err != nil {
		return fmt.Errorf("stage %s: %w", src, err)
	}
	sums := h.sums()
	df.sums = &sums
	return df.inspect(f, n)
}

// spill writes an in-memory package to the staging directory, for the
// storage to move into the pool.
func (df *debFile) spill(st *stager) error {
	if df.staged != "" {
		return nil
	}
	name, err := st.name()
	if err != nil {
		return err
	}
	if err := st.r.files().WriteNew(name, df.data); err != nil {
		return err
	}
	df.staged, df.data = name, nil
	return nil
}

// stager owns the staging directory of a command, created on first use
// under DBDIR/tmp with the process id in its name (so that the next
// writer can tell and remove leftovers of a killed process).
type stager struct {
	r    *Repo
	once sync.Once
	dir  string
	err  error
	n    atomic.Int64
	// budget is how many more bytes of packages may be kept in memory.
	budget atomic.Int64
	// spillValues: stanzas and checksums go to spill (a large batch).
	spillValues bool
	spill       spillFile
	// before, when set, runs first in the transaction that adds the
	// staged packages (include: the upload's source package); it returns
	// the pool files that lost their last reference.
	before func(tx *bolt.Tx) ([]string, error)
	// journal names the pool files the command writes (orphans.go).
	journal  writeJournal
	madeRoot bool // DBDIR/tmp did not exist before
	// arena holds the strings every staged package keeps; shared holds
	// the target lists, one per component and architecture.
	arena  strArena
	shared struct {
		sync.Mutex
		targets map[string][]Target
	}
}

// targets returns the targets of a package of architecture arch going
// into component, shared with every other such package (arches: the
// architectures of the command); ptype is the lists' Type.
func (s *stager) targets(d *Distribution, component, arch string, arches []string, ptype string) []Target {
	key := component + "\x00" + arch + "\x00" + ptype
	s.shared.Lock()
	defer s.shared.Unlock()
	if ts, ok := s.shared.targets[key]; ok {
		return ts
	}
	var ts []Target
	if arch == "all" {
		for _, a := range arches {
			ts = append(ts, Target{Codename: d.Codename, Component: component, Arch: a, Type: ptype})
		}
	} else {
		ts = []Target{{Codename: d.Codename, Component: component, Arch: strings.Clone(arch), Type: ptype}}
	}
	if s.shared.targets == nil {
		s.shared.targets = map[string][]Target{}
	}
	s.shared.targets[key] = ts
	return ts
}

// strArena hands out strings copied into shared blocks: thousands of
// small strings kept for a whole command then take their own size, in a
// few blocks, instead of one allocation each spread over the heap (which
// keeps partly used pages from being returned once the rest is freed).
type strArena struct {
	mu       sync.Mutex
	block    []byte
	interned map[string]string
}

// arenaBlock is the size of one arena block.
const arenaBlock = 32 << 10

// concat returns parts concatenated, in the arena.
func (a *strArena) concat(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n == 0 {
		return ""
	}
	if n > arenaBlock/8 {
		return strings.Join(parts, "")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cap(a.block)-len(a.block) < n {
		a.block = make([]byte, 0, arenaBlock)
	}
	start := len(a.block)
	for _, p := range parts {
		a.block = append(a.block, p...)
	}
	// The bytes are never written again: the block only grows, and a
	// full block is replaced, not reused.
	return unsafe.String(&a.block[start], n)
}

// intern returns s, shared with every equal string interned before (for
// the few distinct values of a field such as Architecture).
func (a *strArena) intern(s string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v, ok := a.interned[s]; ok {
		return v
	}
	if a.interned == nil {
		a.interned = map[string]string{}
	}
	v := strings.Clone(s)
	a.interned[v] = v
	return v
}

func newStager(r *Repo) *stager {
	s := &stager{r: r}
	s.journal.path = r.writeJournalPath()
	s.budget.Store(stagingMemory)
	return s
}

// stagingMemory bounds the packages a command keeps in memory.
const stagingMemory = 8 << 20

// name returns a new file name in the staging directory.
func (s *stager) name() (string, error) {
	s.once.Do(func() {
		_, err := os.Stat(s.r.tmpRoot)
		s.madeRoot = os.IsNotExist(err)
		s.dir, s.err = s.r.stagingDir()
	})
	if s.err != nil {
		return "", s.err
	}
	return filepath.Join(s.dir, fmt.Sprintf("%d.deb", s.n.Add(1))), nil
}

// create makes a new staging file (mode 0644, as the pool wants it).
func (s *stager) create() (*os.File, error) {
	name, err := s.name()
	if err != nil {
		return nil, err
	}
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644) // read back by inspect
}

// remove deletes the staging directory and what is left in it, and the
// journal of pool writes.
func (s *stager) remove() {
	s.journal.close()
	s.closeSpill()
	if s.dir != "" {
		os.RemoveAll(s.dir)
		if s.madeRoot {
			os.Remove(s.r.tmpRoot) // only if empty: others may be staging
		}
	}
}

// inspect checks the archive structure (every member present and whole)
// and parses the control file.
func (df *debFile) inspect(f io.ReaderAt, size int64) error {
	bad := func(err error) error {
		return fmt.Errorf("%s: %w: %w", df.src, ErrBadPackage, err)
	}
	mr, err := deb.NewMemberReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return bad(err)
	}
	var ctl *deb.Member
	for {
		m, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad(err)
		}
		if m.Kind == deb.KindControl {
			c := *m
			ctl = &c
		}
	}
	if ctl == nil {
		return bad(fmt.Errorf("%w: no control member", deb.ErrNotDeb))
	}
	info, err := readControl(f, size)
	if err != nil {
		return bad(err)
	}
	return df.checkControl(info.Paragraph)
}

// readControl reads the control member with deb.Reader, which reads an
// xz member's index first and sizes the decoder's dictionary by the data
// (not the 8 MiB xz -6 declares): from a file or an in-memory package it
// has random access.
func readControl(f io.ReaderAt, size int64) (*deb.ControlInfo, error) {
	dr, err := deb.NewReader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	return dr.Control()
}

// checkControl validates the fields a Packages index needs.
func (df *debFile) checkControl(p *deb.Paragraph) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %w: control file: %s", df.src, ErrBadPackage, fmt.Sprintf(format, a...))
	}
	df.control = p
	df.name = p.Get("Package")
	if df.name == "" {
		return bad("no Package field")
	}
	if err := deb.ValidatePackageName(df.name); err != nil {
		return bad("%v", err)
	}
	v, err := deb.ParseVersion(p.Get("Version"))
	if err != nil {
		return bad("%v", err)
	}
	df.version = v
	df.arch = p.Get("Architecture")
	if err := deb.ValidateArchitecture(df.arch); err != nil {
		return bad("%v", err)
	}
	if p.Get("Description") == "" {
		return bad("no Description field")
	}
	if err := deb.ValidatePackageName(sourceName(p, df.name)); err != nil {
		return bad("Source: %v", err)
	}
	return nil
}

// sourceName is the source package name of a binary package (its pool
// directory): the Source field without a version, or the package name.
func sourceName(p *deb.Paragraph, name string) string {
	if s := p.Get("Source"); s != "" {
		name, _, _ = strings.Cut(s, " ")
	}
	return name
}

// errorList joins per-file errors, keeping errors.Is working on each.
type errorList []error

func (l errorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i == 10 {
			fmt.Fprintf(&b, "\n… and %d more", len(l)-10)
			break
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (l errorList) Unwrap() []error { return l }

func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errorList(errs)
}
