package repo

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// PoolPath returns where reprepro puts a binary package:
// pool/<component>/<prefix>/<source>/<name>_<version without epoch>_<arch>.deb,
// the prefix being the source's first letter, or "lib" and its fourth
// letter for sources starting with "lib".
func PoolPath(component, source, name string, version deb.Version, arch string) string {
	return PoolDir(component, source) + "/" + name + "_" + version.WithoutEpoch() + "_" + arch + ".deb"
}

// PoolDir is the pool directory of a source package in a component.
func PoolDir(component, source string) string {
	prefix := source[:1]
	if strings.HasPrefix(source, "lib") && len(source) > 3 {
		prefix = source[:4]
	}
	return "pool/" + component + "/" + prefix + "/" + source
}

// guessComponent picks a component for a package by its section, as
// reprepro does: the first component equal to the section, else one the
// section starts with ("contrib" for "contrib/net"), else one the section
// ends with, else one that starts with the section, else the first.
func guessComponent(d *Distribution, section string) string {
	if section != "" {
		for _, c := range d.Components {
			if c == section {
				return c
			}
		}
		for _, c := range d.Components {
			if strings.HasPrefix(section, c+"/") {
				return c
			}
		}
		for _, c := range d.Components {
			if strings.HasSuffix(section, "/"+c) {
				return c
			}
		}
		for _, c := range d.Components {
			if strings.HasPrefix(c, section) {
				return c
			}
		}
	}
	return d.Components[0]
}

// The fields makeStanza places itself.
const (
	fPriority = "Priority"
	fSection  = "Section"
)

// isIndexField reports fields of the control file that the index
// generates itself; a package carrying them has them replaced.
func isIndexField(name string) bool {
	switch strings.ToLower(name) {
	case "filename", "size", "md5sum", "sha1", "sha256", "sha512", "priority", "section":
		return true
	}
	return false
}

// makeStanza builds the Packages stanza of a package the way reprepro
// 5.3 writes it: the control fields up to Description in their order
// (without Section and Priority), then Priority, Section, Filename, Size,
// SHA512 (reprepro 5.3 has none), SHA256, SHA1, MD5sum, then Description
// and the fields after it. Section and Priority are the given ones.
func makeStanza(ctl *deb.Paragraph, section, priority, filename string, sums Checksums) []byte {
	var b bytes.Buffer
	b.Grow(512 + len(ctl.Get("Description")))
	write := func(name, value string) { writeStanzaField(&b, name, value) }
	inserted := false
	insert := func() {
		write(fPriority, priority)
		write(fSection, section)
		write("Filename", filename)
		write("Size", fmt.Sprint(sums.Size))
		write("SHA512", sums.SHA512)
		write("SHA256", sums.SHA256)
		write("SHA1", sums.SHA1)
		write("MD5sum", sums.MD5)
		inserted = true
	}
	for _, f := range ctl.Fields {
		if isIndexField(f.Name) {
			continue
		}
		if !inserted && strings.EqualFold(f.Name, "Description") {
			insert()
		}
		write(f.Name, f.Value)
	}
	if !inserted {
		insert()
	}
	return b.Bytes()
}

// writeStanzaField writes "Name: value" as a control file holds it (a
// value starting with a line break, a multi-line field's, follows the
// colon directly).
func writeStanzaField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	if value != "" && value[0] != '\n' {
		b.WriteByte(' ')
	}
	b.WriteString(value)
	b.WriteByte('\n')
}

// stanzaField returns the value of a field in a stanza as stored (single
// line fields only; enough for Version, Architecture, Source, Filename).
func stanzaField(stanza []byte, name string) string {
	for len(stanza) > 0 {
		line := stanza
		if i := bytes.IndexByte(stanza, '\n'); i >= 0 {
			line, stanza = stanza[:i], stanza[i+1:]
		} else {
			stanza = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && strings.EqualFold(string(line[:len(name)]), name) {
			return strings.TrimSpace(string(line[len(name)+1:]))
		}
	}
	return ""
}

// setStanzaField sets (or, with value "", removes) a single-line field of
// a stanza, appending it at the end when absent.
func setStanzaField(stanza []byte, name, value string) []byte {
	p, err := deb.ParseControl(bytes.NewReader(stanza), "stanza")
	if err != nil {
		return stanza
	}
	if value == "" {
		p.Delete(name)
	} else {
		p.Set(name, value)
	}
	return []byte(p.String())
}
