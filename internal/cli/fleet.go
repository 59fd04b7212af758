package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/fleet"
)

func newFleetCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Collect device reports over MQTT and tell which device runs which version",
		Long: `Devices running lampi-agent publish their state (installed versions, last
update result) to devices/<id>/state and their online/offline status to
devices/<id>/status. The collector stores the newest report of each device;
the other verbs read what it stored, from the fleet database (--db) or from a
running server or collector (--server URL).`,
	}
	cmd.AddCommand(newFleetCollectCmd(env, nil), newFleetReportCmd(env, nil), newFleetDevicesCmd(env, nil),
		newFleetDeviceCmd(env, nil), newFleetHistoryCmd(env, nil), newFleetBrokerCmd(env, nil), newFleetResetCmd(env, nil))
	return cmd
}

// fleetSource is where the query verbs read: a database file or the API.
type fleetSource struct {
	db     string
	server string
}

func (f *fleetSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "read from the fleet API of a running server or collector at `URL` (e.g. http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.db, "db", "fleet.db", "read the fleet database at `PATH`, or a postgres:// URL (when no --server)")
	fleetDBAlias(cmd, &f.db)
}

// fleetDBAlias adds --fleet-db, serve's name for the fleet database, as
// another name of a verb's --db.
func fleetDBAlias(cmd *cobra.Command, db *string) {
	cmd.Flags().Var(aliasFlag{db}, "fleet-db", "the same as --db: a fleet database `PATH` or postgres://user@host/db URL")
}

// aliasFlag sets the string of another flag.
type aliasFlag struct{ p *string }

func (a aliasFlag) String() string {
	if a.p == nil {
		return ""
	}
	return *a.p
}
func (a aliasFlag) Set(v string) error { *a.p = v; return nil }
func (a aliasFlag) Type() string       { return "string" }

// open returns the reader the flags name and what closes it.
func (f *fleetSource) open(env *Env) (fleet.Reader, func(), error) {
	if f.server != "" {
		return &fleet.APIClient{Base: f.server, HTTP: &http.Client{Timeout: time.Minute}}, func() {}, nil
	}
	s, err := openFleetDB(f.db, true, env)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

type outputFormat struct{ json, csv bool }

func (o *outputFormat) flags(cmd *cobra.Command, withCSV bool) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	if withCSV {
		cmd.Flags().BoolVar(&o.csv, "csv", false, "print CSV")
		cmd.MarkFlagsMutuallyExclusive("json", "csv")
	}
}

type fleetReportOptions struct {
	env              *Env
	src              fleetSource
	out              outputFormat
	pkg              string
	stale, staleView time.Duration
	newest           []string
}

