package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// repoOptions are the global options of "lampi-pkg repo", named as
// reprepro's so that scripts change only the program name. Every repo
// verb's options point to the one repoOptions of the repo command.
type repoOptions struct {
	basedir, outdir, dbdir, logdir, keydir string
	components, architectures, types       []string
	section, priority                      string
	waitForLock                            int
	lockTimeout                            time.Duration
	export                                 string
	keepUnreferenced                       bool
	plainFileIO                            bool
	// reprepro: the repo command's verbs, which follow reprepro's
	// version rules unless strict; release and rollout, which open the
	// repository with options of their own, keep the strict ones.
	reprepro, strict     bool
	delete               int
	verbose, veryVerbose int
	silent               bool
	passphraseFile       string
	confdir              string // --confdir: repo_refuse.go
	byHashKeep           time.Duration
	target               targetFlags // repo_target.go
	// set holds the names of the flags above that the command line gave
	// (nil: none); open lets conf/options decide the others.
	set map[string]bool
}

func newRepoCmd(env *Env) *cobra.Command {
	o := &repoOptions{reprepro: true}
	cmd := &cobra.Command{
		Use:   "repo [-b BASEDIR] VERB …",
		Short: "Manage a reprepro-compatible apt repository (includedeb, remove, list, export…)",
		Long: `Manage an apt repository laid out as reprepro lays it out, with reprepro's
verbs and options, so that a script changes only the program name:

  reprepro -b /srv/repo includedeb stable hi_0.2_all.deb
  lampi-pkg repo -b /srv/repo includedeb stable hi_0.2_all.deb

The configuration is reprepro's own conf/distributions (and conf/options).
State lives in DB/lampi.db (bbolt); pool/ and dists/ are published
atomically: content-addressed by-hash indices first, InRelease last, so
apt never sees a half-written repository ("Hash Sum mismatch"). One writer
at a time: others wait for the lock (up to --lock-timeout); readers (list,
check) never wait for a whole command.

Version rules are reprepro's: an older version is skipped with a note
and exit 0 (Limit: N keeps N versions, and then an older version that is
among the N newest is added); copy and move may downgrade. --strict (or
'strict' in conf/options) keeps lampi-pkg's stricter rules, those of
'lampi-pkg release' and the upload API: an older version, and a name that
remove or copy cannot find, fail the command. The same version with other
bytes is always refused. Differences from reprepro: Acquire-By-Hash and
SHA512 are written; listfilter compares Version as dpkg does.`,
		Example: `  lampi-pkg repo init /srv/repo --codename bookworm --suite stable --architectures armhf,arm64 --sign-with signing-key.asc
  lampi-pkg repo -b /srv/repo includedeb bookworm hi_0.2_all.deb
  lampi-pkg repo -b /srv/repo list bookworm
  lampi-pkg repo -b /srv/repo copy bookworm bookworm-testing hi
  lampi-pkg repo -b /srv/repo phase bookworm hi 10`,
	}
	o.flags(cmd)
	cmd.SetFlagErrorFunc(unknownRepoFlag) // repo_refuse.go
	cmd.AddCommand(
		newRepoIncludeDebCmd(env, o, nil), newRepoRemoveCmd(env, o, nil), newRepoListCmd(env, o, nil),
		newRepoListFilterCmd(env, o, nil), newRepoExportCmd(env, o, nil), newRepoCopyCmd(env, o, nil),
		newRepoPhaseCmd(env, o, nil), newRepoCheckCmd(env, o, nil), newRepoCheckPoolCmd(env, o, nil),
		newRepoDumpUnreferencedCmd(env, o, nil), newRepoDeleteUnreferencedCmd(env, o, nil),
		newRepoCreateSymlinksCmd(env, o, nil), newRepoInitCmd(env, o, nil),
		newRepoLsCmd(env, o, nil), newRepoListCodenamesCmd(env, o, nil), newRepoListConfIDsCmd(env, o, nil), newRepoMoveCmd(env, o, nil),
		newRepoPickCmd(env, o, "copymatched", nil), newRepoPickCmd(env, o, "movematched", nil),
		newRepoPickCmd(env, o, "copyfilter", nil), newRepoPickCmd(env, o, "movefilter", nil),
		newRepoPickCmd(env, o, "removefilter", nil), newRepoClearVanishedCmd(env, o, nil),
		newRepoUpdateCmd(env, o, false, nil), newRepoUpdateCmd(env, o, true, nil), // repo_update.go
		newRepoPullCmd(env, o, false, nil), newRepoPullCmd(env, o, true, nil), // repo_pull.go
	)
	cmd.AddCommand(repoSourceCmds(env, o)...) // repo_source.go
	cmd.AddCommand(newRepoMatchedCmd(env, o, false, nil), newRepoMatchedCmd(env, o, true, nil), newRepoLsByComponentCmd(env, o, nil),
		newRepoDumpReferencesCmd(env, o, nil), newRepoRemoveSrcsCmd(env, o, nil), newRepoIncludeTypedCmd(env, o, repo.DDeb, nil),
		newRepoIncludeTypedCmd(env, o, repo.UDeb, nil)) // repo_matched.go
	return cmd
}

