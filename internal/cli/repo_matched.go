package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// listmatched and removematched (list and remove by a shell glob on the
// package name), dumpreferences and removesrcs, as reprepro's verbs of
// these names.

type repoMatchedOptions struct {
	env      *Env
	repo     *repoOptions
	remove   bool
	codename string
	glob     string
	json     bool
}

func newRepoMatchedCmd(env *Env, ro *repoOptions, remove bool, runF runFunc[repoMatchedOptions]) *cobra.Command {
	o := &repoMatchedOptions{env: env, repo: ro, remove: remove}
	cmd := &cobra.Command{
		Use:   "listmatched CODENAME GLOB",
		Short: "List the packages whose name matches a shell glob",
		Long: `List the packages of a distribution (limited with -C, -A and -T) whose name
matches GLOB (*, ? and [...]), in the format of list.`,
		Example: "  lampi-pkg repo -b /srv/repo listmatched bookworm 'lampi-*'",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.glob = args[0], args[1]
			return runVerb(cmd, runF, runRepoMatched, o)
		},
	}
	if remove {
		cmd.Use = "removematched CODENAME GLOB"
		cmd.Short = "Remove the packages whose name matches a shell glob"
		cmd.Long = `Remove every version of every package of a distribution (limited with -C,
-A and -T) whose name matches GLOB (*, ? and [...]) — what listmatched
with the same arguments lists —, publish it and delete the pool files
nothing needs any more. Nothing matching is not an error.`
		cmd.Example = "  lampi-pkg repo -b /srv/repo removematched bookworm 'lampi-*'"
	}
	what := "packages"
	if remove {
		what = "changes"
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the "+what+" as JSON")
	return cmd
}

func runRepoMatched(ctx context.Context, o *repoMatchedOptions) error {
	match, err := repo.GlobMatch(o.glob)
	if err != nil {
		return &usageError{err}
	}
	if o.remove {
		return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
			return r.RemoveFilter(ctx, o.codename, o.repo.selection(), match)
		})
	}
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	es, err := r.List(ctx, o.codename, o.repo.selection(), nil, match)
	if err != nil {
		return repoError(err)
	}
	return printEntries(o.env, es, o.json)
}

type repoDumpReferencesOptions struct {
	env  *Env
	repo *repoOptions
	json bool
}

func newRepoDumpReferencesCmd(env *Env, ro *repoOptions, runF runFunc[repoDumpReferencesOptions]) *cobra.Command {
	o := &repoDumpReferencesOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "dumpreferences",
		Short: "Print which pool files are needed by what",
		Long: `Print every reference the database holds, one per line, as reprepro prints
them: the holder (a package list, or with Tracking a tracked source
version) and the pool file, by file:

  bookworm hello 2.9-1 pool/main/h/hello/hello_2.9-1.dsc
  bookworm|main|source pool/main/h/hello/hello_2.9-1.dsc`,
		Example: `  lampi-pkg repo -b /srv/repo dumpreferences`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRepoDumpReferences, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the references as JSON")
	return cmd
}

func runRepoDumpReferences(ctx context.Context, o *repoDumpReferencesOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	refs, err := r.References(ctx)
	if err != nil {
		return repoError(err)
	}
	if o.json {
		if refs == nil {
			refs = []repo.Reference{}
		}
		return writeJSON(o.env.Out, refs)
	}
	w := bufio.NewWriter(o.env.Out)
	for _, ref := range refs {
		fmt.Fprintf(w, "%s %s\n", ref.Holder, ref.File)
	}
	return w.Flush()
}

type repoRemoveSrcsOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	specs    []repo.SourceSpec
	json     bool
}

func newRepoRemoveSrcsCmd(env *Env, ro *repoOptions, runF runFunc[repoRemoveSrcsOptions]) *cobra.Command {
	o := &repoRemoveSrcsOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "removesrcs CODENAME SOURCE[=VERSION]…",
		Short: "Remove several source packages and every binary built from them",
		Long: `As removesrc for each SOURCE (with =VERSION: only that source version), in
one change and one publish; the pool files nothing needs any more are
deleted. A SOURCE with nothing found is not an error (a warning says so).`,
		Example: `  lampi-pkg repo -b /srv/repo removesrcs bookworm hello=2.9-1 sl`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.specs = args[0], nil
			for _, a := range args[1:] {
				name, version, _ := strings.Cut(a, "=")
				if name == "" || strings.Contains(version, "=") {
					return usageErrorf("removesrcs: %q: want SOURCE or SOURCE=VERSION", a)
				}
				o.specs = append(o.specs, repo.SourceSpec{Name: name, Version: version})
			}
			return runVerb(cmd, runF, runRepoRemoveSrcs, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoRemoveSrcs(ctx context.Context, o *repoRemoveSrcsOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		return r.RemoveSources(ctx, o.codename, o.specs)
	})
}