func newFleetReportCmd(env *Env, runF runFunc[fleetReportOptions]) *cobra.Command {
	o := &fleetReportOptions{env: env}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Version distribution per package, devices behind, offline, failed and with a stale view of the repository",
		Long: `Print, per package, how many devices run each version (count and share of
the devices that have the package), how many are behind the newest published
version, then the offline devices with the age of their last sign of life,
the devices whose last update failed (or is held back after a rollback),
with the reason, and the devices whose view of the repository is stale.

The newest published versions come from the server (--server); with --db
give them with --newest NAME=VERSION. --stale 24h lists only the devices
offline for at least 24 hours.

A device's view of the repository is the Date of the newest Release it
accepted (lampi-agent reports it). --stale-view D (default 336h, 14 days:
twice a weekly ValidFor) lists the devices whose view is at least that old:
they cannot reach the repository, or a mirror, a cache or an attacker keeps
serving them an old Release (a freeze attack). --stale-view 0: no list.`,
		Example: `  lampi-pkg fleet report --server http://127.0.0.1:8080
  lampi-pkg fleet report --db fleet.db --package hi --newest hi=0.2 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runFleetReport, o) },
	}
	o.src.flags(cmd)
	o.out.flags(cmd, true)
	cmd.Flags().StringVar(&o.pkg, "package", "", "report only package `P` (and devices that have it)")
	cmd.Flags().DurationVar(&o.stale, "stale", 0, "list only devices offline for at least `D` (e.g. 24h)")
	cmd.Flags().DurationVar(&o.staleView, "stale-view", fleet.DefaultStaleView, "list devices whose newest accepted Release is at least `D` old (0: no list)")
	cmd.Flags().StringArrayVar(&o.newest, "newest", nil, "newest published version, `NAME=VERSION` (repeatable; with --db)")
	return cmd
}

func runFleetReport(ctx context.Context, o *fleetReportOptions) error {
	env := o.env
	nv := map[string]string{}
	for _, s := range o.newest {
		name, v, ok := strings.Cut(s, "=")
		if !ok || name == "" || v == "" {
			return usageErrorf("--newest %q: want NAME=VERSION", s)
		}
		nv[name] = v
	}
	r, done, err := o.src.open(env)
	if err != nil {
		return err
	}
	defer done()
	staleView := o.staleView
	if staleView < 0 {
		return usageErrorf("--stale-view %v: want a duration such as 336h, or 0 for no list", staleView)
	}
	if staleView == 0 {
		staleView = -1 // no list
	}
	rep, err := r.Report(ctx, fleet.ReportOptions{Package: o.pkg, Stale: o.stale, StaleView: staleView, Newest: nv, Now: env.Now})
	if err != nil {
		return err
	}
	switch {
	case o.out.json:
		return writeJSON(env.Out, rep)
	case o.out.csv:
		return reportCSV(env.Out, rep)
	}
	return reportText(env.Out, rep)
}

func reportText(w io.Writer, r *fleet.Report) error {
	fmt.Fprintf(w, "%d devices: %d online, %d offline (at %s)\n", r.Devices, r.Online, r.Offline, r.Generated.Format(time.RFC3339))
	for _, p := range r.Packages {
		fmt.Fprintf(w, "\n%s", p.Name)
		if p.Newest != "" {
			fmt.Fprintf(w, " (newest %s): %d installed, %d up to date, %d behind\n", p.Newest, p.Installed, p.UpToDate, len(p.Behind))
		} else {
			fmt.Fprintf(w, ": %d installed\n", p.Installed)
		}
		tw := newTable(w)
		for _, v := range p.Versions {
			fmt.Fprintf(tw, "  %s\t%d\t%.1f%%\n", v.Version, v.Count, v.Share*100)
		}
		tw.Flush()
	}
	if len(r.OfflineDevices) > 0 {
		fmt.Fprintf(w, "\noffline (%d):\n", len(r.OfflineDevices))
		tw := newTable(w)
		for _, d := range r.OfflineDevices {
			fmt.Fprintf(tw, "  %s\tlast seen %s\n", d.ID, ageText(d.LastSeen, d.Age))
		}
		tw.Flush()
	}
	if len(r.FailedDevices) > 0 {
		fmt.Fprintf(w, "\nfailed (%d):\n", len(r.FailedDevices))
		tw := newTable(w)
		for _, d := range r.FailedDevices {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", d.ID, d.Result, oneLine(d.Error))
		}
		tw.Flush()
	}
	if len(r.DuplicateDevices) > 0 {
		fmt.Fprintf(w, "\nids shared by several machines (%d, cloned SD cards? give each its own id):\n", len(r.DuplicateDevices))
		tw := newTable(w)
		for _, d := range r.DuplicateDevices {
			fmt.Fprintf(tw, "  %s\tboot ids %s\tlast seen together %s\n", d.ID, strings.Join(d.Duplicate.Boots, ", "), timeText(d.Duplicate.Last))
		}
		tw.Flush()
	}
	if len(r.StaleViewDevices) > 0 {
		fmt.Fprintf(w, "\nstale view of the repository (%d, newest accepted Release at least %s old):\n", len(r.StaleViewDevices), durationText(r.StaleView))
		tw := newTable(w)
		for _, d := range r.StaleViewDevices {
			fmt.Fprintf(tw, "  %s\tRelease of %s\tlast check %s\tlast seen %s\n", d.ID, timeText(d.ReleaseDate),
				ageText(d.LastCheck, r.Generated.Sub(d.LastCheck)), ageText(d.LastSeen, d.Age))
		}
		tw.Flush()
	}
	return nil
}

func ageText(seen time.Time, age time.Duration) string {
	if seen.IsZero() {
		return "never"
	}
	switch {
	case age < time.Minute:
		return fmt.Sprintf("%ds ago", int(age.Seconds()))
	case age < time.Hour:
		return fmt.Sprintf("%dm ago", int(age.Minutes()))
	case age < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(age.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(age.Hours()/24))
}

// durationText writes whole days as such ("14d"), other durations as Go
// does ("36h0m0s").
func durationText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// oneLine keeps device-supplied text from breaking the table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func reportCSV(w io.Writer, r *fleet.Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"package", "version", "count", "share", "newest", "behind"})
	for _, p := range r.Packages {
		for _, v := range p.Versions {
			behind := ""
			if p.Newest != "" {
				behind = strconv.FormatBool(deb.CompareLoose(v.Version, p.Newest) < 0)
			}
			cw.Write([]string{p.Name, v.Version, strconv.Itoa(v.Count), strconv.FormatFloat(v.Share, 'f', 4, 64), p.Newest, behind})
		}
	}
	cw.Flush()
	return cw.Error()
}

type fleetDevicesOptions struct {
	env   *Env
	src   fleetSource
	out   outputFormat
	stale time.Duration
}

func newFleetDevicesCmd(env *Env, runF runFunc[fleetDevicesOptions]) *cobra.Command {
	o := &fleetDevicesOptions{env: env}
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the devices with status, last sign of life and installed versions",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runFleetDevices, o) },
	}
	o.src.flags(cmd)
	o.out.flags(cmd, true)
	cmd.Flags().DurationVar(&o.stale, "stale", 0, "list only devices not seen for at least `D` (e.g. 24h)")
	return cmd
}

func runFleetDevices(ctx context.Context, o *fleetDevicesOptions) error {
	env := o.env
	r, done, err := o.src.open(env)
	if err != nil {
		return err
	}
	defer done()
	devs, err := r.Devices(ctx, o.stale)
	if err != nil {
		return err
	}
	switch {
	case o.out.json:
		return writeJSON(env.Out, devs)
	case o.out.csv:
		cw := csv.NewWriter(env.Out)
		cw.Write([]string{"id", "online", "last_seen", "seq", "result", "error", "packages", "release_date"})
		for _, d := range devs {
			cw.Write([]string{d.ID, strconv.FormatBool(d.Online), timeText(d.LastSeen), strconv.FormatUint(d.State.Seq, 10),
				d.State.Result, d.State.Error, packagesText(d.State.Packages), timeText(d.State.ReleaseDate)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := newTable(env.Out)
	fmt.Fprintln(tw, "ID\tSTATUS\tLAST SEEN\tRESULT\tPACKAGES")
	now := env.Now()
	for _, d := range devs {
		id := d.ID
		if d.Duplicate.Active(now) {
			id += " (DUPLICATE)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, onlineText(d.Online), ageText(d.LastSeen, now.Sub(d.LastSeen)),
			d.State.Result, packagesText(d.State.Packages))
	}
	return tw.Flush()
}

func onlineText(b bool) string {
	if b {
		return "online"
	}
	return "offline"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func packagesText(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, " ")
}

type fleetDeviceOptions struct {
	env *Env
	id  string
	src fleetSource
	out outputFormat
}

func newFleetDeviceCmd(env *Env, runF runFunc[fleetDeviceOptions]) *cobra.Command {
	o := &fleetDeviceOptions{env: env}
	cmd := &cobra.Command{
		Use:   "device ID",
		Short: "Show what one device last reported",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.id = args[0]
			return runVerb(cmd, runF, runFleetDevice, o)
		},
	}
	o.src.flags(cmd)
	o.out.flags(cmd, false)
	return cmd
}

func runFleetDevice(ctx context.Context, o *fleetDeviceOptions) error {
	env := o.env
	r, done, err := o.src.open(env)
	if err != nil {
		return err
	}
	defer done()
	d, err := r.Device(ctx, o.id)
	if err != nil {
		return err
	}
	if o.out.json {
		return writeJSON(env.Out, d)
	}
	tw := newTable(env.Out)
	fmt.Fprintf(tw, "id:\t%s\n", d.ID)
	fmt.Fprintf(tw, "status:\t%s (since %s)\n", onlineText(d.Online), timeText(d.StatusTime))
	fmt.Fprintf(tw, "last seen:\t%s\n", timeText(d.LastSeen))
	fmt.Fprintf(tw, "seq:\t%d\n", d.State.Seq)
	fmt.Fprintf(tw, "reported at:\t%s\n", timeText(d.State.Time))
	fmt.Fprintf(tw, "agent:\t%s\n", d.State.Agent)
	fmt.Fprintf(tw, "arch:\t%s\n", d.State.Arch)
	if len(d.State.Groups) > 0 {
		fmt.Fprintf(tw, "groups:\t%s\n", strings.Join(d.State.Groups, ", "))
	}
	if d.State.BootID != "" {
		fmt.Fprintf(tw, "boot id:\t%s\n", d.State.BootID)
	}
	if dup := d.Duplicate; dup.Active(o.env.Now()) {
		fmt.Fprintf(tw, "duplicate:\t%d machines report under this id (boot ids %s), last seen together %s: give each its own id\n",
			len(dup.Boots), strings.Join(dup.Boots, ", "), timeText(dup.Last))
	}
	fmt.Fprintf(tw, "last check:\t%s\n", timeText(d.State.LastCheck))
	fmt.Fprintf(tw, "release date:\t%s\n", timeText(d.State.ReleaseDate))
	fmt.Fprintf(tw, "result:\t%s\n", d.State.Result)
	if d.State.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", oneLine(d.State.Error))
	}
	for _, k := range slices.Sorted(maps.Keys(d.State.Packages)) {
		fmt.Fprintf(tw, "package:\t%s %s\n", k, d.State.Packages[k])
	}
	return tw.Flush()
}

type fleetHistoryOptions struct {
	env *Env
	id  string
	src fleetSource
	out outputFormat
}

func newFleetHistoryCmd(env *Env, runF runFunc[fleetHistoryOptions]) *cobra.Command {
	o := &fleetHistoryOptions{env: env}
	cmd := &cobra.Command{
		Use:   "history ID",
		Short: "Show a device's audit log: version changes and update results",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.id = args[0]
			return runVerb(cmd, runF, runFleetHistory, o)
		},
	}
	o.src.flags(cmd)
	o.out.flags(cmd, true)
	return cmd
}

func runFleetHistory(ctx context.Context, o *fleetHistoryOptions) error {
	env := o.env
	r, done, err := o.src.open(env)
	if err != nil {
		return err
	}
	defer done()
	h, err := r.History(ctx, o.id)
	if err != nil {
		return err
	}
	switch {
	case o.out.json:
		return writeJSON(env.Out, h)
	case o.out.csv:
		cw := csv.NewWriter(env.Out)
		cw.Write([]string{"time", "seq", "package", "from", "to", "result", "error"})
		for _, e := range h {
			cw.Write([]string{timeText(e.Time), strconv.FormatUint(e.Seq, 10), e.Package, e.From, e.To, e.Result, e.Error})
		}
		cw.Flush()
		return cw.Error()
	}
	for _, e := range h {
		switch {
		case e.Package != "" && e.From == "":
			fmt.Fprintf(env.Out, "%s  #%d  %s %s installed\n", timeText(e.Time), e.Seq, e.Package, e.To)
		case e.Package != "" && e.To == "":
			fmt.Fprintf(env.Out, "%s  #%d  %s %s removed\n", timeText(e.Time), e.Seq, e.Package, e.From)
		case e.Package != "":
			fmt.Fprintf(env.Out, "%s  #%d  %s %s → %s\n", timeText(e.Time), e.Seq, e.Package, e.From, e.To)
		default:
			fmt.Fprintf(env.Out, "%s  #%d  update %s", timeText(e.Time), e.Seq, e.Result)
			if len(e.Target) > 0 {
				fmt.Fprintf(env.Out, " (%s)", packagesText(e.Target))
			}
			if e.Error != "" {
				fmt.Fprintf(env.Out, ": %s", oneLine(e.Error))
			}
			fmt.Fprintln(env.Out)
		}
	}
	return nil
}