// flags binds the options to the persistent flags of the repo command
// and, before each verb runs, records in o.set which of them were given.
func (o *repoOptions) flags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVarP(&o.basedir, "basedir", "b", "", "repository base directory (default $REPREPRO_BASE_DIR or .)")
	f.StringVar(&o.outdir, "outdir", "", "directory holding pool/ and dists/ (default BASEDIR)")
	f.StringVar(&o.dbdir, "dbdir", "", "directory of the state database and lock (default BASEDIR/db)")
	f.StringVar(&o.logdir, "logdir", "", "directory of the Log: files (default BASEDIR/logs)")
	f.StringVar(&o.keydir, "keydir", "", "where SignWith fingerprints are looked up (default BASEDIR/conf/keys)")
	f.StringSliceVarP(&o.components, "component", "C", nil, "limit to these components (also: where includedeb puts packages)")
	f.StringSliceVarP(&o.architectures, "architecture", "A", nil, "limit to these architectures")
	f.StringSliceVarP(&o.types, "type", "T", nil, "limit to these package types: deb (binary), dsc (source)")
	f.StringVarP(&o.section, "section", "S", "", "includedeb: Section to record (overrides the package's)")
	f.StringVarP(&o.priority, "priority", "P", "", "includedeb: Priority to record (overrides the package's)")
	f.IntVar(&o.waitForLock, "waitforlock", -1, "reprepro's lock wait: retry COUNT times, 10 s each (0: fail at once)")
	f.DurationVar(&o.lockTimeout, "lock-timeout", time.Minute, "how long a writer waits for another one")
	f.StringVar(&o.export, "export", "changed", "when to publish: changed (default) or never (also: lookedat, normal, force as changed)")
	f.BoolVar(&o.keepUnreferenced, "keepunreferencedfiles", false, "keep pool files nothing needs any more (deleteunreferenced removes them)")
	f.CountVarP(&o.verbose, "verbose", "v", "say more (repeatable)")
	f.CountVarP(&o.veryVerbose, "very-verbose", "V", "reprepro's -V: as -v (repeatable)")
	f.BoolVarP(&o.silent, "silent", "s", false, "print only errors")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "passphrase of a protected signing key (else $"+PassphraseEnv+" or a prompt)")
	f.DurationVar(&o.byHashKeep, "byhash-keep", 24*time.Hour, "how long superseded by-hash indices stay for clients with an older InRelease")
	f.BoolVar(&o.plainFileIO, "plain-file-io", false, "read packages and write pool files through ordinary system calls: for a repository or packages on NFS, SMB or FUSE")
	o.refuseFlags(f) // reprepro options refused, and --confdir: repo_refuse.go
	f.BoolVar(&o.strict, "strict", false, "lampi-pkg's version rules instead of reprepro's: refuse an older version, and a name to remove or copy that is not there (conf/options: strict)")
	f.CountVar(&o.delete, "delete", "clearvanished: also forget package lists that still hold packages; createsymlinks: replace links that point elsewhere")
	o.target.flags(f) // publish targets: repo_target.go
	updateFlags(f)    // repo_update.go
	cmd.PersistentPreRunE = func(verb *cobra.Command, _ []string) error {
		o.set = nil
		f.VisitAll(func(fl *pflag.Flag) {
			if verb.Flags().Changed(fl.Name) {
				if o.set == nil {
					o.set = map[string]bool{}
				}
				o.set[fl.Name] = true
			}
		})
		o.verbose += o.veryVerbose
		if err := o.checkRefused(verb); err != nil {
			return err
		}
		if o.delete > 0 && verb.Name() != "clearvanished" && verb.Name() != "createsymlinks" {
			// reprepro's --delete also deletes the files includedeb and
			// include added; lampi-pkg leaves its input alone.
			return usageErrorf("repo %s: --delete is only implemented for clearvanished and createsymlinks; delete the input files yourself", verb.Name())
		}
		return nil
	}
}

// repoMemoryLimit is the Go heap size above which the collector runs
// more often during repository commands (GOMEMLIMIT overrides it).
const repoMemoryLimit = 24 << 20

