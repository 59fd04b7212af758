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

// The read-only verbs that look across distributions: ls and
// _listcodenames. Scripts capture their standard output, so it carries
// exactly reprepro's lines and nothing else.

type repoLsOptions struct {
	env         *Env
	repo        *repoOptions
	pkg         string
	json        bool
	byComponent bool // lsbycomponent
}

func newRepoLsCmd(env *Env, ro *repoOptions, runF runFunc[repoLsOptions]) *cobra.Command {
	o := &repoLsOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "ls PACKAGE",
		Short: "Show every version of a package in every distribution",
		Long: `Show every version of PACKAGE in every distribution (limited with -C and
-A), one line per version and distribution, as reprepro prints them:

  hello |  2.9-2 | bookworm | amd64, armhf
  hello | 2.9-10 |  testing | amd64

Distributions come in conf/distributions order, versions newest first.
Nothing found prints nothing and is not an error.`,
		Example: `  lampi-pkg repo -b /srv/repo ls hi`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.pkg = args[0]
			return runVerb(cmd, runF, runRepoLs, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the lines as JSON")
	return cmd
}

// newRepoLsByComponentCmd is lsbycomponent: ls with a line per component.
func newRepoLsByComponentCmd(env *Env, ro *repoOptions, runF runFunc[repoLsOptions]) *cobra.Command {
	cmd := newRepoLsCmd(env, ro, func(ctx context.Context, o *repoLsOptions) error {
		o.byComponent = true
		if runF != nil {
			return runF(ctx, o)
		}
		return runRepoLs(ctx, o)
	})
	cmd.Use = "lsbycomponent PACKAGE"
	cmd.Short = "Show every version of a package in every distribution and component"
	cmd.Long = `As ls, one line per version, distribution and component, with the component
named, as reprepro prints them:

  kvm | 1.2 | buster |     main | amd64
  kvm | 1.2 | buster | non-free | amd64`
	cmd.Example = `  lampi-pkg repo -b /srv/repo lsbycomponent hi`
	return cmd
}

func runRepoLs(ctx context.Context, o *repoLsOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	ls := r.Ls
	if o.byComponent {
		ls = r.LsByComponent
	}
	lines, err := ls(ctx, o.repo.selection(), o.pkg)
	if err != nil {
		return repoError(err)
	}
	if o.json {
		if lines == nil {
			lines = []repo.LsLine{}
		}
		return writeJSON(o.env.Out, lines)
	}
	return writeLs(o.env.Out, o.pkg, lines)
}

// writeLs prints ls lines with reprepro's alignment: versions, codenames
// and (lsbycomponent) components right-aligned to the widest of each.
func writeLs(out io.Writer, pkg string, lines []repo.LsLine) error {
	vw, cw, mw := 0, 0, 0
	for _, l := range lines {
		vw, cw, mw = max(vw, len(l.Version)), max(cw, len(l.Codename)), max(mw, len(l.Component))
	}
	w := bufio.NewWriter(out)
	for _, l := range lines {
		comp := ""
		if l.Component != "" {
			comp = fmt.Sprintf("%*s | ", mw, l.Component)
		}
		fmt.Fprintf(w, "%s | %*s | %*s | %s%s\n", pkg, vw, l.Version, cw, l.Codename, comp, strings.Join(l.Architectures, ", "))
	}
	return w.Flush()
}

type repoListCodenamesOptions struct {
	env  *Env
	repo *repoOptions
}

func newRepoListCodenamesCmd(env *Env, ro *repoOptions, runF runFunc[repoListCodenamesOptions]) *cobra.Command {
	o := &repoListCodenamesOptions{env: env, repo: ro}
	return &cobra.Command{
		Use:   "_listcodenames",
		Short: "Print the Codename of every distribution, one per line",
		Long: `Print the Codename of every distribution of conf/distributions, one per
line, in the file's order (for scripts and shell completion).`,
		Example: `  lampi-pkg repo -b /srv/repo _listcodenames`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRepoListCodenames, o)
		},
	}
}

func runRepoListCodenames(ctx context.Context, o *repoListCodenamesOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(o.env.Out)
	for _, d := range r.Conf.Distributions {
		fmt.Fprintln(w, d.Codename)
	}
	return w.Flush()
}

type repoListConfIDsOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
}

func newRepoListConfIDsCmd(env *Env, ro *repoOptions, runF runFunc[repoListConfIDsOptions]) *cobra.Command {
	o := &repoListConfIDsOptions{env: env, repo: ro}
	return &cobra.Command{
		Use:   "_listconfidentifiers [CODENAME…]",
		Short: "Print the package lists conf/distributions defines, one per line",
		Long: `Print the identifier of every package list conf/distributions defines (of
the named distributions, else of all, limited with -C, -A and -T), in
configuration order, as reprepro does: "bookworm|main|amd64",
"bookworm|main|source", "d|bookworm|main|amd64" for a debug list,
"u|bookworm|main|amd64" for an installer list.`,
		Example: `  lampi-pkg repo -b /srv/repo _listconfidentifiers bookworm`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoListConfIDs, o)
		},
	}
}

func runRepoListConfIDs(ctx context.Context, o *repoListConfIDsOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	dists := r.Conf.Distributions
	if len(o.codenames) > 0 {
		dists = nil
		for _, c := range o.codenames {
			d, err := r.Conf.Distribution(c)
			if err != nil {
				return repoError(err)
			}
			dists = append(dists, d)
		}
	}
	w := bufio.NewWriter(o.env.Out)
	for _, d := range dists {
		ts, err := o.repo.selection().Targets(d)
		if err != nil {
			return repoError(err)
		}
		for _, t := range ts {
			fmt.Fprintln(w, t.String())
		}
	}
	return w.Flush()
}
