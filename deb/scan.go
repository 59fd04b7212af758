package deb

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"
)

// maintainerScripts are the DEBIAN files dpkg runs; they must be
// executable scripts.
var maintainerScripts = map[string]bool{"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true}

// knownControlFiles are the other DEBIAN files dpkg or debconf read.
var knownControlFiles = map[string]bool{"control": true, "conffiles": true, "md5sums": true, "triggers": true,
	"shlibs": true, "symbols": true, "templates": true}

// toolFiles are left out of the payload when they sit at the top of the
// tree: the configuration of the tools that manage the tree (git,
// bumpversion), which dpkg would otherwise install as /.git, /setup.cfg…
// Deeper down they are packaged as any file.
var toolFiles = map[string]bool{".git": true, ".gitignore": true, ".bumpversion.cfg": true, "setup.cfg": true}

// entry is one payload member, in archive order.
type entry struct {
	name     string // "./opt/hi/hi", dirs end with "/"
	src      string // path in the source fs.FS
	mode     fs.FileMode
	size     int64
	mtime    time.Time
	link     string // symlink target
	hardlink string // archive name of the first link to the same inode
	user     account
	group    account
}

// controlFile is one member of control.tar besides the generated ones.
type controlFile struct {
	name string
	mode int64
	data []byte
}

// tree is what the scan of a package source tree found.
type tree struct {
	control   *Paragraph
	scripts   []controlFile // maintainer scripts and other DEBIAN files, sorted
	conffiles []string      // user-listed conffile lines (may carry flags)
	entries   []entry
	newest    time.Time
	warnings  []Warning
}

// scanTree walks fsys (a package tree as for dpkg-deb --build) without
// following symbolic links and checks everything dpkg-deb would refuse.
func scanTree(fsys fs.FS) (*tree, error) {
	t := &tree{}
	if err := t.scanDebian(fsys); err != nil {
		return nil, err
	}
	inodes := map[[2]uint64]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidTree, p, err)
		}
		if p == "DEBIAN" {
			return fs.SkipDir
		}
		if toolFiles[p] {
			t.warnings = append(t.warnings, Warning{File: p, Msg: "left out of the package: tool configuration at the top of the tree (it would install as /" + p + ")"})
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidTree, p, err)
		}
		name := "./"
		if p != "." {
			name = "./" + p
		}
		if strings.ContainsAny(p, "\n\r") {
			return fmt.Errorf("%w: %q: a newline in a file name is not allowed by dpkg; rename it", ErrInvalidTree, p)
		}
		e := entry{name: name, src: p, mode: info.Mode(), mtime: info.ModTime()}
		if e.mtime.After(t.newest) {
			t.newest = e.mtime
		}
		switch typ := info.Mode().Type(); {
		case typ == fs.ModeDir:
			if p != "." {
				e.name += "/"
			}
		case typ == fs.ModeSymlink:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return fmt.Errorf("%w: %s: read symbolic link: %v", ErrInvalidTree, p, err)
			}
			e.link = target
		case typ.IsRegular():
			e.size = info.Size()
			if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
				if first, seen := inodes[key]; seen {
					e.hardlink, e.size = first, 0
				} else {
					inodes[key] = name
				}
			}
		default:
			return fmt.Errorf("%w: %s is a %s; a package can only hold regular files, directories and symbolic links (remove it from the tree)", ErrInvalidTree, p, fileKind(typ))
		}
		t.entries = append(t.entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// scanDebian reads DEBIAN/: the control file, the scripts, conffiles.
func (t *tree) scanDebian(fsys fs.FS) error {
	st, err := fs.Lstat(fsys, "DEBIAN")
	if err != nil || !st.IsDir() {
		return fmt.Errorf("%w: no DEBIAN directory; create DEBIAN/control (see 'lampi-pkg build --help')", ErrInvalidTree)
	}
	dents, err := fs.ReadDir(fsys, "DEBIAN")
	if err != nil {
		return fmt.Errorf("%w: read DEBIAN: %v", ErrInvalidTree, err)
	}
	for _, d := range dents {
		p := "DEBIAN/" + d.Name()
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidTree, p, err)
		}
		if info.ModTime().After(t.newest) {
			t.newest = info.ModTime()
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file (a %s); DEBIAN may hold only regular files", ErrInvalidTree, p, describeMode(info.Mode()))
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("%w: read %s: %v", ErrInvalidTree, p, err)
		}
		name := d.Name()
		switch {
		case name == "control":
			ctl, err := ParseControl(bytes.NewReader(data), p)
			if err != nil {
				return err
			}
			warns, err := ValidateControl(ctl, p)
			if err != nil {
				return err
			}
			t.control, t.warnings = ctl, append(t.warnings, warns...)
		case name == "conffiles":
			lines, err := parseConffiles(data, p)
			if err != nil {
				return err
			}
			t.conffiles = lines
		case name == "md5sums":
			t.warnings = append(t.warnings, Warning{File: p, Msg: "ignored: md5sums is generated from the payload"})
		case maintainerScripts[name]:
			if err := checkScript(data, p); err != nil {
				return err
			}
			if !hasSetE(data) {
				t.warnings = append(t.warnings, Warning{File: p, Msg: "the script does not 'set -e'; a failing command will not stop it (lintian: maintainer-script-ignores-errors)"})
			}
			t.scripts = append(t.scripts, controlFile{name: name, mode: 0o755, data: data})
		default:
			if !knownControlFiles[name] {
				t.warnings = append(t.warnings, Warning{File: p, Msg: "not a control file dpkg knows; it is packaged as is"})
			}
			t.scripts = append(t.scripts, controlFile{name: name, mode: 0o644, data: data})
		}
	}
	if t.control == nil {
		return fmt.Errorf("%w: DEBIAN/control is missing; it needs at least Package, Version, Architecture, Maintainer and Description", ErrInvalidTree)
	}
	sort.Slice(t.scripts, func(i, j int) bool { return t.scripts[i].name < t.scripts[j].name })
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return fileKind(m.Type())
}

