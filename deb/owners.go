package deb

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Owners declares the owner, group and optionally the mode of payload
// paths, as dpkg-statoverride records them for installed files. Build
// gives every other entry root:root. Parse one with ParseOwners.
type Owners struct {
	rules []ownerRule
}

// ownerRule is one line of an owners file.
type ownerRule struct {
	file, pattern string // where it was declared, and the path (or glob) it covers
	line          int
	user, group   account
	mode          fs.FileMode // permission and special bits; keep is true when "-"
	keep          bool
}

// account is a user or group as stored in a tar header: dpkg looks the
// name up on the installing system and uses ID only where the name is
// unknown there.
type account struct {
	Name string
	ID   int
}

// debianIDs are the users and groups with ids fixed by Debian's
// base-passwd (passwd.master and group.master): they are the same on every
// Debian system, so a name alone is enough.
var (
	debianUsers = map[string]int{"root": 0, "daemon": 1, "bin": 2, "sys": 3, "sync": 4, "games": 5, "man": 6,
		"lp": 7, "mail": 8, "news": 9, "uucp": 10, "proxy": 13, "www-data": 33, "backup": 34, "list": 38,
		"irc": 39, "_apt": 42, "nobody": 65534}
	debianGroups = map[string]int{"root": 0, "daemon": 1, "bin": 2, "sys": 3, "adm": 4, "tty": 5, "disk": 6,
		"lp": 7, "mail": 8, "news": 9, "uucp": 10, "man": 12, "proxy": 13, "kmem": 15, "dialout": 20, "fax": 21,
		"voice": 22, "cdrom": 24, "floppy": 25, "tape": 26, "sudo": 27, "audio": 29, "dip": 30, "www-data": 33,
		"backup": 34, "operator": 37, "list": 38, "irc": 39, "src": 40, "shadow": 42, "utmp": 43, "video": 44,
		"sasl": 45, "plugdev": 46, "staff": 50, "games": 60, "users": 100, "nogroup": 65534}
)

var rootAccount = account{Name: "root", ID: 0}

// ParseOwners reads an owners file (name is used in messages). Each line
// that is not blank or a '#' comment has the fields of
// "dpkg-statoverride --list":
//
//	OWNER GROUP MODE PATH
//
// OWNER and GROUP are names, optionally with the numeric id to store for
// systems that lack the name ("crontab:107", as GNU tar's --owner). Names
// with an id fixed by Debian's base-passwd (root, daemon, www-data, utmp,
// shadow, staff…) need none; any other name must carry one. MODE is octal
// ("2755"), or "-" to keep the tree's mode. PATH is the installed path
// ("/usr/bin/x"); it may be a glob ('*', '?', '[...]' as in path.Match,
// never matching '/'). When several lines cover a path the last one wins.
// Errors wrap ErrSyntax and name the file and line.
func ParseOwners(r io.Reader, name string) (*Owners, error) {
	o := &Owners{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, fmt.Errorf("%w: %s:%d: want 'OWNER GROUP MODE PATH' (as dpkg-statoverride --list prints), e.g. 'root utmp 2755 /usr/bin/x'", ErrSyntax, name, n)
		}
		// The path is the rest of the line, so it may hold spaces.
		rest := line
		for i := 0; i < 3; i++ {
			rest = strings.TrimLeft(rest, " \t")
			rest = rest[len(f[i]):]
		}
		rule := ownerRule{file: name, line: n, pattern: strings.TrimSpace(rest)}
		var err error
		if rule.user, err = parseAccount(f[0], debianUsers); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: owner: %v", ErrSyntax, name, n, err)
		}
		if rule.group, err = parseAccount(f[1], debianGroups); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: group: %v", ErrSyntax, name, n, err)
		}
		if f[2] == "-" {
			rule.keep = true
		} else if rule.mode, err = parseMode(f[2]); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: mode %q: %v", ErrSyntax, name, n, f[2], err)
		}
		if !strings.HasPrefix(rule.pattern, "/") {
			return nil, fmt.Errorf("%w: %s:%d: path %q must be absolute, as installed (/usr/bin/x)", ErrSyntax, name, n, rule.pattern)
		}
		if _, err := path.Match(rule.pattern, "/"); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: path %q: %v", ErrSyntax, name, n, rule.pattern, err)
		}
		rule.pattern = path.Clean(rule.pattern)
		o.rules = append(o.rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return o, nil
}

