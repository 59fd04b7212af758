package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

type infoOptions struct {
	env  *Env
	file string
	json bool
}

func newInfoCmd(env *Env, runF runFunc[infoOptions]) *cobra.Command {
	o := &infoOptions{env: env}
	cmd := &cobra.Command{
		Use:   "info FILE.deb",
		Short: "Show a package's members, control files and control fields",
		Long: `Show what 'dpkg-deb --info' shows: the format version and size, one line per
file of the control archive (size, line count, '*' for executables and the
interpreter of scripts), then the control file.

FILE may be '-' to read standard input. The data member is not decompressed.

With --json the output is one object:
  format    content of debian-binary ("2.0")
  size      archive size in bytes
  members   ar members in order: {name, kind (debian-binary|control|data|
            ignored), compression (none|gzip|xz|zstd), size, offset}
  control   {member, files: [{name, type, mode, size, lines, executable,
            interpreter}], fields: [{name, value}] in file order}`,
		Example: `  lampi-pkg info hi_1.0_all.deb
  lampi-pkg info --json hi_1.0_all.deb | jq -r '.control.fields[] | select(.name=="Version").value'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return runVerb(cmd, runF, runInfo, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the information as JSON")
	return cmd
}

func runInfo(_ context.Context, o *infoOptions) error {
	in, done, err := openDeb(o.env, "info", o.file)
	if err != nil {
		return err
	}
	defer done()
	info, err := deb.Inspect(in)
	if err != nil {
		return debReadError("info", o.file, err)
	}
	if o.json {
		return writeJSON(o.env.Out, info)
	}
	return info.WriteText(o.env.Out)
}

// openDeb opens a package file for verb, or standard input for "-".
func openDeb(env *Env, verb, name string) (io.Reader, func(), error) {
	if name == "-" {
		return env.In, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("%s: %w", verb, err), "check the path of the .deb file")
	}
	return f, func() { f.Close() }, nil
}

// debReadError names the verb and file and says what to do about the
// reader's errors.
func debReadError(verb, file string, err error) error {
	err = fmt.Errorf("%s %s: %w", verb, file, err)
	switch {
	case errors.Is(err, deb.ErrUnsafePath), errors.Is(err, deb.ErrTooLarge):
		return withHint(err, "the package is broken or malicious: do not install it; get it again from a trusted source")
	case errors.Is(err, deb.ErrSpecialFile):
		return withHint(err, "add --skip-special to extract everything else")
	case errors.Is(err, deb.ErrCompression):
		return withHint(err, "rebuild the package with 'lampi-pkg build --compress xz' (or dpkg-deb -Zxz)")
	case errors.Is(err, deb.ErrTruncated):
		return withHint(err, "the file is incomplete: download or copy it again")
	case errors.Is(err, deb.ErrNotDeb), errors.Is(err, deb.ErrCorrupt):
		return withHint(err, "check that the file is a Debian binary package: 'dpkg-deb --info FILE'")
	}
	return err
}
