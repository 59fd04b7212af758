package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

type repoCheckOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	targets   bool // compare the publish targets instead (repo_target.go)
	repair    bool
	json      bool
}

func newRepoCheckCmd(env *Env, ro *repoOptions, runF runFunc[repoCheckOptions]) *cobra.Command {
	o := &repoCheckOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "check [CODENAME…]",
		Short: "Check that every package's pool file and every published index is there",
		Long: `Check the named distributions (all by default): every package's pool file
is registered, referenced and present, every index the published
Release lists can be fetched by hash, as apt does, and the Release has not
expired (Valid-Until). Exit status 1 lists the problems. Checking all
distributions also warns about pool files that interrupted commands left
(see dumpunreferenced).

With --targets or --publish-to, check compares each publish target
(conf/targets, --publish-to) with the repository instead: objects missing,
different (size, checksum) or extra; --repair uploads the missing and
different ones.`,
		Example: `  lampi-pkg repo -b /srv/repo check
  lampi-pkg repo -b /srv/repo --publish-to s3://apt/lampi --s3-endpoint minio:9000 check --repair`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoCheck, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.targets, "targets", false, "compare the publish targets (conf/targets, --publish-to) with the repository")
	f.BoolVar(&o.repair, "repair", false, "with --targets or --publish-to: upload what a target lacks or holds in another version")
	f.BoolVar(&o.json, "json", false, "print the target report as JSON")
	return cmd
}

func runRepoCheck(ctx context.Context, o *repoCheckOptions) error {
	if len(o.repo.target.publishTo) > 0 || o.repair || o.targets {
		return runTargetCheck(ctx, o) // repo_target.go
	}
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	problems, err := r.Check(ctx, o.codenames...)
	return reportProblems(o.env, o.repo, problems, err)
}

func reportProblems(env *Env, ro *repoOptions, problems []string, err error) error {
	for _, p := range problems {
		fmt.Fprintln(env.Err, p)
	}
	if err != nil {
		return withHint(err, "re-include the packages whose files are missing or damaged; 'lampi-pkg repo export' republishes dists/")
	}
	if !ro.silent {
		fmt.Fprintln(env.Out, "ok")
	}
	return nil
}

type repoCheckPoolOptions struct {
	env  *Env
	repo *repoOptions
	fast bool
}

func newRepoCheckPoolCmd(env *Env, ro *repoOptions, runF runFunc[repoCheckPoolOptions]) *cobra.Command {
	o := &repoCheckPoolOptions{env: env, repo: ro}
	return &cobra.Command{
		Use:   "checkpool [fast]",
		Short: "Verify every pool file against its recorded checksums",
		Long: `Read every pool file the repository knows and compare its size and
checksums with those recorded when it was included ("fast": only check
that it exists). Exit status 1 lists the problems. Pool files the
repository does not know, which interrupted commands left, are warned
about (they are no damage; deleteunreferenced deletes them).`,
		Example: `  lampi-pkg repo -b /srv/repo checkpool`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "fast" {
				return usageErrorf("checkpool: the only argument is \"fast\", not %q", args[0])
			}
			o.fast = len(args) == 1
			return runVerb(cmd, runF, runRepoCheckPool, o)
		},
	}
}

func runRepoCheckPool(ctx context.Context, o *repoCheckPoolOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	problems, err := r.CheckPool(ctx, o.fast)
	return reportProblems(o.env, o.repo, problems, err)
}

// repoPoolOptions are the options of the verbs that take no arguments
// and no flags of their own: dumpunreferenced and deleteunreferenced.
type repoPoolOptions struct {
	env  *Env
	repo *repoOptions
}

func newRepoDumpUnreferencedCmd(env *Env, ro *repoOptions, runF runFunc[repoPoolOptions]) *cobra.Command {
	o := &repoPoolOptions{env: env, repo: ro}
	return &cobra.Command{
		Use:   "dumpunreferenced",
		Short: "List pool files nothing needs any more",
		Long: `List the pool files nothing needs any more: those that lost their last
package (kept by --keepunreferencedfiles, or by a command interrupted
before it deleted them), and those a command killed while including
packages wrote but never recorded, which no index published under dists/
names. Files a running command is writing are not listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRepoDumpUnreferenced, o)
		},
	}
}

func runRepoDumpUnreferenced(ctx context.Context, o *repoPoolOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	names, err := r.DumpUnreferenced(ctx)
	if err != nil {
		return repoError(err)
	}
	for _, n := range names {
		fmt.Fprintln(o.env.Out, n)
	}
	return nil
}

func newRepoDeleteUnreferencedCmd(env *Env, ro *repoOptions, runF runFunc[repoPoolOptions]) *cobra.Command {
	o := &repoPoolOptions{env: env, repo: ro}
	return &cobra.Command{
		Use:   "deleteunreferenced",
		Short: "Delete pool files nothing needs any more",
		Long: `Delete what dumpunreferenced lists, under the repository lock. A file that
an index published under dists/ still names (after a remove with
--export=never, until the next export) is never deleted: it is kept, with
a warning. The next writing command already deletes the files of a
command killed while including packages; this finds the rest (after a
power loss, or left by an older lampi-pkg).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRepoDeleteUnreferenced, o)
		},
	}
}

func runRepoDeleteUnreferenced(ctx context.Context, o *repoPoolOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	res, err := r.DeleteUnreferenced(ctx)
	if err != nil {
		return repoError(err)
	}
	if !o.repo.silent {
		for _, n := range res.Deleted {
			fmt.Fprintf(o.env.Out, "deleted %s\n", n)
		}
	}
	return nil
}

type repoCreateSymlinksOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	replace   bool
}

func newRepoCreateSymlinksCmd(env *Env, ro *repoOptions, runF runFunc[repoCreateSymlinksOptions]) *cobra.Command {
	o := &repoCreateSymlinksOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "createsymlinks [CODENAME…]",
		Short: "Make dists/SUITE symbolic links to dists/CODENAME",
		Long: `Make dists/<Suite> a symbolic link to <Codename> for the named
distributions (all by default), so that "deb … stable main" finds the
distribution whose Suite is stable. Existing links to something else are
kept unless --delete is given.`,
		Example: `  lampi-pkg repo -b /srv/repo createsymlinks`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			// reprepro's global --delete, given before or after the verb.
			o.replace = ro.delete > 0
			return runVerb(cmd, runF, runRepoCreateSymlinks, o)
		},
	}
	return cmd
}

func runRepoCreateSymlinks(ctx context.Context, o *repoCreateSymlinksOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	made, skipped, err := r.CreateSymlinks(ctx, o.replace, o.codenames...)
	for _, s := range skipped {
		fmt.Fprintf(o.env.Err, "warning: not linked: %s\n", s)
	}
	if !o.repo.silent {
		for _, m := range made {
			fmt.Fprintf(o.env.Out, "linked %s\n", m)
		}
	}
	return repoError(err)
}
