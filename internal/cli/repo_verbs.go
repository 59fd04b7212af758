package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// changeVerb is the RunE of a verb that changes the repository: open it,
// run do, print the result. An error from do is explained by repoError.
func (o *repoOptions) changeVerb(env *Env, do func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		r, err := o.open(env, cmd)
		if err != nil {
			return err
		}
		res, err := do(cmd, r, args)
		if err != nil {
			return repoError(err)
		}
		return o.printResult(env, cmd, res)
	}
}

func newRepoIncludeDebCmd(env *Env, o *repoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "includedeb CODENAME FILE.deb…",
		Short: "Add .deb files to a distribution and publish it",
		Long: `Add .deb files to a distribution (by Codename), then publish it.

The component is -C, or guessed from the package's Section as reprepro does
(the first component otherwise); Architecture: all packages go into every
architecture of the distribution (or those given with -A). The same file
again changes nothing; a newer version replaces the older one (Limit: N in
conf/distributions keeps N versions); an older version, or the same
version with different bytes, is refused. Every file is checked before
anything changes: one bad file leaves the repository untouched.`,
		Example: `  lampi-pkg repo -b /srv/repo includedeb bookworm hi_0.2_all.deb
  lampi-pkg repo -b /srv/repo -C contrib includedeb bookworm build/*.deb`,
		Args: cobra.MinimumNArgs(2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if len(o.components) > 1 {
				return usageErrorf("includedeb: give one component with -C, not %d", len(o.components))
			}
			return nil
		},
		RunE: o.changeVerb(env, func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error) {
			inc := repo.IncludeOptions{Architectures: o.architectures, Section: o.section, Priority: o.priority}
			if len(o.components) == 1 {
				inc.Component = o.components[0]
			}
			r.SetProgress(repoProgress(env, len(args)-1))
			res, err := r.IncludeDeb(cmd.Context(), args[0], args[1:], inc)
			if env.IsTerminal != nil && env.IsTerminal(env.Err) && len(args)-1 >= progressMin {
				fmt.Fprint(env.Err, "\r\033[K")
			}
			return res, err
		}),
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
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

func newRepoRemoveCmd(env *Env, o *repoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove CODENAME PACKAGE…",
		Short: "Remove packages (every version) from a distribution and publish it",
		Long: `Remove every version of the named packages from a distribution (limited
with -C and -A), then publish it and delete the pool files nothing needs
any more. A name that is not in the distribution fails the command and
nothing is removed.`,
		Example: `  lampi-pkg repo -b /srv/repo remove bookworm hi`,
		Args:    cobra.MinimumNArgs(2),
		RunE: o.changeVerb(env, func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error) {
			return r.Remove(cmd.Context(), args[0], o.selection(), args[1:])
		}),
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func newRepoListCmd(env *Env, o *repoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list CODENAME [PACKAGE…]",
		Short: "List the packages of a distribution",
		Long: `List the packages of a distribution (or only the named ones), one line per
component and architecture as reprepro prints them:

  bookworm|main|armhf: hi 0.2`,
		Example: `  lampi-pkg repo -b /srv/repo list bookworm
  lampi-pkg repo -b /srv/repo -A armhf list bookworm hi --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			es, err := r.List(cmd.Context(), args[0], o.selection(), args[1:], nil)
			if err != nil {
				return repoError(err)
			}
			return o.printEntries(cmd, es)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the packages as JSON")
	return cmd
}

func (o *repoOptions) printEntries(cmd *cobra.Command, es []repo.Entry) error {
	w := cmd.OutOrStdout()
	if o.json {
		if es == nil {
			es = []repo.Entry{}
		}
		return writeJSON(w, es)
	}
	for _, e := range es {
		fmt.Fprintln(w, e.String())
	}
	return nil
}

func newRepoListFilterCmd(env *Env, o *repoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "listfilter CODENAME FORMULA",
		Short: "List the packages matching a reprepro formula",
		Long: `List the packages whose Packages stanza matches FORMULA, reprepro's
condition syntax: Field (op value) terms joined with ',' (and), '|' (or),
'!' (not) and parentheses. op is one of = == != << <= >= >> (and < > as
<= >=), or % and !% for shell globs. A field without a condition tests
presence. $Version, $Source, $SourceVersion, $Architecture, $Component and
$PackageType are computed. Version and $Version compare as dpkg does
(reprepro compares the Version field alphabetically).`,
		Example: `  lampi-pkg repo -b /srv/repo listfilter bookworm 'Package (= hi), Version (>= 0.2)'
  lampi-pkg repo -b /srv/repo listfilter bookworm 'Section (== admin) | Package (% lampi-*)'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			f, err := repo.ParseFilter(args[1])
			if err != nil {
				return &usageError{err}
			}
			es, err := r.List(cmd.Context(), args[0], o.selection(), nil, f.Match)
			if err != nil {
				return repoError(err)
			}
			return o.printEntries(cmd, es)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the packages as JSON")
	return cmd
}

func newRepoExportCmd(env *Env, o *repoOptions) *cobra.Command {
	var renew bool
	export := o.changeVerb(env, func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error) {
		return r.Export(cmd.Context(), args...)
	})
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
			if !renew {
				return export(cmd, args)
			}
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			rs, err := r.Renew(cmd.Context(), repo.RenewOptions{}, args...)
			if perr := o.printRenewals(cmd, rs); err == nil {
				err = perr
			}
			return repoError(err)
		},
	}
	cmd.Flags().BoolVar(&renew, "renew", false, "only re-sign the Release files whose Valid-Until is near (for cron)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

// printRenewals reports what export --renew did: each renewal, and with
// -v the distributions left alone.
func (o *repoOptions) printRenewals(cmd *cobra.Command, rs []repo.Renewal) error {
	w := cmd.OutOrStdout()
	if o.json {
		if rs == nil {
			rs = []repo.Renewal{}
		}
		return writeJSON(w, rs)
	}
	if o.silent {
		return nil
	}
	for _, n := range rs {
		switch {
		case n.Renewed && n.ValidUntil.IsZero():
			fmt.Fprintf(w, "renewed %s\n", n.Codename)
		case n.Renewed:
			fmt.Fprintf(w, "renewed %s (valid until %s)\n", n.Codename, n.ValidUntil.UTC().Format(time.RFC1123))
		case o.verbose == 0:
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

func newRepoCopyCmd(env *Env, o *repoOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "copy DEST-CODENAME SRC-CODENAME PACKAGE…",
		Short: "Copy packages from one distribution to another (promote)",
		Long: `Copy the newest version of each named package from SRC to DEST, verbatim
and sharing the pool file, into the components and architectures both
distributions have, then publish DEST. DEST's version rules apply.`,
		Example: `  lampi-pkg repo -b /srv/repo copy bookworm bookworm-testing hi`,
		Args:    cobra.MinimumNArgs(3),
		RunE: o.changeVerb(env, func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error) {
			return r.Copy(cmd.Context(), args[0], args[1], o.selection(), args[2:])
		}),
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func newRepoPhaseCmd(env *Env, o *repoOptions) *cobra.Command {
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
			if pct, err := strconv.Atoi(args[2]); err != nil || pct < 0 || pct > 100 {
				return usageErrorf("phase: PERCENT must be a number from 0 to 100, not %q", args[2])
			}
			return nil
		},
		RunE: o.changeVerb(env, func(cmd *cobra.Command, r *repo.Repo, args []string) (*repo.Result, error) {
			pct, _ := strconv.Atoi(args[2]) // checked in PreRunE
			return r.Phase(cmd.Context(), args[0], o.selection(), args[1], pct)
		}),
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}
