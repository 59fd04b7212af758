package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

type repoInitOptions struct {
	env                                                             *Env
	repo                                                            *repoOptions
	dir                                                             string
	codename, suite, origin, label, description, signWith, validFor string
	components, architectures                                       []string
	limit                                                           int
}

func newRepoInitCmd(env *Env, ro *repoOptions, runF runFunc[repoInitOptions]) *cobra.Command {
	o := &repoInitOptions{env: env, repo: ro}
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
			o.dir = args[0]
			return runVerb(cmd, runF, runRepoInit, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.codename, "codename", "", "distribution codename (its dists/ directory)")
	f.StringVar(&o.suite, "suite", "", "suite name (stable, testing…)")
	f.StringVar(&o.origin, "origin", "", "Origin field of the Release file")
	f.StringVar(&o.label, "label", "", "Label field of the Release file")
	f.StringVar(&o.description, "description", "", "Description field of the Release file")
	f.StringSliceVar(&o.components, "components", nil, "components (default main)")
	f.StringSliceVar(&o.architectures, "architectures", nil, "architectures (default armhf,arm64,amd64)")
	f.StringVar(&o.signWith, "sign-with", "", "secret key file (or fingerprint in the key directory) that signs the Release")
	f.IntVar(&o.limit, "limit", 0, "versions of each package to keep (default 1)")
	f.StringVar(&o.validFor, "valid-for", repo.DefaultValidFor, `how long a published Release stays valid (ValidFor: d days, w weeks, m months); "none" for no Valid-Until`)
	return cmd
}

func runRepoInit(ctx context.Context, o *repoInitOptions) error {
	if o.codename == "" {
		return usageErrorf("repo init: --codename is required (the dists/ directory name, e.g. bookworm)")
	}
	err := repo.Init(o.dir, repo.InitOptions{
		Codename: o.codename, Suite: o.suite, Origin: o.origin, Label: o.label, Description: o.description,
		Components: splitList(o.components), Architectures: splitList(o.architectures), SignWith: o.signWith, Limit: o.limit,
		ValidFor: o.validFor,
	})
	if err != nil {
		return repoError(err)
	}
	ro := o.repo
	ro.basedir = o.dir
	r, err := ro.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	res, err := r.Export(ctx)
	if err != nil {
		return repoError(err)
	}
	if !ro.silent {
		fmt.Fprintf(o.env.Out, "created %s/conf/distributions\n", o.dir)
	}
	return ro.printResult(o.env, res, false)
}

// splitList accepts both "a,b" and "a b".
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}
