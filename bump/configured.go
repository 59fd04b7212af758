package bump

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// prepareConfigured is the plan with a bump2version configuration.
func (p *Plan) prepareConfigured(o Options, cfg *Config, ws *workspace, control *workFile, tctx, msgCtx *tmplContext) error {
	where := fmt.Sprintf("%s:%d", cfg.Path, cfg.CurrentLine)
	if cfg.CurrentVersion == "" {
		return fmt.Errorf("%s: %w: [bumpversion] has no current_version: add current_version = <the version in your files>", cfg.Path, ErrNoVersion)
	}
	cur, err := cfg.readVersion(cfg.CurrentVersion, "current_version")
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	p.ConfigOld, p.ConfigNew = cfg.CurrentVersion, cfg.CurrentVersion
	nv, upstream, err := p.newConfiguredVersion(o, cfg, cur, control, tctx)
	if err != nil {
		return err
	}
	if upstream {
		if err := p.changeConfiguredFiles(cfg, ws, cur, nv, tctx); err != nil {
			return err
		}
	}

	p.Old, p.New = p.ConfigOld, p.ConfigNew
	if control != nil {
		if err := p.stepControl(ws, control, upstream); err != nil {
			return err
		}
	}
	msgCtx.set("current_version", p.ConfigOld)
	msgCtx.set("new_version", p.ConfigNew)
	for _, l := range cur.labels {
		msgCtx.set("current_"+l, cur.parts[l].value())
	}
	if nv != nil {
		for _, l := range nv.labels {
			msgCtx.set("new_"+l, nv.parts[l].value())
		}
	}
	return nil
}

// newConfiguredVersion sets p.ConfigNew to the version current_version
// steps to (or is given) and returns it as read by the main configuration;
// upstream is false when only DEBIAN/control's revision steps.
func (p *Plan) newConfiguredVersion(o Options, cfg *Config, cur *version, control *workFile, tctx *tmplContext) (nv *version, upstream bool, err error) {
	where := fmt.Sprintf("%s:%d", cfg.Path, cfg.CurrentLine)
	order := cfg.main.order()
	debianOld, _ := deb.ParseVersion(cfg.CurrentVersion) // read by readVersion
	given := o.NewVersion
	if given == "" {
		given = cfg.NewVersion
	}
	switch {
	case given != "":
		// The version asked for goes into current_version and, through
		// the main serialize, into the files: exactly, or not at all.
		p.ConfigNew = given
		if nv, err = cfg.readVersion(given, "the new version"); err != nil {
			return nil, false, err
		}
		if s, err := cfg.main.render(nv, tctx.lookup); err != nil {
			return nil, false, fmt.Errorf("%s: %w: serialize: %w", cfg.Path, ErrConfig, err)
		} else if s != given {
			return nil, false, fmt.Errorf("%s: %w: the new version %s would be written %q: ask for --new-version %s, or change serialize so that one of its templates writes %s (the configuration has %s)", cfg.Path, ErrSerialize, given, s, s, given, cfg.main.describe())
		}
	case cfg.main.debian && slices.Contains(DebianParts, o.Part) && (o.Part != Revision || control == nil || debianOld.Revision != ""):
		// Without parse the parts step as without a configuration (Next):
		// patch from 1.5.0~rc1 is 1.5.0, pre from 1.4.10 is 1.4.11~rc1;
		// revision steps current_version when it has a revision.
		next, err := Next(debianOld, o.Part)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", where, err)
		}
		target, err := parseDebianVersion(next.String())
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w: %w", where, ErrVersion, err)
		}
		if p.ConfigNew, err = cfg.renderNew(cfg.main, target, tctx.lookup); err != nil {
			return nil, false, fmt.Errorf("%s: %w", cfg.Path, err)
		}
		if nv, err = cfg.readVersion(p.ConfigNew, "the new version"); err != nil {
			return nil, false, fmt.Errorf("%s: %w", cfg.Path, err)
		}
	case !cfg.main.debian && cur.parts[o.Part] != nil && slices.Contains(order, o.Part):
		if nv, _, err = cur.bump(o.Part, order); err != nil {
			return nil, false, fmt.Errorf("%s: %w", where, err)
		}
		if p.ConfigNew, err = cfg.main.render(nv, tctx.lookup); err != nil {
			return nil, false, fmt.Errorf("%s: %w: serialize %s: %w", cfg.Path, ErrConfig, strings.Join(cfg.main.serialize, " | "), err)
		}
		// bump2version reads the files' new version back from this
		// string (as if given with --new-version), so the parts get their
		// configuration again: the files may show it differently.
		if nv = cfg.main.parseVersion(p.ConfigNew); nv == nil {
			return nil, false, fmt.Errorf("%s: %w: the new version %q does not match the parse pattern %q: make serialize and parse agree", cfg.Path, ErrConfig, p.ConfigNew, cfg.main.parseSrc)
		}
		if _, err := cfg.readVersion(p.ConfigNew, "the new version"); err != nil {
			return nil, false, err
		}
	case o.Part == Revision && control != nil:
		// The configuration knows the upstream version only: the Debian
		// revision lives in DEBIAN/control alone.
		return nil, false, nil
	case cfg.main.debian:
		return nil, false, fmt.Errorf("%s: %w: unknown part %q: without parse in [bumpversion], the parts are %s (as without a configuration), or give --new-version", cfg.Path, ErrPart, o.Part, strings.Join(DebianParts, ", "))
	default:
		hint := ""
		if o.Part == Pre || o.Part == Final {
			hint = "; for Debian pre-releases remove parse and serialize from [bumpversion] (the default then steps pre and final), or give parse a pre-release group, e.g. (~(?P<release>rc)(?P<rc>\\d+))?, and a [bumpversion:part:release] with values rc and final"
		}
		return nil, false, fmt.Errorf("%s: %w: %q is not a part of %s (parse %q, serialize %q): use one of %s, or --new-version%s", cfg.Path, ErrPart, o.Part, cfg.CurrentVersion, cfg.main.parseSrc, cfg.main.serialize[0], strings.Join(order, ", "), hint)
	}

	return nv, true, nil
}

