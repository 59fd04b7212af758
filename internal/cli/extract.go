package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

type extractOptions struct {
	env         *Env
	file, dir   string
	control     bool
	skipSpecial bool
	noOwner     bool
	verbose     bool
	json        bool
}

func newExtractCmd(env *Env, runF runFunc[extractOptions]) *cobra.Command {
	o := &extractOptions{env: env}
	cmd := &cobra.Command{
		Use:   "extract FILE.deb DIR",
		Short: "Extract a package's files into a directory",
		Long: `Extract the files of the package's data member into DIR (created if
needed), like 'dpkg-deb --extract'; with --control also write the control
files to DIR/DEBIAN, like 'dpkg-deb --raw-extract'.

The package is treated as hostile and nothing is ever written outside DIR:
absolute paths, '..' components, paths that appear twice, writing through a
symbolic link, relative links that climb out of DIR and hard links to
anything but a file of the same package are refused, naming the entry.
Symbolic links with an absolute target are created as stored (they point
into the system root once the package is installed); nothing is written
through them.

Device nodes and FIFOs are never created: they are an error, or skipped
with a note on standard error with --skip-special.

Modes and modification times come from the package. Run as root, files also
get the package's owner and group and keep their setuid/setgid bits (like
tar); otherwise they belong to you and setuid/setgid bits are dropped.

FILE may be '-' to read standard input. With --json a summary object is
printed: {file, dir, entries, skipped: [names]}.`,
		Example: `  lampi-pkg extract hi_1.0_all.deb /tmp/hi
  lampi-pkg extract --control hi_1.0_all.deb /tmp/hi   # also /tmp/hi/DEBIAN`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file, o.dir = args[0], args[1]
			return runVerb(cmd, runF, runExtract, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.control, "control", false, "also extract the control files into DIR/DEBIAN")
	f.BoolVar(&o.skipSpecial, "skip-special", false, "skip device nodes and FIFOs instead of failing")
	f.BoolVar(&o.noOwner, "no-same-owner", false, "as root, do not give files the package's owner and group")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print each entry's name as it is extracted")
	f.BoolVar(&o.json, "json", false, "print a JSON summary")
	return cmd
}

func runExtract(ctx context.Context, o *extractOptions) error {
	env, file, dir := o.env, o.file, o.dir
	in, done, err := openDeb(env, "extract", file)
	if err != nil {
		return err
	}
	defer done()
	out := env.Out
	entries, skipped := 0, []string{}
	opts := deb.ExtractOptions{
		Control:       o.control,
		PreserveOwner: os.Geteuid() == 0 && !o.noOwner,
		SkipSpecial:   o.skipSpecial,
		OnSkip: func(e *deb.Entry) {
			skipped = append(skipped, e.Name)
			fmt.Fprintf(env.Err, "lampi-pkg: skipped %s (%s): device nodes and FIFOs are never extracted\n", e.Name, e.Type)
		},
		OnEntry: func(e *deb.Entry) {
			entries++
			if o.verbose && !o.json {
				fmt.Fprintln(out, e.Name)
			}
		},
	}
	if err := deb.Extract(ctx, in, dir, opts); err != nil {
		return debReadError("extract", file, err)
	}
	if o.json {
		return writeJSON(out, struct {
			File    string   `json:"file"`
			Dir     string   `json:"dir"`
			Entries int      `json:"entries"`
			Skipped []string `json:"skipped"`
		}{file, dir, entries, skipped})
	}
	return nil
}
