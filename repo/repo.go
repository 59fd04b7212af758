package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/localfs"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
	bolt "go.etcd.io/bbolt"
)

// ExportMode says when modifying commands publish their changes.
type ExportMode int

const (
	// ExportChanged publishes the distributions a command changed (the
	// default, reprepro's --export=changed).
	ExportChanged ExportMode = iota
	// ExportNever leaves dists/ alone; a later Export publishes.
	ExportNever
)

// Options configure a Repo. Only Now is required.
type Options struct {
	// OutDir holds pool/ and dists/ (reprepro's --outdir); "" is the
	// base directory. Ignored when Storage is set.
	OutDir string
	// DBDir holds the state database and the lock ("" = BASEDIR/db).
	DBDir string
	// LogDir holds the files named by Log: fields ("" = BASEDIR/logs).
	LogDir string
	// Storage receives the published tree; nil is a storage.DirStorage at OutDir.
	Storage storage.Storage
	// Now gives the time of Release files, signatures and logs.
	Now func() time.Time
	// LockTimeout is how long a writer waits for another one to finish
	// (reprepro's --waitforlock); 0 fails at once.
	LockTimeout time.Duration
	// Signer returns the signer for a distribution with SignWith set.
	// nil uses KeyDirSigners(KeyDir, Now, nil).
	Signer func(ctx context.Context, d *Distribution) (Signer, error)
	// KeyDir is where SignWith fingerprints are looked up ("" =
	// BASEDIR/conf/keys); used when Signer is nil.
	KeyDir string
	// Export says when to publish; see ExportMode.
	Export ExportMode
	// KeepUnreferenced keeps pool files nothing needs any more (reprepro's
	// --keepunreferencedfiles); deleteunreferenced removes them later.
	KeepUnreferenced bool
	// ByHashRetention is how long superseded by-hash index files stay
	// available to clients holding an older InRelease (default 24 h; the
	// previous generation is always kept).
	ByHashRetention time.Duration
	// Progress, if set, is called while packages are read: done of total.
	Progress func(done, total int)
	// Warn receives warnings (ignored configuration, skipped work); nil
	// discards them.
	Warn func(msg string)
	// PlainFileIO makes every file operation go through the os package
	// instead of the raw system calls that read packages and create pool
	// files (internal/localfs), which suit local file systems only: set
	// it when the base directory, the output directory or the packages
	// are on NFS, SMB or FUSE. "plain-file-io" in conf/options sets it
	// too, for every command that opens the repository.
	PlainFileIO bool
	// RepreproRules makes the version rules and the not-found cases
	// reprepro's instead of the strict default (which release and the
	// upload API keep): an older version is skipped (Change "skip") when
	// the distribution already holds Limit newer ones, and added
	// otherwise (without a Limit, always); copy and move may replace a
	// newer version with an older one; a name that remove, copy or move
	// does not find is reported in Result.NotFound instead of failing
	// the command.
	RepreproRules bool
	// Mirror, if set, names publish targets that receive a copy of the
	// published tree after every publish (see MirrorOptions).
	Mirror *MirrorOptions
}

// Repo is a reprepro-style repository: BASEDIR/conf (configuration),
// BASEDIR/db (state) and the published pool/ and dists/. A Repo is not
// safe for concurrent use by goroutines; separate processes coordinate
// through the lock in DBDIR.
type Repo struct {
	Base    string
	Conf    *Config
	opts    Options
	storage storage.Storage
	dbPath  string
	lockDir string
	tmpRoot string
	// bulkMin and bulkChunk steer includeBulk; bulkRuns counts its
	// imports (for tests).
	bulkMin, bulkChunk, bulkRuns int
	// spoolMin is the size from which a first Packages index is spooled
	// to a file rather than held in memory (see readPackages).
	spoolMin int
	// chunkEvery is how often a stanza starts an index chunk (see
	// chunkStart); patchRuns counts the indices exports patched (for
	// tests).
	chunkEvery, patchRuns int
}

// Open reads BASEDIR/conf and returns the repository. It neither locks
// nor opens the state database: every command does that itself.
func Open(base string, opts Options) (*Repo, error) {
	if opts.Now == nil {
		return nil, errors.New("repo: Options.Now is required")
	}
	conf, err := LoadConfig(filepath.Join(base, "conf"))
	if err != nil {
		return nil, err
	}
	return OpenConfig(base, conf, opts)
}