// checkScript requires an interpreter line, as dpkg needs to exec it.
func checkScript(data []byte, p string) error {
	if !bytes.HasPrefix(data, []byte("#!")) {
		return fmt.Errorf("%w: %s: a maintainer script must start with an interpreter line such as '#!/bin/sh'", ErrInvalidTree, p)
	}
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if len(bytes.TrimSpace(first[2:])) == 0 {
		return fmt.Errorf("%w: %s:1: the '#!' line names no interpreter", ErrInvalidTree, p)
	}
	if bytes.Contains(first, []byte("\r")) {
		return fmt.Errorf("%w: %s:1: the '#!' line ends with a carriage return (Windows line endings); the kernel cannot run it", ErrInvalidTree, p)
	}
	return nil
}

// hasSetE reports whether a shell script stops on errors: "set -e" (or
// "set -eu" etc.) on a line of its own, or "-e" on the #! line.
func hasSetE(data []byte) bool {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if i == 0 {
			if !isShell(line) {
				return true // not a shell script: lintian's check does not apply
			}
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "-") && strings.Contains(f[1], "e") {
				return true
			}
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "set" {
			for _, opt := range f[1:] {
				if strings.HasPrefix(opt, "-") && !strings.HasPrefix(opt, "--") && strings.Contains(opt, "e") {
					return true
				}
				if opt == "errexit" {
					return true
				}
			}
		}
	}
	return false
}

func isShell(shebang string) bool {
	interp := strings.Fields(strings.TrimPrefix(shebang, "#!"))
	if len(interp) == 0 {
		return false
	}
	name := path.Base(interp[0])
	if name == "env" && len(interp) > 1 {
		name = interp[1]
	}
	switch name {
	case "sh", "bash", "dash", "ksh", "zsh":
		return true
	}
	return false
}