// open loads the repository the options name, applying conf/options
// entries for what was not given on the command line (o.set). A
// modifying verb first checks that its publish targets are usable.
func (o *repoOptions) open(ctx context.Context, env *Env, modifying bool) (*repo.Repo, error) {
	base := o.basedirOr(env)
	conf, err := repo.LoadConfig(o.confDir(env, base))
	if err != nil {
		return nil, repoError(err)
	}
	o.applyConf(conf)
	for _, t := range o.types {
		if t != "deb" && t != "dsc" && t != repo.DDeb && t != repo.UDeb {
			return nil, usageErrorf("repo: -T %s: lampi-pkg has deb, udeb, ddeb and dsc packages", t)
		}
	}
	timeout := o.lockTimeout
	if o.waitForLock >= 0 && !o.set["lock-timeout"] {
		timeout = time.Duration(o.waitForLock) * 10 * time.Second
	}
	if env.Getenv("GOMEMLIMIT") == "" {
		// A big batch keeps the package list of a whole distribution in
		// memory until its one commit; a soft limit makes the collector
		// work harder instead of letting the heap grow to twice that.
		debug.SetMemoryLimit(repoMemoryLimit)
	}
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, strings.TrimPrefix(p, "+b/"))
	}
	opts := repo.Options{
		OutDir: rel(o.outdir), DBDir: rel(o.dbdir), LogDir: rel(o.logdir), KeyDir: rel(o.keydir),
		Now: env.Now, LockTimeout: timeout, KeepUnreferenced: o.keepUnreferenced, ByHashRetention: o.byHashKeep,
		PlainFileIO: o.plainFileIO, RepreproRules: o.reprepro && !o.strict,
		Warn: func(msg string) {
			if !o.silent {
				fmt.Fprintf(env.Err, "warning: %s\n", msg)
			}
		},
	}
	switch o.export {
	case "never":
		opts.Export = repo.ExportNever
	case "changed", "lookedat", "normal", "force", "silent-never":
	default:
		return nil, usageErrorf("repo: --export=%s: use changed or never", o.export)
	}
	keyDir := opts.KeyDir
	if keyDir == "" {
		keyDir = filepath.Join(conf.Dir, "keys")
	}
	opts.Signer = repo.KeyDirSigners(keyDir, env.Now, func(fpr string) ([]byte, error) {
		return readPassphrase(env, o.passphraseFile, "Passphrase for signing key "+fpr+": ", false)
	})
	if err := o.applyTargets(ctx, env, modifying, conf, &opts); err != nil { // repo_target.go
		return nil, err
	}
	return repo.OpenConfig(base, conf, opts)
}

// applyConf takes the conf/options entries of the flags the command line
// did not give. Their values were checked by repo.LoadConfig.
func (o *repoOptions) applyConf(conf *repo.Config) {
	for _, d := range []struct {
		name string
		dir  *string
	}{{"outdir", &o.outdir}, {"dbdir", &o.dbdir}, {"logdir", &o.logdir}, {"keydir", &o.keydir}} {
		if v, ok := conf.Options[d.name]; ok && !o.set[d.name] {
			*d.dir = v
		}
	}
	o.applyConfVerbosity(conf) // repo_refuse.go
	cs := conf.Settings
	if cs.Export != "" && !o.set["export"] {
		o.export = cs.Export
	}
	if cs.KeepUnreferenced && !o.set["keepunreferencedfiles"] {
		o.keepUnreferenced = true
	}
	if cs.PlainFileIO && !o.set["plain-file-io"] {
		o.plainFileIO = true
	}
	if cs.Strict && !o.set["strict"] {
		o.strict = true
	}
	if cs.WaitForLock != nil && !o.set["waitforlock"] && !o.set["lock-timeout"] {
		o.waitForLock = *cs.WaitForLock
	}
	if cs.ByHashKeep != nil && !o.set["byhash-keep"] {
		o.byHashKeep = *cs.ByHashKeep
	}
}

func (o *repoOptions) selection() repo.Selection {
	return repo.Selection{Components: o.components, Architectures: o.architectures, Types: o.types}
}

// change is the body of a verb that changes the repository: open it, run
// do, print the result. An error from do is explained by repoError.
func (o *repoOptions) change(ctx context.Context, env *Env, json bool, do func(r *repo.Repo) (*repo.Result, error)) error {
	r, err := o.open(ctx, env, true)
	if err != nil {
		return err
	}
	res, err := do(r)
	if err != nil {
		return repoError(err)
	}
	return o.printResult(env, res, json)
}

