package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// The verbs that pick packages by name, glob or formula to move, copy or
// remove them: move, copymatched, movematched, copyfilter, movefilter,
// removefilter (copy and remove are in repo_verbs.go).

// newRepoMoveCmd is copy (repo_verbs.go) with its move set.
func newRepoMoveCmd(env *Env, ro *repoOptions, runF runFunc[repoCopyOptions]) *cobra.Command {
	o := &repoCopyOptions{env: env, repo: ro, move: true}
	cmd := &cobra.Command{
		Use:   "move DEST-CODENAME SRC-CODENAME PACKAGE[=VERSION]…",
		Short: "Move packages from one distribution to another",
		Long: `Copy packages from SRC to DEST as copy does, then remove the copied
versions from SRC; publish both. PACKAGE moves its newest version,
PACKAGE=VERSION that version.`,
		Example: `  lampi-pkg repo -b /srv/repo move bookworm bookworm-proposed hi=0.2`,
		Args:    cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dest, o.src, o.packages = args[0], args[1], args[2:]
			return runVerb(cmd, runF, runRepoCopy, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

// repoPickOptions are those of the verbs that take a glob or a formula.
type repoPickOptions struct {
	env       *Env
	repo      *repoOptions
	verb      string // copymatched, movematched, copyfilter, movefilter, removefilter
	dest, src string // removefilter: src only
	pattern   string
	json      bool
}

// newRepoPickCmd makes one of copymatched, movematched, copyfilter,
// movefilter and removefilter.
func newRepoPickCmd(env *Env, ro *repoOptions, verb string, runF runFunc[repoPickOptions]) *cobra.Command {
	o := &repoPickOptions{env: env, repo: ro, verb: verb}
	cmd := &cobra.Command{Args: cobra.ExactArgs(3)}
	switch verb {
	case "copymatched", "movematched":
		cmd.Use = verb + " DEST-CODENAME SRC-CODENAME GLOB"
		cmd.Short = "Copy every package whose name matches a shell glob to another distribution"
		cmd.Long = `Copy every version of every package of SRC whose name matches GLOB (*, ?
and [...]) to DEST, as copy does.`
		cmd.Example = "  lampi-pkg repo -b /srv/repo " + verb + " bookworm bookworm-testing 'lampi-*'"
	case "copyfilter", "movefilter":
		cmd.Use = verb + " DEST-CODENAME SRC-CODENAME FORMULA"
		cmd.Short = "Copy every package matching a reprepro formula to another distribution"
		cmd.Long = `Copy every version of every package of SRC that matches FORMULA (the
syntax of listfilter) to DEST, as copy does.`
		cmd.Example = "  lampi-pkg repo -b /srv/repo " + verb + " bookworm bookworm-testing 'Package (= hi), $Version (>> 0.2)'"
	case "removefilter":
		cmd.Use = "removefilter CODENAME FORMULA"
		cmd.Short = "Remove every package matching a reprepro formula"
		cmd.Long = `Remove every version of every package of a distribution (limited with -C
and -A) that matches FORMULA (the syntax of listfilter), publish it and
delete the pool files nothing needs any more. Nothing matching is not an
error.`
		cmd.Example = "  lampi-pkg repo -b /srv/repo removefilter bookworm 'Package (= hi)'"
		cmd.Args = cobra.ExactArgs(2)
	}
	if verb == "movematched" || verb == "movefilter" {
		cmd.Short = "Move" + cmd.Short[len("Copy"):]
		cmd.Long = "Move" + cmd.Long[len("Copy"):len(cmd.Long)-len("as copy does.")] + "as move does:\nthey are removed from SRC."
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if verb == "removefilter" {
			o.src, o.pattern = args[0], args[1]
		} else {
			o.dest, o.src, o.pattern = args[0], args[1], args[2]
		}
		return runVerb(cmd, runF, runRepoPick, o)
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoPick(ctx context.Context, o *repoPickOptions) error {
	var match func(*repo.Entry) bool
	if o.verb == "copymatched" || o.verb == "movematched" {
		m, err := repo.GlobMatch(o.pattern)
		if err != nil {
			return &usageError{err}
		}
		match = m
	} else {
		f, err := repo.ParseFilter(o.pattern)
		if err != nil {
			return &usageError{err}
		}
		match = f.Match
	}
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		sel := o.repo.selection()
		switch o.verb {
		case "removefilter":
			return r.RemoveFilter(ctx, o.src, sel, match)
		case "movematched", "movefilter":
			return r.CopyMatching(ctx, o.dest, o.src, sel, match, true)
		}
		return r.CopyMatching(ctx, o.dest, o.src, sel, match, false)
	})
}

type repoClearVanishedOptions struct {
	env  *Env
	repo *repoOptions
	json bool
}

func newRepoClearVanishedCmd(env *Env, ro *repoOptions, runF runFunc[repoClearVanishedOptions]) *cobra.Command {
	o := &repoClearVanishedOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "clearvanished",
		Short: "Forget the package lists of distributions no longer configured",
		Long: `Forget the package lists of distributions, components and architectures
that conf/distributions no longer has, and delete the pool files nothing
needs any more. A list that still holds packages is kept unless --delete
is given. dists/ is left as it is; a distribution configured again later
starts empty (it is not taken over again from its old indices).`,
		Example: `  lampi-pkg repo -b /srv/repo --delete clearvanished`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRepoClearVanished, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runRepoClearVanished(ctx context.Context, o *repoClearVanishedOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		return r.ClearVanished(ctx, o.repo.delete > 0)
	})
}