// OpenConfig is Open with a configuration already loaded (LoadConfig),
// e.g. to apply conf/options first.
func OpenConfig(base string, conf *Config, opts Options) (*Repo, error) {
	if opts.Now == nil {
		return nil, errors.New("repo: Options.Now is required")
	}
	if opts.OutDir == "" {
		opts.OutDir = base
	}
	if opts.DBDir == "" {
		opts.DBDir = filepath.Join(base, "db")
	}
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(base, "logs")
	}
	if opts.KeyDir == "" {
		opts.KeyDir = filepath.Join(conf.Dir, "keys")
	}
	if opts.ByHashRetention == 0 {
		opts.ByHashRetention = 24 * time.Hour
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	if conf.Settings.PlainFileIO {
		opts.PlainFileIO = true // whoever opens the repository
	}
	st := opts.Storage
	if st == nil {
		st = &storage.DirStorage{Root: opts.OutDir, PlainIO: opts.PlainFileIO}
	}
	if opts.Signer == nil {
		opts.Signer = KeyDirSigners(opts.KeyDir, opts.Now, nil)
	}
	r := &Repo{
		Base: base, Conf: conf, opts: opts, storage: st,
		dbPath:  filepath.Join(opts.DBDir, "lampi.db"),
		lockDir: opts.DBDir,
		tmpRoot: filepath.Join(opts.DBDir, "tmp"),
		bulkMin: bulkMin, bulkChunk: bulkChunk, spoolMin: spoolMin, chunkEvery: chunkEvery,
	}
	for _, w := range conf.Warnings {
		opts.Warn(w)
	}
	return r, nil
}

// Storage returns where the repository publishes.
func (r *Repo) Storage() storage.Storage { return r.storage }

// files makes the small-file operations on packages and staged files:
// raw system calls, or the os package with Options.PlainFileIO.
func (r *Repo) files() localfs.Files { return localfs.Files{Plain: r.opts.PlainFileIO} }

// writer holds the lock and the open database of a modifying command.
type writer struct {
	r    *Repo
	lock *fileLock
	db   *bolt.DB
}

// lockWrite takes the repository lock and opens the database for
// writing. Release both with w.close.
func (r *Repo) lockWrite(ctx context.Context) (*writer, error) {
	w, err := r.lock(ctx)
	if err != nil {
		return nil, err
	}
	if err := w.openDB(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// lock takes the repository lock only; openDB opens the database later.
// What a writer killed while writing pool files left is removed first
// (recoverWrites).
func (r *Repo) lock(ctx context.Context) (*writer, error) {
	if err := os.MkdirAll(r.lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", r.lockDir, err)
	}
	lock, err := acquireLock(ctx, filepath.Join(r.lockDir, "lampi.lock"), r.opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	r.cleanStaleTemp()
	w := &writer{r: r, lock: lock}
	if err := w.recoverWrites(ctx); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// openDB opens the state database for writing; readers wait (briefly)
// until w.close. Distributions published by another tool and unknown to
// the database are adopted first (see adopt).
func (w *writer) openDB() error {
	db, err := openDB(w.r.dbPath, false, w.r.opts.LockTimeout+time.Second)
	if err != nil {
		return err
	}
	w.db = db
	if err := dropPending(db); err != nil {
		return fmt.Errorf("%s: remove an interrupted bulk import: %w", w.r.dbPath, err)
	}
	if err := w.r.finishDeletes(context.Background(), db); err != nil {
		return err
	}
	for _, d := range w.r.Conf.Distributions {
		if _, err := w.r.adopt(context.Background(), db, d); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) close() error {
	var err error
	if w.db != nil {
		err = w.db.Close()
	}
	if lerr := w.lock.release(); err == nil {
		err = lerr
	}
	return err
}

// view runs fn in a read-only transaction of the state database without
// taking the writers' lock: readers never wait for a whole command, only
// (briefly) for a writer's commit. A repository without a database looks
// empty.
func (r *Repo) view(fn func(tx *bolt.Tx) error) error {
	timeout := r.opts.LockTimeout
	if timeout < 5*time.Second {
		timeout = 5 * time.Second
	}
	db, err := openDB(r.dbPath, true, timeout)
	if err != nil {
		return err
	}
	if db == nil {
		return fn(nil)
	}
	defer db.Close()
	return db.View(fn)
}

// stagingDir makes a private directory for files read before the lock is
// taken. Its name carries the process id so that cleanStaleTemp can tell
// leftovers of dead processes.
func (r *Repo) stagingDir() (string, error) {
	if err := os.MkdirAll(r.tmpRoot, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(r.tmpRoot, strconv.Itoa(os.Getpid())+"-*")
}

// cleanStaleTemp removes staging directories of processes that no longer
// run, and temporary files interrupted writes left in dists/.
func (r *Repo) cleanStaleTemp() {
	entries, _ := os.ReadDir(r.tmpRoot)
	for _, e := range entries {
		pid, _, _ := strings.Cut(e.Name(), "-")
		n, err := strconv.Atoi(pid)
		if err == nil && n != os.Getpid() && syscall.Kill(n, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(r.tmpRoot, e.Name()))
		}
	}
	if ds, ok := r.storage.(*storage.DirStorage); ok {
		ds.RemoveTemp("dists")
	}
}

// log appends lines to the distribution's Log: file, as reprepro does
// ("2006-01-02 15:04:05 add bookworm deb main amd64 hi 0.2").
func (r *Repo) log(d *Distribution, lines []string) {
	if d.Log == "" || len(lines) == 0 {
		return
	}
	p := d.Log
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.opts.LogDir, p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.opts.Warn(fmt.Sprintf("log %s: %v", p, err))
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.opts.Warn(fmt.Sprintf("log %s: %v", p, err))
		return
	}
	defer f.Close()
	ts := r.opts.Now().UTC().Format("2006-01-02 15:04:05")
	for _, l := range lines {
		io.WriteString(f, ts+" "+l+"\n")
	}
}