// printResult reports a modifying command's changes, one line each.
func (o *repoOptions) printResult(env *Env, res *repo.Result, json bool) error {
	if res == nil {
		return nil
	}
	o.printSkips(env.Err, res)
	out := env.Out
	if json {
		return writeJSON(out, res)
	}
	if o.silent {
		return nil
	}
	w := bufio.NewWriter(out)
	defer w.Flush()
	for _, c := range res.Changes {
		if c.ArchivedFrom != "" && (c.Action == "add" || c.Action == "replace") {
			// Limit pushed it out of ArchivedFrom into its Archive.
			fmt.Fprintf(w, "archived %s %s from %s in %s\n", c.Package, c.Version, c.ArchivedFrom, c.Target)
			if c.Action == "add" {
				continue
			}
		}
		switch c.Action {
		case "add":
			fmt.Fprintf(w, "added %s %s to %s\n", c.Package, c.Version, c.Target)
		case "replace":
			fmt.Fprintf(w, "replaced %s %s with %s in %s\n", c.Package, c.OldVersion, c.Version, c.Target)
		case "remove":
			fmt.Fprintf(w, "removed %s %s from %s\n", c.Package, c.Version, c.Target)
		case "phase":
			fmt.Fprintf(w, "phased %s %s in %s\n", c.Package, c.Version, c.Target)
		case "unchanged":
			if o.verbose > 0 {
				fmt.Fprintf(w, "unchanged %s %s in %s (the same file is there)\n", c.Package, c.Version, c.Target)
			}
		}
	}
	for _, t := range res.Vanished {
		fmt.Fprintf(w, "forgot vanished package list %s\n", t)
	}
	for _, d := range res.Exported {
		fmt.Fprintf(w, "exported %s\n", d)
	}
	if o.verbose > 0 {
		for _, f := range res.Deleted {
			fmt.Fprintf(w, "deleted %s\n", f)
		}
	}
	return nil
}

// printSkips tells on standard error, in reprepro's words, what a
// command left alone under reprepro's rules: versions skipped and names
// not found. Scripts read standard output; these are for people.
func (o *repoOptions) printSkips(w io.Writer, res *repo.Result) {
	if o.silent {
		return
	}
	for _, c := range res.Changes {
		switch {
		case c.Action == "skip":
			fmt.Fprintf(w, "Skipping inclusion of '%s' '%s' in '%s', as it has already '%s'.\n", c.Package, c.Version, c.Target, c.OldVersion)
		case c.Action == "unchanged" && c.ArchivedFrom != "":
			fmt.Fprintf(w, "Skipping inclusion of '%s' '%s' in '%s', as this version already exists.\n", c.Package, c.Version, c.Target)
		}
	}
	if len(res.NotFound) > 0 {
		fmt.Fprintf(w, "Not found, so nothing done for: %s\n", strings.Join(res.NotFound, ", "))
	}
}

// repoError adds a hint to the repository errors users can act on.
func repoError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, repo.ErrOlderVersion):
		return withHint(err, "publish a higher version; to go back, remove the newer one first (lampi-pkg repo remove)")
	case errors.Is(err, repo.ErrVersionClash):
		return withHint(err, "give the rebuilt package a new version: apt never downloads a version it already has")
	case errors.Is(err, repo.ErrUnknownCodename):
		return withHint(err, "use a Codename from conf/distributions (lampi-pkg repo init creates one)")
	case errors.Is(err, repo.ErrLocked):
		return withHint(err, "another lampi-pkg is writing; wait for it or raise --lock-timeout / --waitforlock")
	case errors.Is(err, repo.ErrUpdateSignature):
		return withHint(err, "give the upstream's public key with --keyring FILE and name it (fingerprint or 16-digit key id) in VerifyRelease of conf/updates")
	case errors.Is(err, repo.ErrUpdate):
		return withHint(err, "the upstream does not match its own signed listing: nothing was changed; retry later or tell its maintainer")
	case errors.Is(err, repo.ErrConfig):
		return withHint(err, "fix the configuration file at the place shown")
	case errors.Is(err, repo.ErrArchitecture):
		return withHint(err, "add the architecture to Architectures in conf/distributions, or build for a listed one")
	case errors.Is(err, errNoPassphrase):
		return withHint(err, "the signing key is passphrase-protected: give the passphrase with --passphrase-file or $"+PassphraseEnv)
	case errors.Is(err, signing.ErrWrongPassphrase):
		return withHint(err, "check the passphrase given with --passphrase-file or $"+PassphraseEnv)
	case errors.Is(err, repo.ErrSigning):
		return withHint(err, "check SignWith in conf/distributions and the key directory (--keydir)")
	case errors.Is(err, repo.ErrBadPackage):
		return withHint(err, "check the file with 'lampi-pkg info FILE'; nothing was changed")
	case errors.Is(err, context.Canceled):
		return err
	}
	return err
}
