package repo

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// releaseDate formats a time as apt expects in Date and Valid-Until.
func releaseDate(t time.Time) string {
	return t.UTC().Format("Mon, 02 Jan 2006 15:04:05") + " UTC"
}

// writeField writes "Name: value" with multi-line values as deb822
// continuation lines (an empty line becomes " .").
func writeField(b *bytes.Buffer, name, value string) {
	if value == "" {
		return
	}
	lines := strings.Split(value, "\n")
	b.WriteString(name)
	b.WriteString(": ")
	b.WriteString(lines[0])
	b.WriteByte('\n')
	for _, l := range lines[1:] {
		b.WriteByte(' ')
		if strings.TrimSpace(l) == "" {
			l = "."
		}
		b.WriteString(strings.TrimSpace(l))
		b.WriteByte('\n')
	}
}

// archRelease is the per-architecture Release file reprepro writes into
// each binary-<arch> directory, with its field order.
func archRelease(d *Distribution, t Target) []byte {
	var b bytes.Buffer
	writeField(&b, "Archive", d.Suite)
	writeField(&b, "Version", d.Version)
	writeField(&b, "Component", t.Component)
	writeField(&b, "Origin", d.Origin)
	writeField(&b, "Label", d.Label)
	writeField(&b, "Architecture", t.Arch)
	writeField(&b, "NotAutomatic", d.NotAutomatic)
	writeField(&b, "ButAutomaticUpgrades", d.ButAutomaticUpgrades)
	writeField(&b, "Description", d.Description)
	return b.Bytes()
}

// releaseEntry is one file listed in the top-level Release.
type releaseEntry struct {
	rel  string // path relative to dists/<codename>/
	sums Checksums
}

// topRelease is dists/<codename>/Release with reprepro's field order,
// plus Acquire-By-Hash and a SHA512 list.
func topRelease(d *Distribution, now time.Time, entries []releaseEntry) []byte {
	var b bytes.Buffer
	writeField(&b, "Origin", d.Origin)
	writeField(&b, "Label", d.Label)
	writeField(&b, "Suite", d.Suite)
	writeField(&b, "Codename", d.Codename)
	writeField(&b, "Version", d.Version)
	writeField(&b, "Date", releaseDate(now))
	if d.ValidFor > 0 {
		writeField(&b, "Valid-Until", releaseDate(now.Add(d.ValidFor)))
	}
	writeField(&b, "Architectures", strings.Join(d.Architectures, " "))
	writeField(&b, "Components", strings.Join(d.Components, " "))
	writeField(&b, "Description", d.Description)
	writeField(&b, "Signed-By", d.SignedBy)
	writeField(&b, "NotAutomatic", d.NotAutomatic)
	writeField(&b, "ButAutomaticUpgrades", d.ButAutomaticUpgrades)
	writeField(&b, "Acquire-By-Hash", "yes")
	for _, h := range []struct {
		name string
		get  func(Checksums) string
	}{
		{"MD5Sum", func(c Checksums) string { return c.MD5 }},
		{"SHA1", func(c Checksums) string { return c.SHA1 }},
		{"SHA256", func(c Checksums) string { return c.SHA256 }},
		{"SHA512", func(c Checksums) string { return c.SHA512 }},
	} {
		b.WriteString(h.name + ":\n")
		for _, e := range entries {
			fmt.Fprintf(&b, " %s %d %s\n", h.get(e.sums), e.sums.Size, e.rel)
		}
	}
	return b.Bytes()
}
