package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// refuseUnknownVerbs makes every command that only groups verbs ("repo",
// "fleet", "key", …) refuse an argument it does not know. Left alone, cobra
// prints the group's help for "lampi-pkg repo no-such-verb" and exits 0, so a
// script carries on as if the verb had worked. Given no argument at all, a
// group still prints its help: that is a request for it, not a mistake.
func refuseUnknownVerbs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownVerbs(sub)
	}
	if c.Runnable() || !c.HasSubCommands() || !c.HasParent() {
		return // the root already refuses unknown verbs (cobra's legacyArgs)
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := "unknown command " + quote(args[0]) + " for " + quote(cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its root lookup sets
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErrorf("%s", msg)
	}
}

func quote(s string) string { return `"` + s + `"` }

// runFunc is what a verb does with its parsed options. Each verb has one
// (runBuild, runSign, …); its constructor also takes one as runF, a hook
// through which tests see the options that the flags and arguments gave
// without running anything. A nil runF runs the verb.
type runFunc[O any] func(ctx context.Context, o *O) error

// runVerb is the body of every verb's RunE: runF if the test set one, else
// the verb's own run, under the command's context (the one Main built).
func runVerb[O any](cmd *cobra.Command, runF, run runFunc[O], o *O) error {
	if runF != nil {
		return runF(cmd.Context(), o)
	}
	return run(cmd.Context(), o)
}
