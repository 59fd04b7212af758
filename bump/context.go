package bump

import (
	"strings"
	"time"
)

// tmplContext is the dictionary bump2version formats its templates with: the
// current and new versions, "now" and "utcnow", every environment variable
// as "$NAME", "{#}" and "{;}" for the characters configparser would take as
// comments, and (for search and replace) what "git describe" says about
// the latest v* tag. Like bump2version's, it is one mutable dictionary for
// all files in turn.
type tmplContext struct {
	vals      map[string]any
	now       time.Time
	lookupEnv func(string) (string, bool)
	vcs       func() map[string]any // nil: no git information
	vcsVals   map[string]any
}

func newContext(now time.Time, lookupEnv func(string) (string, bool), vcs func() map[string]any) *tmplContext {
	return &tmplContext{vals: map[string]any{}, now: now, lookupEnv: lookupEnv, vcs: vcs}
}

func (c *tmplContext) set(k string, v any) { c.vals[k] = v }

func (c *tmplContext) lookup(name string) (any, bool, error) {
	if v, ok := c.vals[name]; ok {
		return v, true, nil
	}
	switch name {
	case "#", ";":
		return name, true, nil
	case "now":
		return c.now, true, nil
	case "utcnow":
		return c.now.UTC(), true, nil
	case "commit_sha", "distance_to_latest_tag", "current_version", "dirty":
		if c.vcs == nil {
			return nil, false, nil
		}
		if c.vcsVals == nil {
			c.vcsVals = c.vcs()
		}
		v, ok := c.vcsVals[name]
		return v, ok, nil
	}
	if env, ok := strings.CutPrefix(name, "$"); ok && c.lookupEnv != nil {
		v, ok := c.lookupEnv(env)
		return v, ok, nil
	}
	return nil, false, nil
}
