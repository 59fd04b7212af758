package repo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InitOptions describe the distribution Init writes.
type InitOptions struct {
	Codename, Suite, Origin, Label, Description string
	// Components default to "main", Architectures to "armhf arm64 amd64".
	Components, Architectures []string
	// SignWith is written as is (a key file path is made absolute).
	SignWith string
	// Limit, when not 0, is written as "Limit: N".
	Limit int
	// ValidFor is written as "ValidFor: …" (conf/distributions syntax,
	// e.g. "7d", "1m"): Release files then carry a Valid-Until, and apt
	// refuses one that a mirror or cache kept serving past it. "" writes
	// DefaultValidFor; "none" writes no ValidFor.
	ValidFor string
}

// Init creates a repository in dir: conf/distributions with one
// distribution, checked as LoadConfig reads it. It refuses to overwrite
// an existing conf/distributions. The distribution gets ValidFor:
// DefaultValidFor unless o.ValidFor says otherwise (distributions written
// by hand or by reprepro keep what they have; without ValidFor, a Release
// never expires).
func Init(dir string, o InitOptions) error {
	if len(o.Components) == 0 {
		o.Components = []string{"main"}
	}
	if len(o.Architectures) == 0 {
		o.Architectures = []string{"armhf", "arm64", "amd64"}
	}
	switch o.ValidFor {
	case "":
		o.ValidFor = DefaultValidFor
	case "none":
		o.ValidFor = ""
	}
	if o.SignWith != "" {
		if _, err := os.Stat(o.SignWith); err == nil {
			abs, err := filepath.Abs(o.SignWith)
			if err != nil {
				return err
			}
			o.SignWith = abs
		}
	}
	var b bytes.Buffer
	field := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, value)
		}
	}
	field("Origin", o.Origin)
	field("Label", o.Label)
	field("Suite", o.Suite)
	field("Codename", o.Codename)
	field("Architectures", strings.Join(o.Architectures, " "))
	field("Components", strings.Join(o.Components, " "))
	field("Description", o.Description)
	field("SignWith", o.SignWith)
	if o.Limit != 0 {
		field("Limit", fmt.Sprint(o.Limit))
	}
	field("ValidFor", o.ValidFor)
	p := &confParagraph{file: "conf/distributions", line: 1}
	ps, err := parseConf(bytes.NewReader(b.Bytes()), "conf/distributions")
	if err != nil {
		return err
	}
	if len(ps) == 1 {
		p = ps[0]
	}
	if _, _, err := newDistribution(p); err != nil {
		return err
	}
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(conf, "distributions"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s already exists; edit it, or choose another directory", ErrConfig, filepath.Join(conf, "distributions"))
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