// changeConfiguredFiles writes the new version into the configured files
// and into the configuration itself, after checking every file shows the
// current one.
func (p *Plan) changeConfiguredFiles(cfg *Config, ws *workspace, cur, nv *version, tctx *tmplContext) error {
	where := fmt.Sprintf("%s:%d", cfg.Path, cfg.CurrentLine)
	if err := checkConfigOrder(cfg, where, p.ConfigNew); err != nil {
		return err
	}
	files, err := p.configuredFiles(cfg, ws)
	if err != nil {
		return err
	}
	for _, cf := range files {
		if err := cf.check(cur, tctx); err != nil {
			return err
		}
	}
	for _, cf := range files {
		if err := cf.replace(cfg, ws, cur, nv, tctx); err != nil {
			return err
		}
	}
	if err := rewriteConfig(cfg, ws, p.ConfigNew); err != nil {
		return err
	}
	p.Git.Paths = append(p.Git.Paths, cfg.Path)
	return nil
}

// checkConfigOrder requires both configured versions to be Debian versions
// in dpkg's order.
func checkConfigOrder(cfg *Config, where, newS string) error {
	oldV, err := deb.ParseVersion(cfg.CurrentVersion)
	if err != nil {
		return fmt.Errorf("%s: %w: current_version is not a Debian version: %w", where, ErrVersion, err)
	}
	newV, err := deb.ParseVersion(newS)
	if err != nil {
		return fmt.Errorf("%s: %w: the new version is not a Debian version: %w", cfg.Path, ErrVersion, err)
	}
	if newV.Compare(oldV) <= 0 {
		return fmt.Errorf("%s: %w", where, orderError(cfg.CurrentVersion, newS))
	}
	return nil
}

// configuredFiles loads the files the configuration lists, globs expanded.
func (p *Plan) configuredFiles(cfg *Config, ws *workspace) ([]*configuredFile, error) {
	var out []*configuredFile
	for _, spec := range cfg.files {
		paths := []string{spec.path}
		if spec.glob {
			paths = pyGlob(ws.dir, spec.path)
		}
		for _, rel := range paths {
			f, err := ws.load(rel)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s (listed in %s:%d [%s]): %w: the file does not exist: create it or remove the section", rel, cfg.Path, spec.line, spec.section, ErrNotFound)
			} else if err != nil {
				return nil, fmt.Errorf("%s (listed in %s:%d [%s]): %w", rel, cfg.Path, spec.line, spec.section, err)
			}
			out = append(out, &configuredFile{spec: spec, file: f})
			p.Git.Paths = append(p.Git.Paths, rel)
		}
	}
	return out, nil
}

// rewriteConfig sets current_version and writes the file back as
// bump2version does (see iniFile.write).
func rewriteConfig(cfg *Config, ws *workspace, newS string) error {
	f, err := ws.load(cfg.Path)
	if err != nil {
		return err
	}
	if cfg.newline == nlMixed {
		return fmt.Errorf("%s: mixes line endings (\\n, \\r\\n, \\r), which bump2version cannot write back: make them all the same", cfg.Path)
	}
	if cfg.ini.interpolate && strings.Contains(strings.ReplaceAll(newS, "%%", ""), "%") {
		return fmt.Errorf("%s: %w: the new version %q holds a '%%', which setup.cfg cannot store", cfg.Path, ErrVersion, newS)
	}
	cfg.ini.set(configSection, "current_version", newS)
	cfg.ini.remove(configSection, "new_version")
	ws.update(f, encodeText(cfg.ini.write(configSection), cfg.newline))
	return nil
}

// stepControl updates the Version of DEBIAN/control after the configured
// files: set from the configuration's new version (epoch kept, revision
// reset), or only its revision counted up. When the configuration lists
// the file and its search/replace already changed the Version, that stands.
// Either way the new Version must sort after the old one.
func (p *Plan) stepControl(ws *workspace, control *workFile, upstream bool) error {
	old, line, err := controlVersion(control.orig, ControlPath)
	if err != nil {
		return err
	}
	nv, curLine, err := controlVersion(control.cur, ControlPath+" (after search/replace)")
	if err != nil {
		return err
	}
	if nv == old {
		if upstream {
			nv, err = withUpstream(old, p.ConfigOld, p.ConfigNew)
		} else {
			nv, err = Next(old, Revision)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", ControlPath, line, err)
		}
		ws.update(control, setControlVersion(control.cur, curLine, nv.String()))
	}
	if nv.Compare(old) <= 0 {
		return fmt.Errorf("%s:%d: %w", ControlPath, line, orderError(old.String(), nv.String()))
	}
	p.Old, p.New = old.String(), nv.String()
	if !slices.Contains(p.Git.Paths, ControlPath) {
		p.Git.Paths = append(p.Git.Paths, ControlPath)
	}
	return nil
}
