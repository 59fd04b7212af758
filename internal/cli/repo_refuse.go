package cli

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// Work or refuse: each of reprepro's global options either does what
// reprepro's does or stops the command, naming it and saying what to do
// instead. Left to cobra, a reprepro option lampi-pkg lacks reads
// "unknown flag"; the options below get their own reasons. docs/repo.md
// has the whole table.

// refusedRepoFlags are reprepro options that change what reprepro does
// and that lampi-pkg does not implement, with what to do instead. They
// are accepted by the parser (hidden from the help) only to be refused
// with these words.
var refusedRepoFlags = []struct {
	name, short string
	value       bool // takes an argument
	why         string
}{
	{"distdir", "", true, "lampi-pkg publishes dists/ under the output directory; use --outdir"},
	{"listdir", "", true, "lampi-pkg keeps no downloaded upstream lists; leave it out"},
	{"morguedir", "", true, "lampi-pkg deletes pool files nothing references (--keepunreferencedfiles keeps them all); leave it out"},
	{"methoddir", "", true, "lampi-pkg runs no apt methods; leave it out"},
	{"gnupghome", "", true, "lampi-pkg signs with key files: point SignWith at a key file, or use --keydir"},
	{"ignore", "i", true, "lampi-pkg ignores no errors; fix what it reports"},
	{"unignore", "", true, "lampi-pkg ignores no errors; leave it out"},
	{"noignore", "", true, "lampi-pkg ignores no errors; leave it out"},
	{"nothingiserror", "", false, "lampi-pkg always exits 0 when nothing had to be done; check its output (--json) instead"},
	{"keepunusednewfiles", "", false, "leave it out: lampi-pkg checks every input before it writes to the pool"},
	{"list-format", "", true, "use --json and format the output yourself"},
	{"list-max", "", true, "use --json and cut the output yourself"},
	{"list-skip", "", true, "use --json and cut the output yourself"},
	{"restrict", "", true, "lampi-pkg's update and pull take no restrictions; leave it out"},
	{"restrict-binary", "", true, "lampi-pkg's update and pull take no restrictions; leave it out"},
	{"endhook", "", true, "run the script after lampi-pkg yourself"},
	{"outhook", "", true, "run the script after lampi-pkg yourself"},
	{"force", "f", false, "lampi-pkg has no --force; fix what it reports"},
	{"onlysmalldeletes", "", false, "leave it out"},
	{"keepdirectories", "", false, "leave it out: lampi-pkg removes pool directories it empties"},
	{"keeptemporaries", "", false, "leave it out: lampi-pkg removes its temporary files"},
	{"ask-passphrase", "", false, "give a protected key's passphrase with --passphrase-file or $" + PassphraseEnv},
	{"spacecheck", "", true, "leave it out"},
	{"checkspace", "", true, "leave it out"},
	{"safetymargin", "", true, "leave it out"},
	{"dbsafetymargin", "", true, "leave it out"},
}

// refuseFlags adds the refused options to f (hidden, so that the help
// lists what works) and --confdir.
func (o *repoOptions) refuseFlags(f *pflag.FlagSet) {
	for _, r := range refusedRepoFlags {
		if r.value {
			f.StringP(r.name, r.short, "", "not implemented: refused")
		} else {
			f.BoolP(r.name, r.short, false, "not implemented: refused")
		}
		f.Lookup(r.name).Hidden = true
	}
	f.StringVar(&o.confdir, "confdir", "", "configuration directory (default $REPREPRO_CONFIG_DIR or BASEDIR/conf; +b/ is BASEDIR)")
}

// checkRefused fails verb when the command line gave a refused option,
// or --confdir to init (which writes BASEDIR/conf).
func (o *repoOptions) checkRefused(verb *cobra.Command) error {
	for _, r := range refusedRepoFlags {
		if verb.Flags().Changed(r.name) {
			return usageErrorf("repo %s: --%s is not implemented by lampi-pkg: %s", verb.Name(), r.name, r.why)
		}
	}
	if verb.Name() == "init" && verb.Flags().Changed("confdir") {
		return usageErrorf("repo init: --confdir: init writes BASEDIR/conf; move the directory afterwards and pass --confdir to the other verbs")
	}
	return nil
}

// confDir is the configuration directory: --confdir, else
// $REPREPRO_CONFIG_DIR, else BASEDIR/conf. A relative one is taken from
// base, as the other directories are; "+b/" names base explicitly.
func (o *repoOptions) confDir(env *Env, base string) string {
	dir := o.confdir
	if dir == "" {
		dir = env.Getenv("REPREPRO_CONFIG_DIR")
	}
	if dir == "" {
		return repo.Layout{Base: base}.Conf()
	}
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(base, strings.TrimPrefix(dir, "+b/"))
}

// applyConfVerbosity takes conf/options' verbose and silent when the
// command line gave neither.
func (o *repoOptions) applyConfVerbosity(conf *repo.Config) {
	if o.set["verbose"] || o.set["very-verbose"] || o.set["silent"] {
		return
	}
	if _, ok := conf.Options["verbose"]; ok {
		o.verbose++
	}
	if _, ok := conf.Options["silent"]; ok {
		o.silent = true
	}
}

// unknownRepoFlag is the repo command's FlagErrorFunc: an option neither
// lampi-pkg nor the table above knows is refused with a pointer to the
// table.
func unknownRepoFlag(cmd *cobra.Command, err error) error {
	if strings.HasPrefix(err.Error(), "unknown flag") || strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		where := "repo"
		if cmd.Name() != "repo" {
			where += " " + cmd.Name()
		}
		return usageErrorf("%s: %w (not an option of lampi-pkg repo; docs/repo.md lists reprepro's options and what lampi-pkg does with each)", where, err)
	}
	return &usageError{err}
}
