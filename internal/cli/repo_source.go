package cli

import (
	"bufio"
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// The verbs of source packages and uploads: includedsc, include,
// removesrc, copysrc, movesrc and dumptracks.

type repoIncludeSourceOptions struct {
	env      *Env
	repo     *repoOptions
	verb     string // "includedsc" or "include"
	codename string
	file     string
	json     bool
}

// includeOptions are the -C, -A, -S and -P of an include verb.
func (o *repoOptions) includeOptions(verb string) (repo.IncludeOptions, error) {
	inc := repo.IncludeOptions{Architectures: o.architectures, Section: o.section, Priority: o.priority}
	switch len(o.components) {
	case 0:
	case 1:
		inc.Component = o.components[0]
	default:
		return inc, usageErrorf("%s: give one component with -C, not %d", verb, len(o.components))
	}
	return inc, nil
}

func newRepoIncludeDscCmd(env *Env, ro *repoOptions, runF runFunc[repoIncludeSourceOptions]) *cobra.Command {
	o := &repoIncludeSourceOptions{env: env, repo: ro, verb: "includedsc"}
	cmd := &cobra.Command{
		Use:   "includedsc CODENAME FILE.dsc",
		Short: "Add a source package (.dsc and its files) to a distribution and publish it",
		Long: `Add a source package to a distribution whose Architectures list "source":
the .dsc and every file it lists (next to it) are checked against the sizes
and checksums the .dsc gives, copied to pool/COMPONENT/PREFIX/SOURCE/, and
the Sources index is published.

Section and Priority are -S and -P, else those of debian/control in the
.debian.tar.* or .diff.gz; the component is -C, else guessed from the
section.`,
		Example: `  lampi-pkg repo -b /srv/repo -C main includedsc bookworm hello_2.9-1.dsc`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.file = args[0], args[1]
			return runVerb(cmd, runF, runRepoIncludeSource, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func newRepoIncludeChangesCmd(env *Env, ro *repoOptions, runF runFunc[repoIncludeSourceOptions]) *cobra.Command {
	o := &repoIncludeSourceOptions{env: env, repo: ro, verb: "include"}
	cmd := &cobra.Command{
		Use:   "include CODENAME FILE.changes",
		Short: "Add an upload (.changes: binaries and source) to a distribution and publish it",
		Long: `Add everything a .changes lists — its .deb files and its source package — to
a distribution (CODENAME decides; the .changes' Distribution field is not
used), in one step: every file must be next to the .changes with the size
and checksums it lists, every binary must be named in its Binary field and
built from its Source. Section and Priority are -S and -P, else those of
the .changes line, else the package's own. Build logs and .buildinfo files
are not added (a note says so); .ddeb and .udeb files go into the debug
and installer lists of their component (DDebComponents, UDebComponents;
none there fails the command).`,
		Example: `  lampi-pkg repo -b /srv/repo -C main include bookworm hello_2.9-1_amd64.changes`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.file = args[0], args[1]
			return runVerb(cmd, runF, runRepoIncludeSource, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoIncludeSource(ctx context.Context, o *repoIncludeSourceOptions) error {
	inc, err := o.repo.includeOptions(o.verb)
	if err != nil {
		return err
	}
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		if o.verb == "include" {
			return r.IncludeChanges(ctx, o.codename, o.file, inc)
		}
		return r.IncludeDsc(ctx, o.codename, o.file, inc)
	})
}

type repoRemoveSrcOptions struct {
	env      *Env
	repo     *repoOptions
	codename string
	source   string
	version  string
	json     bool
}

func newRepoRemoveSrcCmd(env *Env, ro *repoOptions, runF runFunc[repoRemoveSrcOptions]) *cobra.Command {
	o := &repoRemoveSrcOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "removesrc CODENAME SOURCE [VERSION]",
		Short: "Remove a source package and every binary built from it",
		Long: `Remove from every package list of a distribution the source package SOURCE
and every binary package built from it (with VERSION: only those of that
source version), then publish it and delete the pool files nothing needs
any more. Nothing found is not an error (a warning says so).`,
		Example: `  lampi-pkg repo -b /srv/repo removesrc bookworm hello 2.9-1`,
		Args:    cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.source = args[0], args[1]
			if len(args) == 3 {
				o.version = args[2]
			}
			return runVerb(cmd, runF, runRepoRemoveSrc, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoRemoveSrc(ctx context.Context, o *repoRemoveSrcOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		return r.RemoveSource(ctx, o.codename, o.source, o.version)
	})
}

type repoCopySrcOptions struct {
	env       *Env
	repo      *repoOptions
	verb      string // "copysrc" or "movesrc"
	dest, src string
	source    string
	versions  []string
	json      bool
}

func newRepoCopySrcCmd(env *Env, ro *repoOptions, runF runFunc[repoCopySrcOptions]) *cobra.Command {
	return newRepoBySourceCmd(env, ro, "copysrc", runF)
}

func newRepoMoveSrcCmd(env *Env, ro *repoOptions, runF runFunc[repoCopySrcOptions]) *cobra.Command {
	return newRepoBySourceCmd(env, ro, "movesrc", runF)
}

// newRepoBySourceCmd is copysrc or (verb "movesrc") movesrc.
func newRepoBySourceCmd(env *Env, ro *repoOptions, verb string, runF runFunc[repoCopySrcOptions]) *cobra.Command {
	o := &repoCopySrcOptions{env: env, repo: ro, verb: verb}
	cmd := &cobra.Command{
		Use:   verb + " DEST-CODENAME SRC-CODENAME SOURCE [VERSION…]",
		Short: "Copy a source package and every binary built from it to another distribution",
		Long: `Copy from SRC to DEST the source package SOURCE and every binary package
built from it (with VERSIONs: only those of these source versions), into
the package lists both distributions have (limited with -C and -A),
sharing the pool files; DEST's version rules apply, then DEST is published.
Nothing found is not an error (a warning says so).`,
		Example: `  lampi-pkg repo -b /srv/repo copysrc bookworm bookworm-testing hello`,
		Args:    cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dest, o.src, o.source, o.versions = args[0], args[1], args[2], args[3:]
			return runVerb(cmd, runF, runRepoCopySrc, o)
		},
	}
	if verb == "movesrc" {
		cmd.Short = "Move a source package and every binary built from it to another distribution"
		cmd.Long = `Move from SRC to DEST the source package SOURCE and every binary package
built from it (with VERSIONs: only those of these source versions, as dpkg
compares them): each is copied into the package list of DEST with the same
component and architecture (limited with -C, -A and -T; lists DEST lacks
are left alone), under DEST's version rules (it may downgrade, as move
does), then removed from SRC; both are published. Nothing found is not an
error (a warning says so). As in reprepro, SOURCE=VERSION is not a form
of this verb: give the version as its own argument.`
		cmd.Example = `  lampi-pkg repo -b /srv/repo movesrc bookworm bookworm-proposed hello
  lampi-pkg repo -b /srv/repo movesrc bookworm bookworm-proposed hello 2.9-2`
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the changes as JSON")
	return cmd
}

func runRepoCopySrc(ctx context.Context, o *repoCopySrcOptions) error {
	return o.repo.change(ctx, o.env, o.json, func(r *repo.Repo) (*repo.Result, error) {
		if o.verb == "movesrc" {
			return r.MoveSource(ctx, o.dest, o.src, o.repo.selection(), o.source, o.versions)
		}
		return r.CopySource(ctx, o.dest, o.src, o.repo.selection(), o.source, o.versions)
	})
}

// repoSourceCmds are the verbs of this file.
func repoSourceCmds(env *Env, ro *repoOptions) []*cobra.Command {
	return []*cobra.Command{
		newRepoIncludeDscCmd(env, ro, nil), newRepoIncludeChangesCmd(env, ro, nil), newRepoMoveSrcCmd(env, ro, nil),
		newRepoRemoveSrcCmd(env, ro, nil), newRepoCopySrcCmd(env, ro, nil),
		newRepoDumpTracksCmd(env, ro, nil), newRepoProcessIncomingCmd(env, ro, nil),
	}
}

type repoDumpTracksOptions struct {
	env       *Env
	repo      *repoOptions
	codenames []string
	json      bool
}

func newRepoDumpTracksCmd(env *Env, ro *repoOptions, runF runFunc[repoDumpTracksOptions]) *cobra.Command {
	o := &repoDumpTracksOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "dumptracks [CODENAME…]",
		Short: "Print the tracking records of distributions with a Tracking field",
		Long: `Print, as reprepro does, the tracking records of the named distributions
(all when none is named): for each version of each source package, the
pool files that belong to it, each with its type (s source, b binary,
a Architecture: all binary) and how many package lists use it. A
distribution with "Tracking: all" keeps a record while any of its files
is used; a record keeps its files in the pool.`,
		Example: `  lampi-pkg repo -b /srv/repo dumptracks bookworm`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codenames = args
			return runVerb(cmd, runF, runRepoDumpTracks, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the records as JSON")
	return cmd
}

func runRepoDumpTracks(ctx context.Context, o *repoDumpTracksOptions) error {
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return err
	}
	recs, err := r.DumpTracks(ctx, o.codenames...)
	if err != nil {
		return repoError(err)
	}
	if o.json {
		return writeJSON(o.env.Out, recs)
	}
	w := bufio.NewWriter(o.env.Out)
	for _, rec := range recs {
		fmt.Fprintf(w, "Distribution: %s\nSource: %s\nVersion: %s\nFiles:\n", rec.Codename, rec.Source, rec.Version)
		for _, f := range rec.Files {
			fmt.Fprintf(w, " %s %s %d\n", f.File, f.Type, f.Count)
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}
