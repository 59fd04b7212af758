package repo

import (
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Work or refuse: a field of conf/distributions or an entry of
// conf/options that lampi-pkg does not honour stops every command with
// the file, line, name and what to do, instead of being read and
// ignored — a repository that silently lacks its udebs, its Contents
// files or its override data is worse than one that does not open.
// docs/repo.md has the table of reprepro's fields and options and what
// lampi-pkg does with each.

// distFields are the fields of conf/distributions that lampi-pkg reads
// (lower case). Archive, Update and Pull are read by their own verbs' code.
var distFields = map[string]bool{
	"codename": true, "suite": true, "version": true, "origin": true, "label": true,
	"description": true, "architectures": true, "components": true, "signwith": true,
	"signed-by": true, "notautomatic": true, "butautomaticupgrades": true, "validfor": true,
	"debindices": true, "dscindices": true, "tracking": true, "limit": true, "readonly": true,
	"log": true, "archive": true, "update": true, "pull": true, "uploaders": true, "ddebcomponents": true, "udebcomponents": true,
}

// refusedFields says, for reprepro's fields that lampi-pkg does not
// implement, what to do instead (by lower-case name).
var refusedFields = map[string]string{
	"udebindices":           "lampi-pkg writes the installer package lists as reprepro's default (Packages, .gz); remove the field",
	"ddebindices":           "lampi-pkg writes the debug package lists as DebIndices says; remove the field",
	"contents":              "lampi-pkg writes no Contents files; remove the field (apt-file then finds nothing in this repository)",
	"contentsarchitectures": "lampi-pkg writes no Contents files; remove the field",
	"contentscomponents":    "lampi-pkg writes no Contents files; remove the field",
	"contentsucomponents":   "lampi-pkg writes no Contents files; remove the field",
	"deboverride":           "lampi-pkg reads no override files; set Section and Priority in the packages (or with -S and -P) and remove the field",
	"udeboverride":          "lampi-pkg reads no override files; remove the field",
	"dscoverride":           "lampi-pkg reads no override files; set Section and Priority with -S and -P and remove the field",
	"alsoacceptfor":         "lampi-pkg has no processincoming by Distribution field of that kind; remove the field",
	"byhandhooks":           "lampi-pkg runs no byhand hooks (byhand files are not added); remove the field",
	"fakecomponentprefix":   "lampi-pkg publishes components under their own names; remove the field",
	"exportoptions":         "lampi-pkg has no export options (noexport, keepunknown); remove the field",
	"snapshots":             "lampi-pkg makes no snapshots; remove the field",
}

// refuseField returns why field f of a conf/distributions paragraph (read
// at at, "file:line") is refused, or "" when lampi-pkg honours it.
func refuseField(f deb.Field) string {
	name := strings.ToLower(f.Name)
	if why, ok := refusedFields[name]; ok {
		return "not implemented by lampi-pkg: " + why
	}
	if !distFields[name] {
		return "unknown field (reprepro refuses it too); check its spelling against docs/repo.md or remove it"
	}
	switch name {
	case "log":
		if _, rest, _ := strings.Cut(f.Value, "\n"); strings.TrimSpace(rest) != "" {
			return "lampi-pkg writes the log file but runs no notification scripts; keep only the file name on the Log: line"
		}
	case "debindices", "dscindices":
		if _, warn, err := parseIndices(f.Value); err == nil && warn != "" {
			return warn + "; list only . .gz .xz (and the index and Release names)"
		}
	}
	return ""
}

// optionRefusals says, for reprepro's options that lampi-pkg does not
// honour in conf/options, what to do instead.
var optionRefusals = map[string]string{
	"basedir":            "lampi-pkg finds conf/ through the base directory, so it cannot be set here; give -b (or $REPREPRO_BASE_DIR) and remove the line",
	"confdir":            "the configuration directory cannot be set from inside it; give --confdir (or $REPREPRO_CONFIG_DIR) and remove the line",
	"distdir":            "lampi-pkg publishes dists/ under the output directory; set outdir instead and remove the line",
	"morguedir":          "lampi-pkg deletes pool files nothing references (or keeps them all with keepunreferencedfiles); remove the line",
	"gnupghome":          "lampi-pkg signs with key files, not a GnuPG home: point SignWith at a key file or use keydir, and remove the line",
	"ignore":             "lampi-pkg ignores no errors; fix what it reports and remove the line",
	"keepunusednewfiles": "lampi-pkg checks every input before it writes to the pool; remove the line",
}

// refuseOption returns why conf/options entry name is refused, or "" when
// lampi-pkg honours it.
func refuseOption(name string) string {
	if why, ok := optionRefusals[name]; ok {
		return "not implemented by lampi-pkg: " + why
	}
	if !isKnownOption(name) {
		return "not implemented by lampi-pkg (see the table in docs/repo.md); remove the line"
	}
	return ""
}
