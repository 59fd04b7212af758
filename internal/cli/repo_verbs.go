package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// The verbs that change the repository and publish it. Their options
// point to the repo command's repoOptions, bound to its persistent flags.

type repoIncludeDebOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	files    []string
	json     bool
	ptype    string // includeddeb, includeudeb: repo.DDeb, repo.UDeb
}

func newRepoIncludeDebCmd(env *Env, ro *repoOptions, runF runFunc[repoIncludeDebOptions]) *cobra.Command {
	return includeDebCmd(env, ro, runF, "")
}

func includeDebCmd(env *Env, ro *repoOptions, runF runFunc[repoIncludeDebOptions], ptype string) *cobra.Command {
	o := &repoIncludeDebOptions{env: env, repo: ro, ptype: ptype}
	cmd := &cobra.Command{
		Use:   "includedeb CODENAME FILE.deb…",
		Short: "Add .deb files to a distribution and publish it",
		Long: `Add .deb files to a distribution (by Codename), then publish it.

The component is -C, or guessed from the package's Section as reprepro does
(the first component otherwise); Architecture: all packages go into every
architecture of the distribution (or those given with -A). The same file
again changes nothing; a newer version replaces the older one (Limit: N in
conf/distributions keeps N versions, Limit: -1 all). An older version is
skipped with a note on standard error when Limit versions newer than it
are there, and added otherwise (exit 0), as reprepro does; with --strict
(or 'strict' in conf/options) any older version is refused. The same
version with different bytes is refused. Every file is checked before
anything changes: one bad file leaves the repository untouched.`,
		Example: `  lampi-pkg repo -b /srv/repo includedeb bookworm hi_0.2_all.deb
  lampi-pkg repo -b /srv/repo -C contrib includedeb bookworm build/*.deb`,
		Args: cobra.MinimumNArgs(2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if len(ro.components) > 1 {
				return usageErrorf("includedeb: give one component with -C, not %d", len(ro.components))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.files = args[0], args[1:]
			return runVerb(cmd, runF, runRepoIncludeDeb, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

// newRepoIncludeTypedCmd is includeddeb (ptype repo.DDeb: debug
// packages) or includeudeb (repo.UDeb: installer packages): includedeb
// into the lists of that type.
func newRepoIncludeTypedCmd(env *Env, ro *repoOptions, ptype string, runF runFunc[repoIncludeDebOptions]) *cobra.Command {
	verb, ext := "include"+ptype, "."+ptype
	cmd := includeDebCmd(env, ro, runF, ptype)
	cmd.Use = verb + " CODENAME FILE" + ext + "…"
	what, field, dir := "debug packages", "DDebComponents", "debug"
	if ptype == repo.UDeb {
		what, field, dir = "installer packages", "UDebComponents", "debian-installer"
	}
	cmd.Short = "Add " + what + " (" + ext + ") to a distribution and publish it"
	cmd.Long = "Add " + what + " (" + ext + " files) to their lists in a distribution\n" +
		"(COMPONENT/" + dir + "/binary-ARCH, for the components " + field + " names in\n" +
		"conf/distributions), then publish it; otherwise as includedeb. A file not\n" +
		"ending in " + ext + " is refused."
	cmd.Example = "  lampi-pkg repo -b /srv/repo -C main " + verb + " bookworm hi_0.2_armhf" + ext
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		for _, f := range args[1:] {
			if !strings.HasSuffix(f, ext) {
				return usageErrorf("%s: %s does not end in %s (use includedeb for .deb files)", verb, f, ext)
			}
		}
		return run(c, args)
	}
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if len(ro.components) > 1 {
			return usageErrorf("%s: give one component with -C, not %d", verb, len(ro.components))
		}
		return nil
	}
	return cmd
}

func runRepoIncludeDeb(ctx context.Context, o *repoIncludeDebOptions) error {
	env, ro := o.env, o.repo
	return ro.change(ctx, env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		inc := repo.IncludeOptions{Architectures: ro.architectures, Section: ro.section, Priority: ro.priority, Type: o.ptype}
		if len(ro.components) == 1 {
			inc.Component = ro.components[0]
		}
		r.SetProgress(repoProgress(env, len(o.files)))
		res, err := r.IncludeDeb(ctx, o.codename, o.files, inc)
		if env.IsTerminal != nil && env.IsTerminal(env.Err) && len(o.files) >= progressMin {
			fmt.Fprint(env.Err, "\r\033[K")
		}
		return res, err
	})
}

// progressMin is the number of files from which includedeb shows
// progress on a terminal.
const progressMin = 20

func repoProgress(env *Env, n int) func(done, total int) {
	if n < progressMin || env.IsTerminal == nil || !env.IsTerminal(env.Err) {
		return nil
	}
	var last time.Time
	return func(done, total int) {
		now := env.Now()
		if now.Sub(last) < 100*time.Millisecond && done < total {
			return
		}
		last = now
		fmt.Fprintf(env.Err, "\r\033[Kreading packages %d/%d (%d%%)", done, total, done*100/total)
	}
}

type repoRemoveOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	packages []string
	json     bool
}

func newRepoRemoveCmd(env *Env, ro *repoOptions, runF runFunc[repoRemoveOptions]) *cobra.Command {
	o := &repoRemoveOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "remove CODENAME PACKAGE[=VERSION]…",
		Short: "Remove packages from a distribution and publish it",
		Long: `Remove packages from a distribution (limited with -C and -A), then publish
it and delete the pool files nothing needs any more. PACKAGE removes the
newest version of PACKAGE from each component and architecture,
PACKAGE=VERSION that version. A name that is not in the distribution is
reported on standard error and the others are removed (exit 0), as
reprepro does; with --strict it fails the command and nothing is removed.
To remove every version, use removefilter 'Package (= NAME)'.`,
		Example: `  lampi-pkg repo -b /srv/repo remove bookworm hi
  lampi-pkg repo -b /srv/repo remove bookworm hi=0.1`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.packages = args[0], args[1:]
			return runVerb(cmd, runF, runRepoRemove, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoRemove(ctx context.Context, o *repoRemoveOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		return r.Remove(ctx, o.codename, o.repo.selection(), o.packages)
	})
}

type repoCopyOptions struct {
	env       *Env
	repo      *repoOptions
	dest, src string
	packages  []string
	json      bool
	// move: the move verb (repo_copymove.go), which removes from SRC
	// what it copied.
	move bool
}

func newRepoCopyCmd(env *Env, ro *repoOptions, runF runFunc[repoCopyOptions]) *cobra.Command {
	o := &repoCopyOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "copy DEST-CODENAME SRC-CODENAME PACKAGE[=VERSION]…",
		Short: "Copy packages from one distribution to another (promote)",
		Long: `Copy packages from SRC to DEST, verbatim and sharing the pool file, into the
components and architectures both distributions have, then publish DEST.
PACKAGE copies its newest version, PACKAGE=VERSION that version. DEST's
Limit applies; an older version replaces a newer one there, as reprepro
does (with --strict it is refused). A name not in SRC is reported on
standard error (with --strict it fails the command).`,
		Example: `  lampi-pkg repo -b /srv/repo copy bookworm bookworm-testing hi
  lampi-pkg repo -b /srv/repo copy bookworm bookworm-testing hi=0.2`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dest, o.src, o.packages = args[0], args[1], args[2:]
			return runVerb(cmd, runF, runRepoCopy, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoCopy(ctx context.Context, o *repoCopyOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		if o.move {
			return r.Move(ctx, o.dest, o.src, o.repo.selection(), o.packages)
		}
		return r.Copy(ctx, o.dest, o.src, o.repo.selection(), o.packages)
	})
}

type repoPhaseOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	pkg      string
	percent  int
	json     bool
}

