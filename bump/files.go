package bump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// workFile is one file of the tree that the plan reads and may change.
type workFile struct {
	rel  string // as the configuration or the tree names it, slash-separated
	abs  string // the file written: symbolic links resolved
	mode fs.FileMode
	orig []byte
	cur  []byte // content after the steps so far
}

// workspace holds the files of a plan by resolved path; order lists them
// in the order they were first changed.
type workspace struct {
	dir   string
	files map[string]*workFile
	order []*workFile
}

// update sets the content of f.
func (w *workspace) update(f *workFile, content []byte) {
	if !slices.Contains(w.order, f) {
		w.order = append(w.order, f)
	}
	f.cur = content
}

func newWorkspace(dir string) *workspace {
	return &workspace{dir: dir, files: map[string]*workFile{}}
}

// load returns the file at rel (relative to the tree, or absolute).
func (w *workspace) load(rel string) (*workFile, error) {
	p := joinDir(w.dir, rel)
	abs, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
		}
		return nil, err
	}
	if f := w.files[abs]; f != nil {
		return f, nil
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", rel)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	f := &workFile{rel: rel, abs: abs, mode: st.Mode().Perm(), orig: b, cur: b}
	w.files[abs] = f
	return f, nil
}

// text decodes content as bump2version's text mode reads it.
func fileText(rel string, b []byte) (string, newlineStyle, error) {
	text, nl, ok := decodeText(b)
	if !ok {
		return "", nl, fmt.Errorf("%s: not UTF-8 text, which bump2version cannot rewrite either", rel)
	}
	if nl == nlMixed {
		return "", nl, fmt.Errorf("%s: mixes line endings (\\n, \\r\\n, \\r), which bump2version cannot write back: make them all the same", rel)
	}
	return text, nl, nil
}

// configuredFile is one file of the configuration with its templates.
type configuredFile struct {
	spec fileSpec
	file *workFile
}

// containsVersion is bump2version's ConfiguredFile.contains: the search
// text, split into lines, must match consecutive lines of the file, the
// first and the last only as substrings, the middle ones whole.
func containsVersion(text, search string) bool {
	if search == "" {
		return false
	}
	want := pySplitlines(search)
	var window []string
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for _, line := range lines {
		window = append(window, strings.TrimRight(line, "\n"))
		if len(window) > len(want) {
			window = window[1:]
		}
		if strings.Contains(window[0], want[0]) && strings.Contains(window[len(window)-1], want[len(want)-1]) && equalMiddle(want, window) {
			return true
		}
	}
	return false
}

// equalMiddle compares a[1:-1] and b[1:-1] as Python slices do.
func equalMiddle(a, b []string) bool {
	mid := func(s []string) []string {
		if len(s) < 2 {
			return nil
		}
		return s[1 : len(s)-1]
	}
	ma, mb := mid(a), mid(b)
	if len(ma) != len(mb) {
		return false
	}
	for i := range ma {
		if ma[i] != mb[i] {
			return false
		}
	}
	return true
}

// check is bump2version's should_contain_version for one file: the search
// text for the current version, or (with the default search) the current
// version as written in the configuration.
func (cf *configuredFile) check(cur *version, ctx *tmplContext) error {
	serialized, err := cf.spec.vc.render(cur, ctx.lookup)
	if errors.Is(err, ErrVersion) {
		return cf.errorf("%w", err)
	} else if err != nil {
		return cf.errorf("%w: %w", ErrConfig, err)
	}
	ctx.set("current_version", serialized)
	search, err := pyFormat(cf.spec.vc.search, ctx.lookup)
	if err != nil {
		return cf.errorf("%w: search: %w", ErrConfig, err)
	}
	text, _, err := fileText(cf.file.rel, cf.file.orig)
	if err != nil {
		return err
	}
	if containsVersion(text, search) {
		return nil
	}
	if cf.spec.vc.search == DefaultSearch && containsVersion(text, cur.original) {
		return nil
	}
	return cf.errorf("%w: %q is not in %s: fix the file or the search template", ErrNotFound, search, cf.file.rel)
}

// replace is bump2version's ConfiguredFile.replace: every occurrence of the
// search text becomes the replace text; when there is none, every
// occurrence of the configured current version does.
func (cf *configuredFile) replace(cfg *Config, ws *workspace, cur, nv *version, ctx *tmplContext) error {
	text, nl, err := fileText(cf.file.rel, cf.file.cur)
	if err != nil {
		return err
	}
	curS, err := cf.spec.vc.render(cur, ctx.lookup)
	if err != nil {
		return cf.errorf("%w: %w", ErrConfig, err)
	}
	ctx.set("current_version", curS)
	if nv == nil {
		return cf.errorf("%w: the new version does not match the parse pattern", ErrVersion)
	}
	newS, err := cfg.renderNew(cf.spec.vc, nv, ctx.lookup)
	if errors.Is(err, ErrSerialize) || errors.Is(err, ErrVersion) {
		return cf.errorf("%w", err)
	} else if err != nil {
		return cf.errorf("%w: %w", ErrConfig, err)
	}
	ctx.set("new_version", newS)
	search, err := pyFormat(cf.spec.vc.search, ctx.lookup)
	if err != nil {
		return cf.errorf("%w: search: %w", ErrConfig, err)
	}
	repl, err := pyFormat(cf.spec.vc.replace, ctx.lookup)
	if err != nil {
		return cf.errorf("%w: replace: %w", ErrConfig, err)
	}
	after := strings.ReplaceAll(text, search, repl)
	if after == text {
		after = strings.ReplaceAll(text, cur.original, repl)
	}
	ws.update(cf.file, encodeText(after, nl))
	return nil
}

func (cf *configuredFile) errorf(format string, a ...any) error {
	return fmt.Errorf("%s (listed in %s:%d [%s]): %w", cf.file.rel, cf.spec.cfg, cf.spec.line, cf.spec.section, fmt.Errorf(format, a...))
}
