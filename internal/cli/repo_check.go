package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

func newRepoCheckCmd(env *Env, o *repoOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check [CODENAME…]",
		Short: "Check that every package's pool file and every published index is there",
		Long: `Check the named distributions (all by default): every package's pool file
is registered, referenced and present, every index the published
Release lists can be fetched by hash, as apt does, and the Release has not
expired (Valid-Until). Exit status 1 lists the problems. Checking all
distributions also warns about pool files that interrupted commands left
(see dumpunreferenced).`,
		Example: `  lampi-pkg repo -b /srv/repo check`,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			problems, err := r.Check(cmd.Context(), args...)
			return reportProblems(env, cmd, o, problems, err)
		},
	}
}

func reportProblems(env *Env, cmd *cobra.Command, o *repoOptions, problems []string, err error) error {
	for _, p := range problems {
		fmt.Fprintln(env.Err, p)
	}
	if err != nil {
		return withHint(err, "re-include the packages whose files are missing or damaged; 'lampi-pkg repo export' republishes dists/")
	}
	if !o.silent {
		fmt.Fprintln(cmd.OutOrStdout(), "ok")
	}
	return nil
}

func newRepoCheckPoolCmd(env *Env, o *repoOptions) *cobra.Command {
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
			fast := false
			if len(args) == 1 {
				if args[0] != "fast" {
					return usageErrorf("checkpool: the only argument is \"fast\", not %q", args[0])
				}
				fast = true
			}
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			problems, err := r.CheckPool(cmd.Context(), fast)
			return reportProblems(env, cmd, o, problems, err)
		},
	}
}

func newRepoDumpUnreferencedCmd(env *Env, o *repoOptions) *cobra.Command {
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
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			names, err := r.DumpUnreferenced(cmd.Context())
			if err != nil {
				return repoError(err)
			}
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
}

func newRepoDeleteUnreferencedCmd(env *Env, o *repoOptions) *cobra.Command {
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
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			res, err := r.DeleteUnreferenced(cmd.Context())
			if err != nil {
				return repoError(err)
			}
			if !o.silent {
				for _, n := range res.Deleted {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", n)
				}
			}
			return nil
		},
	}
}

func newRepoCreateSymlinksCmd(env *Env, o *repoOptions) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "createsymlinks [CODENAME…]",
		Short: "Make dists/SUITE symbolic links to dists/CODENAME",
		Long: `Make dists/<Suite> a symbolic link to <Codename> for the named
distributions (all by default), so that "deb … stable main" finds the
distribution whose Suite is stable. Existing links to something else are
kept unless --delete is given.`,
		Example: `  lampi-pkg repo -b /srv/repo createsymlinks`,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			made, skipped, err := r.CreateSymlinks(cmd.Context(), replace, args...)
			for _, s := range skipped {
				fmt.Fprintf(env.Err, "warning: not linked: %s\n", s)
			}
			if !o.silent {
				for _, m := range made {
					fmt.Fprintf(cmd.OutOrStdout(), "linked %s\n", m)
				}
			}
			return repoError(err)
		},
	}
	cmd.Flags().BoolVar(&replace, "delete", false, "replace existing links that point elsewhere")
	return cmd
}

type repoInitOptions struct {
	codename, suite, origin, label, description, signWith, validFor string
	components, architectures                                       []string
	limit                                                           int
}

func newRepoInitCmd(env *Env, o *repoOptions) *cobra.Command {
	io := &repoInitOptions{}
	cmd := &cobra.Command{
		Use:   "init DIR --codename CODENAME [--suite SUITE] [--components …] [--architectures …] [--sign-with KEY]",
		Short: "Create a repository: conf/distributions, then an empty published tree",
		Long: `Create DIR/conf/distributions with one distribution (reprepro's format,
so reprepro can read it too), then publish it empty, so that apt can
already update from it. --sign-with names a secret key file (see
'lampi-pkg key generate'); export its public part for the devices with
'lampi-pkg key export'.

The distribution gets "ValidFor: 7d" (--valid-for): its Release files
carry a Valid-Until a week ahead, so that apt on the devices refuses an
InRelease that a mirror or cache kept serving for longer (a freeze
attack) instead of silently staying on old packages. The Release must
then be re-signed before it expires: 'lampi-pkg serve' does it on its
own; without serve, run 'lampi-pkg repo export --renew' from cron.`,
		Example: `  lampi-pkg repo init /srv/repo --codename bookworm --suite stable --sign-with signing-key.asc
  lampi-pkg repo init /srv/repo --codename lampi --components main,beta --architectures armhf`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if io.codename == "" {
				return usageErrorf("repo init: --codename is required (the dists/ directory name, e.g. bookworm)")
			}
			err := repo.Init(args[0], repo.InitOptions{
				Codename: io.codename, Suite: io.suite, Origin: io.origin, Label: io.label, Description: io.description,
				Components: splitList(io.components), Architectures: splitList(io.architectures), SignWith: io.signWith, Limit: io.limit,
				ValidFor: io.validFor,
			})
			if err != nil {
				return repoError(err)
			}
			o.basedir = args[0]
			r, err := o.open(env, cmd)
			if err != nil {
				return err
			}
			res, err := r.Export(cmd.Context())
			if err != nil {
				return repoError(err)
			}
			if !o.silent {
				fmt.Fprintf(cmd.OutOrStdout(), "created %s/conf/distributions\n", args[0])
			}
			return o.printResult(env, cmd, res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&io.codename, "codename", "", "distribution codename (its dists/ directory)")
	f.StringVar(&io.suite, "suite", "", "suite name (stable, testing…)")
	f.StringVar(&io.origin, "origin", "", "Origin field of the Release file")
	f.StringVar(&io.label, "label", "", "Label field of the Release file")
	f.StringVar(&io.description, "description", "", "Description field of the Release file")
	f.StringSliceVar(&io.components, "components", nil, "components (default main)")
	f.StringSliceVar(&io.architectures, "architectures", nil, "architectures (default armhf,arm64,amd64)")
	f.StringVar(&io.signWith, "sign-with", "", "secret key file (or fingerprint in the key directory) that signs the Release")
	f.IntVar(&io.limit, "limit", 0, "versions of each package to keep (default 1)")
	f.StringVar(&io.validFor, "valid-for", repo.DefaultValidFor, `how long a published Release stays valid (ValidFor: d days, w weeks, m months); "none" for no Valid-Until`)
	return cmd
}

// splitList accepts both "a,b" and "a b".
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}
