package repo

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Settings are the conf/options entries whose values must parse; nil
// (false) means the file does not set them. The command line applies
// them where no flag overrides them.
type Settings struct {
	// WaitForLock is reprepro's waitforlock: retries of 10 seconds.
	WaitForLock *int
	// ByHashKeep is byhash-keep: how long superseded by-hash files stay.
	ByHashKeep *time.Duration
	// Export is export: when to publish (see exportValues).
	Export string
	// KeepUnreferenced is keepunreferencedfiles.
	KeepUnreferenced bool
	// PlainFileIO is plain-file-io (see Options.PlainFileIO).
	PlainFileIO bool
	// Strict is strict: lampi-pkg's own version rules instead of
	// reprepro's (see Options.RepreproRules).
	Strict bool
}

// exportValues are the values of the export option (and --export).
var exportValues = []string{"changed", "never", "lookedat", "normal", "force", "silent-never"}

// parseOptions reads conf/options: one long command-line option per line
// (without "--"), optionally followed by its argument. A value that does
// not parse is an error naming file:line, the option and what to write.
func (c *Config) parseOptions(data []byte, filename string) error {
	for i, raw := range bytes.Split(data, []byte("\n")) {
		text := string(raw)
		if j := strings.IndexByte(text, '#'); j >= 0 {
			text = text[:j]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		name, value, _ := strings.Cut(text, " ")
		name = strings.TrimPrefix(name, "--")
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value = n, v
		}
		if name == "" {
			return fmt.Errorf("%s:%d: %w: expected an option name", filename, i+1, ErrConfig)
		}
		value = strings.TrimSpace(value)
		c.Options[name] = value
		if why := refuseOption(name); why != "" { // conf_refuse.go
			return fmt.Errorf("%s:%d: %w: option %q: %s", filename, i+1, ErrConfig, name, why)
		}
		if why := c.Settings.set(name, value); why != "" {
			return fmt.Errorf("%s:%d: %w: option %s: %s", filename, i+1, ErrConfig, name, why)
		}
	}
	return nil
}

// set parses the value of a known option into s; a non-empty result says
// what is wrong and what to write instead.
func (s *Settings) set(name, value string) string {
	flag := func(p *bool) string {
		if value != "" {
			return fmt.Sprintf("takes no value (got %q); write '%s' alone on its line", value, name)
		}
		*p = true
		return ""
	}
	switch name {
	case "waitforlock":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Sprintf("%q is not a number of 10-second retries; write e.g. 'waitforlock 6' (a minute)", value)
		}
		s.WaitForLock = &n
	case "byhash-keep":
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Sprintf("%q is not a duration; write e.g. 'byhash-keep 24h' (units h, m, s)", value)
		}
		s.ByHashKeep = &d
	case "export":
		for _, v := range exportValues {
			if value == v {
				s.Export = value
				return ""
			}
		}
		return fmt.Sprintf("%q is not a mode; write 'export changed' or 'export never'", value)
	case "keepunreferencedfiles":
		return flag(&s.KeepUnreferenced)
	case "plain-file-io":
		return flag(&s.PlainFileIO)
	case "strict":
		return flag(&s.Strict)
	}
	return ""
}

// isKnownOption tells the conf/options entries lampi-pkg honours; the CLI
// applies them (command-line flags win).
func isKnownOption(name string) bool {
	switch name {
	case "basedir", "outdir", "dbdir", "logdir", "confdir",
		"waitforlock", "export", "keepunreferencedfiles", "strict",
		"verbose", "silent", "keydir", "byhash-keep", "plain-file-io",
		"gnupghome", "ignore", "noskipold", "keepunusednewfiles":
		return true
	}
	return false
}