func newRepoPhaseCmd(env *Env, ro *repoOptions, runF runFunc[repoPhaseOptions]) *cobra.Command {
	o := &repoPhaseOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "phase CODENAME PACKAGE PERCENT",
		Short: "Roll the newest version of a package out to PERCENT % of the devices",
		Long: `Set apt's Phased-Update-Percentage on the newest version of PACKAGE: apt
on each device decides from its machine ID whether it is among the first
PERCENT % to upgrade. Raise it step by step; 100 removes the field.`,
		Example: `  lampi-pkg repo -b /srv/repo phase bookworm hi 10
  lampi-pkg repo -b /srv/repo phase bookworm hi 100`,
		Args: cobra.ExactArgs(3),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			pct, err := strconv.Atoi(args[2])
			if err != nil || pct < 0 || pct > 100 {
				return usageErrorf("phase: PERCENT must be a number from 0 to 100, not %q", args[2])
			}
			o.percent = pct
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.pkg = args[0], args[1]
			return runVerb(cmd, runF, runRepoPhase, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoPhase(ctx context.Context, o *repoPhaseOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		return r.Phase(ctx, o.codename, o.repo.selection(), o.pkg, o.percent)
	})
}

type repoExportOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	renew     bool
	json      bool
}

func newRepoExportCmd(env *Env, ro *repoOptions, runF runFunc[repoExportOptions]) *cobra.Command {
	o := &repoExportOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "export [--renew] [CODENAME…]",
		Short: "Regenerate and publish every index of the distributions",
		Long: `Regenerate every index file of the named distributions (all by default),
sign them and publish atomically. Run it after editing conf/distributions.

With --renew, only re-sign the Release files whose Valid-Until (ValidFor in
conf/distributions) is near: less than half of ValidFor left, or passed.
They get a new Date and Valid-Until and nothing else changes; the others
are left alone (without --renew, export re-signs every distribution it
publishes). 'lampi-pkg serve' does this on its own; for a repository
served by another web server or from object storage, run it from cron,
more often than half of ValidFor, e.g. hourly:

  17 * * * *  lampi-pkg repo -b /srv/repo --silent export --renew`,
		Example: `  lampi-pkg repo -b /srv/repo export
  lampi-pkg repo -b /srv/repo export bookworm
  lampi-pkg repo -b /srv/repo export --renew`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoExport, o)
		},
	}
	cmd.Flags().BoolVar(&o.renew, "renew", false, "only re-sign the Release files whose Valid-Until is near (for cron)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runRepoExport(ctx context.Context, o *repoExportOptions) error {
	if !o.renew {
		return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
			return r.Export(ctx, o.codenames...)
		})
	}
	r, err := o.repo.open(ctx, o.env, true)
	if err != nil {
		return err
	}
	rs, err := r.Renew(ctx, repo.RenewOptions{}, o.codenames...)
	if perr := o.printRenewals(rs); err == nil {
		err = perr
	}
	return repoError(err)
}

// printRenewals reports what export --renew did: each renewal, and with
// -v the distributions left alone.
func (o *repoExportOptions) printRenewals(rs []repo.Renewal) error {
	w := o.env.Out
	if o.json {
		if rs == nil {
			rs = []repo.Renewal{}
		}
		return writeJSON(w, rs)
	}
	if o.repo.silent {
		return nil
	}
	for _, n := range rs {
		switch {
		case n.Renewed && n.ValidUntil.IsZero():
			fmt.Fprintf(w, "renewed %s\n", n.Codename)
		case n.Renewed:
			fmt.Fprintf(w, "renewed %s (valid until %s)\n", n.Codename, n.ValidUntil.UTC().Format(time.RFC1123))
		case o.repo.verbose == 0:
		case n.Date.IsZero():
			fmt.Fprintf(w, "%s: not published\n", n.Codename)
		case n.Due.IsZero():
			fmt.Fprintf(w, "%s: no Valid-Until, nothing to renew\n", n.Codename)
		default:
			fmt.Fprintf(w, "%s: valid until %s, renewed from %s\n", n.Codename,
				n.ValidUntil.UTC().Format(time.RFC1123), n.Due.UTC().Format(time.RFC1123))
		}
	}
	return nil
}