// parseAccount reads NAME or NAME:ID.
func parseAccount(s string, fixed map[string]int) (account, error) {
	name, id, hasID := strings.Cut(s, ":")
	if !validAccountName(name) {
		return account{}, fmt.Errorf("%q is not a valid user or group name", name)
	}
	if hasID {
		n, err := strconv.ParseUint(id, 10, 31)
		if err != nil {
			return account{}, fmt.Errorf("%q: the id after ':' must be a number", s)
		}
		return account{Name: name, ID: int(n)}, nil
	}
	n, ok := fixed[name]
	if !ok {
		return account{}, fmt.Errorf("%q has no id fixed by Debian's base-passwd; write it as %s:ID (ID is used where no %s exists at install time)", name, name, name)
	}
	return account{Name: name, ID: n}, nil
}

// validAccountName accepts what fits a tar header's 32-byte name field and
// what adduser would create: no spaces, ':' or '/'.
func validAccountName(s string) bool {
	if s == "" || len(s) > 31 || s[0] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == ':' || c == '/' || c == ',' {
			return false
		}
	}
	return true
}

// parseMode reads an octal mode of up to 4 digits into fs.FileMode bits.
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 || len(s) > 5 {
		return 0, fmt.Errorf("want an octal mode such as 0755 or 4755, or '-' to keep the tree's mode")
	}
	return modeFromUnix(uint32(n)), nil
}

// modeFromUnix converts Unix permission and special bits to fs.FileMode.
func modeFromUnix(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// apply gives each entry the owner, group and mode of the last rule
// covering it, root:root otherwise. It warns about setuid and setgid
// entries left root:root by default, and fails on a rule that covers
// nothing: a misspelt path would otherwise leave a file root-owned.
func (o *Owners) apply(entries []entry) ([]Warning, error) {
	var used []bool
	if o != nil {
		used = make([]bool, len(o.rules))
	}
	var warns []Warning
	for k := range entries {
		e := &entries[k]
		e.user, e.group = rootAccount, rootAccount
		p := path.Clean("/" + strings.TrimPrefix(e.name, "./"))
		var last *ownerRule
		for i := range used {
			if ok, _ := path.Match(o.rules[i].pattern, p); ok {
				used[i], last = true, &o.rules[i]
			}
		}
		declared := last != nil
		if r := last; declared {
			e.user, e.group = r.user, r.group
			if !r.keep {
				if e.mode&fs.ModeSymlink != 0 {
					return nil, fmt.Errorf("%w: %s:%d: %s is a symbolic link; a link has no mode of its own (write '-')", ErrInvalidTree, r.file, r.line, p)
				}
				e.mode = e.mode.Type() | r.mode
			}
		}
		if !declared && e.mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 && e.mode&fs.ModeSymlink == 0 {
			example := fmt.Sprintf("root GROUP %04o %s", unixMode(e.mode), p)
			if e.mode&fs.ModeSetgid == 0 {
				example = fmt.Sprintf("OWNER root %04o %s", unixMode(e.mode), p)
			}
			warns = append(warns, Warning{File: e.src, Msg: fmt.Sprintf("set%s (mode %04o) but nothing declares its owner, so it is root:root; "+
				"if that is meant, or it needs another owner, say so in the --owners file: '%s'", idKind(e.mode), unixMode(e.mode), example)})
		}
	}
	for i, u := range used {
		if !u {
			r := o.rules[i]
			return nil, fmt.Errorf("%w: %s:%d: %s matches nothing in the tree; fix the path or remove the line", ErrInvalidTree, r.file, r.line, r.pattern)
		}
	}
	return warns, nil
}

func idKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSetuid != 0 && m&fs.ModeSetgid != 0:
		return "uid and setgid"
	case m&fs.ModeSetuid != 0:
		return "uid"
	}
	return "gid"
}
