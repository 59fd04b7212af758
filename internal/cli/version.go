package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

const versionSyntaxHint = "a Debian version is [epoch:]upstream[-revision], e.g. 1:2.0~rc1-3; the upstream part starts with a digit"

func newVersionCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Check and compare Debian version strings exactly as dpkg does",
		Long: `Check and compare Debian package versions ([epoch:]upstream[-revision])
with dpkg's rules: the same syntax as 'dpkg --validate-version' and the same
order as 'dpkg --compare-versions' ('~' sorts before everything, so
1.0~rc1 < 1.0 < 1.0-1 < 1.0+b1 < 1.0.1).`,
		// Runnable, so that cobra refuses unknown subcommands (exit 2)
		// instead of printing the help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newVersionCompareCmd(env, nil), newVersionCheckCmd(env, nil))
	return cmd
}

// versionCompareOptions are the arguments of "version compare": VERSION
// RELATION VERSION.
type versionCompareOptions struct {
	env       *Env
	a, rel, b string
}

func newVersionCompareCmd(env *Env, runF runFunc[versionCompareOptions]) *cobra.Command {
	o := &versionCompareOptions{env: env}
	return &cobra.Command{
		Use:   "compare VERSION RELATION VERSION",
		Short: "Compare two versions like dpkg --compare-versions",
		Long: `Tell whether "VERSION RELATION VERSION" holds, like 'dpkg --compare-versions',
through the exit status alone: 0 when it holds, 1 when it does not, 2 when a
version or the relation is invalid (with a message).

Relations: lt le eq ne ge gt, or << <= = >= >> as in Depends fields. The
obsolete < and > mean <= and >= (a warning says so). lt-nl le-nl ge-nl gt-nl
treat an empty version as later than every version.

An empty VERSION ('') or "<unknown>" is a missing version: it equals another
missing version and sorts before every version (after it with the -nl
relations). Unlike dpkg, which only warns about some invalid versions (such as
'a1' or '1_0') and compares them anyway, every invalid version is refused.
Put '--' before the arguments if the first version starts with '-'.`,
		Example: `  lampi-pkg version compare 1.0~rc1 lt 1.0 && echo older
  lampi-pkg version compare "$(dpkg-query -W -f '${Version}' hi)" ge-nl 1.2-1`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.a, o.rel, o.b = args[0], args[1], args[2]
			return runVerb(cmd, runF, runVersionCompare, o)
		},
	}
}

func runVersionCompare(_ context.Context, o *versionCompareOptions) error {
	a, err := parseComparedVersion(o.a)
	if err != nil {
		return err
	}
	rel, err := deb.ParseVersionRelation(o.rel)
	if err != nil {
		return withHint(usageErrorf("%w", err), "lampi-pkg version compare --help")
	}
	b, err := parseComparedVersion(o.b)
	if err != nil {
		return err
	}
	if rel.Obsolete() {
		means := map[string]string{"<": "<= (le); for strictly less write << (lt)", ">": ">= (ge); for strictly greater write >> (gt)"}[rel.String()]
		fmt.Fprintf(o.env.Err, "lampi-pkg: warning: relation %q is obsolete: it means %s\n", rel.String(), means)
	}
	if rel.Holds(a, b) {
		return nil
	}
	return &ExitError{Code: ExitFailure}
}

// parseComparedVersion reads a compare argument: "" and "<unknown>" are
// the missing version, as for dpkg.
func parseComparedVersion(s string) (deb.Version, error) {
	if s == "" || s == "<unknown>" {
		return deb.Version{}, nil
	}
	v, err := deb.ParseVersion(s)
	if err != nil {
		return deb.Version{}, withHint(usageErrorf("%w", err), versionSyntaxHint)
	}
	return v, nil
}

// versionReport is one line of "version check --json".
type versionReport struct {
	Version  string `json:"version"`
	Valid    bool   `json:"valid"`
	Epoch    int    `json:"epoch"`
	Upstream string `json:"upstream"`
	Revision string `json:"revision"`
	Error    string `json:"error"`
}

type versionCheckOptions struct {
	env      *Env
	versions []string
	json     bool
}

func newVersionCheckCmd(env *Env, runF runFunc[versionCheckOptions]) *cobra.Command {
	o := &versionCheckOptions{env: env}
	cmd := &cobra.Command{
		Use:   "check VERSION...",
		Short: "Check versions like dpkg --validate-version",
		Long: `Check that each VERSION is one dpkg accepts ('dpkg --validate-version'),
and show its parts. The exit status is 0 when all are valid, 1 when any is
invalid (each gets a message saying what is wrong and where), 2 on bad usage.

Like dpkg, leading and trailing blanks are ignored and the epoch may carry a
sign ("+1:2.0"); the canonical form is shown when it differs from the input.

With --json each VERSION gives one line holding a JSON object:
  {"version", "valid", "epoch", "upstream", "revision", "error"}
with "error" empty and the parts filled in when valid; the exit status is the
same.`,
		Example: `  lampi-pkg version check 1:2.0~rc1-3
  lampi-pkg version check --json 1.0 1.0- | jq -r 'select(.valid|not).error'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.versions = args
			return runVerb(cmd, runF, runVersionCheck, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object per version")
	return cmd
}

func runVersionCheck(_ context.Context, o *versionCheckOptions) error {
	out := o.env.Out
	enc := jsonLines(out)
	var invalid []error
	for _, s := range o.versions {
		v, err := deb.ParseVersion(s)
		if o.json {
			r := versionReport{Version: s, Valid: err == nil, Epoch: v.Epoch, Upstream: v.Upstream, Revision: v.Revision}
			if err != nil {
				r.Error = err.Error()
			}
			if jerr := enc.Encode(r); jerr != nil {
				return jerr
			}
		} else if err == nil {
			fmt.Fprintln(out, describeVersion(s, v))
		}
		if err != nil {
			invalid = append(invalid, err)
		}
	}
	switch {
	case len(invalid) == 0:
		return nil
	case o.json:
		return &ExitError{Code: ExitFailure}
	}
	// One message per invalid version; the last goes through the
	// common error path, which adds the hint once.
	for _, err := range invalid[:len(invalid)-1] {
		fmt.Fprintf(o.env.Err, "lampi-pkg: %v\n", err)
	}
	return &ExitError{Code: ExitFailure, Err: withHint(invalid[len(invalid)-1], versionSyntaxHint)}
}

// describeVersion is the text line of a valid version.
func describeVersion(s string, v deb.Version) string {
	name, canon := s, ""
	if v.String() != s {
		name, canon = strconv.Quote(s), ", canonical form "+v.String()
	}
	rev := "no revision"
	if v.Revision != "" {
		rev = "revision " + v.Revision
	}
	return fmt.Sprintf("%s: valid%s: epoch %d, upstream %s, %s", name, canon, v.Epoch, v.Upstream, rev)
}
