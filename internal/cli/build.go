package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
)

type buildOptions struct {
	env      *Env
	dir      string
	output   string
	compress string
	level    int
	mtime    string
	owners   string
	umask    string
	json     bool
}

func newBuildCmd(env *Env, runF runFunc[buildOptions]) *cobra.Command {
	o := &buildOptions{env: env}
	cmd := &cobra.Command{
		Use:   "build DIR",
		Short: "Build a .deb from a package tree, without root",
		Long: `Build a .deb from DIR, laid out as for 'dpkg-deb --build': DIR/DEBIAN holds
control, optional conffiles and maintainer scripts (preinst, postinst, prerm,
postrm); everything else is the payload.

Entries keep the tree's mode bits, all of them (setuid, setgid, sticky, group
and other write), as dpkg-deb does; --umask 022 clears group and other write
for trees checked out with a loose umask, and says what it changed.

Every entry is owned by root:root whoever builds (no sudo, no chown), unless
an --owners file declares otherwise. Its lines are those of
'dpkg-statoverride --list': OWNER GROUP MODE PATH, for example

  root utmp 2755 /usr/lib/x86_64-linux-gnu/utempter/utempter
  www-data www-data - /var/www/app
  crontab-owner:107 crontab:107 0755 /var/spool/cron/jobs*

MODE '-' keeps the tree's mode; PATH may be a glob ('*' does not cross '/');
the last matching line wins. Names other than Debian's fixed ones (root,
www-data, utmp, shadow, staff… from base-passwd) need ':ID', the id dpkg uses
where the name does not exist at install time. A line that matches nothing is
an error; a setuid or setgid entry left root:root because nothing declared it
is a warning.

Entries are sorted, directories explicit, and times clamped to --mtime, else
to SOURCE_DATE_EPOCH, else to the newest file of the tree: building the same
tree twice gives the same bytes. md5sums (every name of hard-linked files),
Installed-Size and conffiles (every file under /etc plus DEBIAN/conffiles)
are generated.

The package is written to -o: a file name, or a directory (default: the
current one) where it is named <Package>_<Version>_<Architecture>.deb.`,
		Example: `  lampi-pkg build hi
  lampi-pkg build hi -o dist/ --compress gzip
  SOURCE_DATE_EPOCH=1700000000 lampi-pkg build hi -o hi.deb
  dpkg-deb -R utempter.deb tree && lampi-pkg build tree --owners owners.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dir = args[0]
			return runVerb(cmd, runF, runBuild, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "output file or directory (default: current directory)")
	f.StringVarP(&o.compress, "compress", "Z", "xz", "compression of the members: xz, gzip, zstd or none")
	f.IntVar(&o.level, "level", 0, "compression level (default: gzip 9, xz 6, zstd 3)")
	f.StringVar(&o.mtime, "mtime", "", "clamp timestamps to T (unix seconds, @seconds or RFC 3339; default SOURCE_DATE_EPOCH)")
	f.StringVar(&o.owners, "owners", "", "file declaring owner, group and mode per path (lines: OWNER GROUP MODE PATH)")
	f.StringVar(&o.umask, "umask", "", "octal permission bits to clear from every entry, e.g. 022 (default: keep the tree's modes)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

func runBuild(ctx context.Context, o *buildOptions) error {
	env := o.env
	comp, err := deb.ParseCompression(o.compress)
	if err != nil {
		return &usageError{err}
	}
	mtime, err := clampTime(o.mtime, env.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	umask, err := parseUmask(o.umask)
	if err != nil {
		return err
	}
	owners, err := readOwners(o.owners)
	if err != nil {
		return err
	}
	st, err := os.Stat(o.dir)
	if err != nil || !st.IsDir() {
		return withHint(fmt.Errorf("build: %s is not a directory", o.dir), "lampi-pkg build DIR, where DIR/DEBIAN/control exists")
	}
	root, err := os.OpenRoot(o.dir)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer root.Close()

	outDir, outName := outputTarget(o.output)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("build: create output directory: %w", err)
	}
	if inside(outDir, o.dir) {
		return withHint(usageErrorf("build: the output directory %s is inside the package tree %s: the package would pack itself", outDir, o.dir),
			"write it elsewhere, e.g. lampi-pkg build "+o.dir+" -o "+filepath.Join(o.dir, "..")+"/")
	}
	tmp, err := atomicfile.Create(outDir, ".lampi-build-*.deb.tmp")
	if err != nil {
		return fmt.Errorf("build: cannot write in %s: %w", outDir, err)
	}
	defer tmp.Abort()
	opts := deb.BuildOptions{Compression: comp, Level: o.level, Mtime: mtime, TempDir: outDir, Owners: owners, Umask: umask}
	if env.IsTerminal != nil && env.IsTerminal(env.Err) && !o.json {
		opts.Progress = progressPrinter(env, "archiving")
	}
	res, err := deb.Build(ctx, root.FS(), tmp, opts)
	if err != nil {
		return buildError(o.dir, err)
	}
	if opts.Progress != nil {
		fmt.Fprint(env.Err, "\r\033[K")
	}
	if outName == "" {
		outName = res.Filename
	}
	final := filepath.Join(outDir, outName)
	if err := tmp.Commit(final, 0o644); err != nil {
		return fmt.Errorf("build: write %s: %w", final, err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.Err, "warning: %s: %s\n", o.dir, w)
	}
	out := env.Out
	if o.json {
		return writeJSON(out, buildJSON(res, final, comp))
	}
	fmt.Fprintf(out, "built %s: %s %s (%s), %s, %d entries, Installed-Size %d KiB\n",
		final, res.Control.Get("Package"), res.Control.Get("Version"), res.Control.Get("Architecture"),
		humanBytes(res.Size), res.Entries, res.InstalledSize)
	return nil
}

// readOwners reads the --owners file; nil when none is given.
func readOwners(path string) (*deb.Owners, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("build: --owners: %w", err), "give the path of a file with lines 'OWNER GROUP MODE PATH'")
	}
	owners, err := deb.ParseOwners(bytes.NewReader(data), path)
	if err != nil {
		return nil, withHint(fmt.Errorf("build: %w", err), "see 'lampi-pkg build --help' for the owners file's format")
	}
	return owners, nil
}

func buildJSON(res *deb.BuildResult, file string, comp deb.Compression) any {
	warnings := make([]string, len(res.Warnings))
	for i, w := range res.Warnings {
		warnings[i] = w.String()
	}
	return struct {
		File          string   `json:"file"`
		Package       string   `json:"package"`
		Version       string   `json:"version"`
		Architecture  string   `json:"architecture"`
		Size          int64    `json:"size"`
		InstalledSize int64    `json:"installed_size"`
		Compression   string   `json:"compression"`
		Entries       int      `json:"entries"`
		Conffiles     []string `json:"conffiles"`
		Warnings      []string `json:"warnings"`
	}{file, res.Control.Get("Package"), res.Control.Get("Version"), res.Control.Get("Architecture"),
		res.Size, res.InstalledSize, string(comp), res.Entries, nonNil(res.Conffiles), warnings}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// buildError adds the tree to a build error and a hint for tree problems.
func buildError(dir string, err error) error {
	err = fmt.Errorf("build %s: %w", dir, err)
	if deb.IsValidationError(err) {
		return withHint(err, "fix the file named above and build again; 'lampi-pkg build --help' shows the expected layout")
	}
	return err
}

// outputTarget splits -o into the directory to write in and the file name
// ("" = the canonical name).
func outputTarget(o string) (dir, name string) {
	if o == "" {
		return ".", ""
	}
	if strings.HasSuffix(o, "/") || strings.HasSuffix(o, string(filepath.Separator)) {
		return filepath.Clean(o), ""
	}
	if st, err := os.Stat(o); err == nil && st.IsDir() {
		return o, ""
	}
	return filepath.Dir(o), filepath.Base(o)
}

// inside reports whether dir is tree or below it (symlinks resolved).
func inside(dir, tree string) bool {
	d, err1 := filepath.EvalSymlinks(dir)
	t, err2 := filepath.EvalSymlinks(tree)
	if err1 != nil || err2 != nil {
		return false
	}
	d, _ = filepath.Abs(d)
	t, _ = filepath.Abs(t)
	rel, err := filepath.Rel(t, d)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// parseUmask reads --umask: octal permission bits, "" for none.
func parseUmask(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, usageErrorf("--umask %q: want octal permission bits such as 022", s)
	}
	return fs.FileMode(n), nil
}

// clampTime reads --mtime, else SOURCE_DATE_EPOCH; zero means "newest file".
func clampTime(flag, sde string) (time.Time, error) {
	if flag != "" {
		t, err := parseTime(flag)
		if err != nil {
			return time.Time{}, usageErrorf("--mtime %q: %v", flag, err)
		}
		return t, nil
	}
	if sde != "" {
		n, err := strconv.ParseInt(sde, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, withHint(fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", sde), "export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)")
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, nil
}

func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(strings.TrimPrefix(s, "@"), 10, 64); err == nil && n >= 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("expected unix seconds, @seconds, RFC 3339 or YYYY-MM-DD")
}
