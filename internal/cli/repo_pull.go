package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

type repoPullOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	check     bool
	json      bool
}

func newRepoPullCmd(env *Env, ro *repoOptions, check bool, runF runFunc[repoPullOptions]) *cobra.Command {
	o := &repoPullOptions{env: env, repo: ro, check: check}
	verb, short := "pull", "Pull newer packages from other distributions of the repository, as conf/pulls says"
	if check {
		verb, short = "checkpull", "Show what pull would change, changing nothing"
	}
	cmd := &cobra.Command{
		Use:   verb + " [CODENAME…]",
		Short: short,
		Long: `Pull packages into the distributions named (all with a Pull field when none
is) from other distributions of the same repository, as reprepro's pull
does: each word of a distribution's Pull field names a paragraph of
conf/pulls (Name, From, Components, UDebComponents, DDebComponents,
Architectures with FROM>INTO, FilterFormula, FilterList, FilterSrcList;
any other field is refused), or is "-": what no rule after it offers is
deleted. Per package list the newest version the rules offer replaces the
version in use when it is newer; an older one changes nothing. Every list
is computed from the state before the command, and all distributions
change in one step or not at all (-C, -A and -T narrow the lists).
checkpull prints what would change, as reprepro's checkpull does.`,
		Example: `  lampi-pkg repo -b /srv/repo checkpull stable
  lampi-pkg repo -b /srv/repo pull stable`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoPull, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runRepoPull(ctx context.Context, o *repoPullOptions) error {
	r, err := o.repo.open(ctx, o.env, !o.check)
	if err != nil {
		return err
	}
	res, err := r.Pull(ctx, o.codenames, repo.PullOptions{Selection: o.repo.selection(), Check: o.check})
	if err != nil {
		return repoError(err)
	}
	if o.check && !o.repo.silent && !o.json {
		fmt.Fprintln(o.env.Err, "Calculating packages to get...")
	}
	if !o.check {
		return o.repo.printResult(o.env, &res.Result, o.json)
	}
	if o.json {
		return writeJSON(o.env.Out, res.Targets)
	}
	// reprepro's verbosity: -v counts 1, -V 5.
	level := o.repo.verbose - o.repo.veryVerbose + 5*o.repo.veryVerbose
	return writeCheckPull(o.env.Out, res.Targets, level)
}

// writeCheckPull prints the plan as reprepro's checkpull does.
func writeCheckPull(out io.Writer, targets []repo.PullTarget, verbose int) error {
	w := bufio.NewWriter(out)
	for _, t := range targets {
		fmt.Fprintf(w, "Updates needed for '%s':\n", t.Target)
		for _, it := range t.Items {
			switch it.Action {
			case repo.PullDelete:
				if it.Best != "" {
					fmt.Fprintf(w, "'%s': '%s' will be deleted (best new: '%s')\n", it.Package, it.OldVersion, it.Best)
				} else {
					fmt.Fprintf(w, "'%s': '%s' will be deleted (no longer available or superseded)\n", it.Package, it.OldVersion)
				}
			case repo.PullSkip:
				fmt.Fprintf(w, "'%s': will NOT be added as '%s'\n", it.Package, it.Best)
			case repo.PullKeep:
				if it.Best != "" && verbose > 1 {
					fmt.Fprintf(w, "'%s': '%s' will be kept (best new: '%s')\n", it.Package, it.OldVersion, it.Best)
				} else if it.Best == "" && verbose > 0 {
					fmt.Fprintf(w, "'%s': '%s' will be kept (unavailable for reload)\n", it.Package, it.OldVersion)
				}
			case repo.PullUpgrade:
				fmt.Fprintf(w, "'%s': '%s' will be upgraded to '%s' (from '%s'):\n files needed: %s\n", it.Package, it.OldVersion, it.Version, it.Rule, strings.Join(it.Files, " "))
			case repo.PullAdd:
				fmt.Fprintf(w, "'%s': newly installed as '%s' (from '%s'):\n files needed: %s\n", it.Package, it.Version, it.Rule, strings.Join(it.Files, " "))
			}
		}
	}
	return w.Flush()
}
