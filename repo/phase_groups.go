package repo

import (
	"context"
	"fmt"
	"strings"
)

// PhasedGroupsField is the Packages stanza field that names the rollout
// groups offered a version whatever its Phased-Update-Percentage
// ("Lampi-Phased-Groups: canary, building-3"). lampi-agent reads it (the
// same name is agent/state.PhasedGroupsField); apt ignores fields it does
// not know, so plain apt clients follow the percentage alone.
const PhasedGroupsField = "Lampi-Phased-Groups"

// PhaseVersionGroups is PhaseVersion that also sets, in the same signed
// publish, the groups offered the version whatever the percentage (none
// removes the field). Group names are 1–32 characters of [a-z0-9.-]
// starting with a letter or digit.
func (r *Repo) PhaseVersionGroups(ctx context.Context, codename, name, version string, percent int, groups []string) (*Result, error) {
	for _, g := range groups {
		if err := validGroup(g); err != nil {
			return nil, fmt.Errorf("phase %s %s %s: %w", codename, name, version, err)
		}
	}
	extra := map[string]string{PhasedGroupsField: strings.Join(groups, ", ")}
	return r.setPhase(ctx, codename, Selection{}, name+" "+version, percent, extra, versionOnly(version))
}

// validGroup keeps a group name to what lampi-agent accepts, and so out
// of the stanza's syntax (no newline, comma or colon).
func validGroup(g string) error {
	ok := g != "" && len(g) <= 32
	for i := 0; ok && i < len(g); i++ {
		c := g[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '.')
	}
	if !ok {
		return fmt.Errorf("group %q: use 1 to 32 lowercase letters, digits, '-' and '.', starting with a letter or digit", g)
	}
	return nil
}
