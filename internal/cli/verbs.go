package cli

import (
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
