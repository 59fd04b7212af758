package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

type repoIncomingOptions struct {
	env     *Env
	repo    *repoOptions
	rule    string
	changes string
	json    bool
}

func newRepoProcessIncomingCmd(env *Env, ro *repoOptions, runF runFunc[repoIncomingOptions]) *cobra.Command {
	o := &repoIncomingOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "processincoming RULESET [FILE.changes]",
		Short: "Include the uploads waiting in an incoming directory (conf/incoming)",
		Long: `Process the incoming queue RULESET, a paragraph of conf/incoming (Name,
IncomingDir, TempDir, Allow, Default, Multiple, Options, Permit, Cleanup):
every *.changes in IncomingDir, or only FILE.changes (a file name there).

Each upload and the files it lists are copied into TempDir first and read
only from there; a listed name with a directory part, or a file that is a
symbolic link, refuses the upload. The distribution is chosen from the
.changes' Distribution field through Allow (NAME or FROM>INTO) and Default.
A distribution with an Uploaders file takes only what it allows; signatures
are checked against the keys in the key directory (conf/keys, --keydir).
An upload older than what the distribution holds is refused, unless Permit
lists older_version: it is then included as include does (with Limit: N an
older version among the N newest is added, else skipped, exit 0).

A processed upload's files are deleted from IncomingDir; a refused one is
left there (Cleanup: on_deny, on_error delete it) and the command exits
non-zero. Fields lampi-pkg does not implement (LogDir, MorgueDir,
limit_arch_all, unlisted_binaries) are refused, never ignored.`,
		Example: `  lampi-pkg repo -b /srv/repo processincoming buster-upload
  lampi-pkg repo -b /srv/repo processincoming buster-upload hello_2.9-2_amd64.changes`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.rule = args[0]
			if len(args) == 2 {
				o.changes = args[1]
			}
			return runVerb(cmd, runF, runRepoProcessIncoming, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print each upload's outcome as JSON")
	return cmd
}

func runRepoProcessIncoming(ctx context.Context, o *repoIncomingOptions) error {
	r, err := o.repo.open(ctx, o.env, true)
	if err != nil {
		return err
	}
	res, err := r.ProcessIncoming(ctx, o.rule, o.changes)
	if res == nil {
		if errors.Is(err, repo.ErrConfig) {
			return withHint(err, "fix conf/incoming (or the file named) at the place shown")
		}
		return repoError(err)
	}
	if o.json {
		if jerr := writeJSON(o.env.Out, res); jerr != nil {
			return jerr
		}
	} else {
		for _, u := range res.Uploads {
			if u.Err != nil {
				if !o.repo.silent {
					fmt.Fprintf(o.env.Err, "refused %s: %v\n", u.Changes, u.Err)
				}
				continue
			}
			if err := o.repo.printResult(o.env, u.Result, false); err != nil {
				return err
			}
		}
		if len(res.Uploads) == 0 && !o.repo.silent {
			fmt.Fprintln(o.env.Err, "no .changes to process")
		}
	}
	if errors.Is(err, repo.ErrConfig) {
		return withHint(err, "fix conf/incoming (or the file named) at the place shown")
	}
	if errors.Is(err, repo.ErrUpload) {
		return withHint(err, "the messages above say why; fix the upload or conf/incoming and run processincoming again (refused uploads stay in IncomingDir unless Cleanup says on_deny or on_error)")
	}
	return repoError(err)
}
