package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// The verbs that list packages: they read the repository and never wait
// for a writer.

type repoListOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	packages []string
	json     bool
}

func newRepoListCmd(env *Env, ro *repoOptions, runF runFunc[repoListOptions]) *cobra.Command {
	o := &repoListOptions{env: env, repo: ro}
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
			o.codename, o.packages = args[0], args[1:]
			return runVerb(cmd, runF, runRepoList, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the packages as JSON")
	return cmd
}

func runRepoList(ctx context.Context, o *repoListOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	es, err := r.List(ctx, o.codename, o.repo.selection(), o.packages, nil)
	if err != nil {
		return repoError(err)
	}
	return printEntries(o.env, es, o.json)
}

func printEntries(env *Env, es []repo.Entry, json bool) error {
	w := env.Out
	if json {
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

type repoListFilterOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	formula  string
	json     bool
}

func newRepoListFilterCmd(env *Env, ro *repoOptions, runF runFunc[repoListFilterOptions]) *cobra.Command {
	o := &repoListFilterOptions{env: env, repo: ro}
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
			o.codename, o.formula = args[0], args[1]
			return runVerb(cmd, runF, runRepoListFilter, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the packages as JSON")
	return cmd
}

func runRepoListFilter(ctx context.Context, o *repoListFilterOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	f, err := repo.ParseFilter(o.formula)
	if err != nil {
		return &usageError{err}
	}
	es, err := r.List(ctx, o.codename, o.repo.selection(), nil, f.Match)
	if err != nil {
		return repoError(err)
	}
	return printEntries(o.env, es, o.json)
}
