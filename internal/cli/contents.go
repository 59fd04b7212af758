package cli

import (
	"bufio"
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

type contentsOptions struct {
	env  *Env
	file string
	json bool
}

func newContentsCmd(env *Env, runF runFunc[contentsOptions]) *cobra.Command {
	o := &contentsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "contents FILE.deb",
		Short: "List the files a package installs",
		Long: `List the entries of the package's data member, line for line as
'dpkg-deb --contents' does (times in the local time zone):

  drwxr-xr-x root/root         0 2024-01-01 00:00 ./opt/
  lrwxrwxrwx root/root         0 2024-01-01 00:00 ./opt/hi -> bin/hi
  hrw-r--r-- root/root         0 2024-01-01 00:00 ./opt/b link to ./opt/a

The archive is streamed: FILE may be '-' to read standard input.

With --json the output is an array of objects: {name, type (file|dir|
symlink|hardlink|char|block|fifo), mode (octal, e.g. "0755" or "4755"), uid,
gid, user, group, size, mtime (RFC 3339, UTC), link (symlinks and hard
links), major and minor (devices)}.`,
		Example: `  lampi-pkg contents hi_1.0_all.deb
  lampi-pkg contents --json hi_1.0_all.deb | jq -r '.[] | select(.type=="file").name'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return runVerb(cmd, runF, runContents, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the entries as a JSON array")
	return cmd
}

func runContents(_ context.Context, o *contentsOptions) error {
	in, done, err := openDeb(o.env, "contents", o.file)
	if err != nil {
		return err
	}
	defer done()
	out := bufio.NewWriter(o.env.Out)
	err = listContents(in, out, o.json)
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return debReadError("contents", o.file, err)
	}
	return nil
}

// listContents streams the data entries of a package to out, one line (or
// one JSON array element) at a time.
func listContents(in io.Reader, out io.Writer, asJSON bool) error {
	r, err := deb.NewReader(in)
	if err != nil {
		return err
	}
	defer r.Close()
	cw := deb.NewContentsWriter(out, time.Local)
	sep := "[\n  "
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !asJSON {
			if err := cw.Write(e); err != nil {
				return err
			}
			continue
		}
		b, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := io.WriteString(out, sep+string(b)); err != nil {
			return err
		}
		sep = ",\n  "
	}
	if asJSON {
		if sep == "[\n  " {
			_, err = io.WriteString(out, "[]\n")
		} else {
			_, err = io.WriteString(out, "\n]\n")
		}
	}
	return err
}
