package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/fleet/pgstore"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// deviceOptions say where the credentials are: a fleet database (--repo
// or --db) or a running server (--server with a "devices" token).
type deviceOptions struct {
	repo, db, server, tokenFile, ca string
}

func (o *deviceOptions) flags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.repo, "repo", "", "repository `DIR` of 'lampi-pkg serve': the database is DIR/db/fleet.db, serve's default")
	pf.StringVar(&o.db, "db", "", "fleet database `PATH` or postgres:// URL (serve --fleet-db)")
	pf.Var(aliasFlag{&o.db}, "fleet-db", "the same as --db")
	pf.StringVar(&o.server, "server", "", "manage the credentials through the running 'lampi-pkg serve' at `URL` (needs a token with scope "+server.ScopeDevices+")")
	pf.StringVar(&o.tokenFile, "token-file", "", "read the --server token from `FILE` (default $"+TokenEnv+")")
	pf.StringVar(&o.ca, "ca", "", "trust the CA certificates in `FILE` (PEM) for an https --server")
}

// deviceAdmin is what the device verbs and 'fleet reset' change: the
// credentials, and the devices' stored seq. A fleet database
// (*fleet.Store) and a server's device API (*fleet.DevicesClient) are
// both one.
type deviceAdmin interface {
	fleet.Credentials
	ResetSeq(ctx context.Context, ids ...string) error
}

// deviceBackend is the deviceAdmin the flags name, and what closes it.
type deviceBackend struct {
	deviceAdmin
	close func()
}

func (b *deviceBackend) Close() { b.close() }

// open picks the backend the flags name.
func (o *deviceOptions) open(env *Env, readOnly bool) (*deviceBackend, error) {
	n := 0
	for _, v := range []string{o.repo, o.db, o.server} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, withHint(usageErrorf("device: say where the credentials are: --repo DIR, --db PATH or --server URL"),
			"--repo DIR uses DIR/db/fleet.db, the database 'lampi-pkg serve --repo DIR' reads; while serve runs, use --server URL --token-file F")
	case n > 1:
		return nil, usageErrorf("device: give only one of --repo, --db and --server")
	case o.server == "" && (o.tokenFile != "" || o.ca != ""):
		return nil, usageErrorf("device: --token-file and --ca go with --server")
	}
	if o.server != "" {
		c, err := o.client(env)
		if err != nil {
			return nil, err
		}
		return &deviceBackend{deviceAdmin: c, close: func() {}}, nil
	}
	path := o.db
	if o.repo != "" {
		layout := repo.Layout{Base: o.repo}
		if _, err := os.Stat(layout.Conf()); err != nil {
			return nil, withHint(fmt.Errorf("device: %s is not a repository: %w", o.repo, err), "point --repo at the directory 'lampi-pkg serve --repo' serves (it holds conf/), or give --db PATH")
		}
		path = layout.FleetDB()
	}
	if readOnly && !pgstore.IsDSN(path) {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, withHint(fmt.Errorf("device: no fleet database at %s", path),
				"check --repo/--db; 'device add' (or 'lampi-pkg serve') creates it")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.OpenDB(ctx, path, fleet.StoreOptions{ReadOnly: readOnly, Now: env.Now})
	if err != nil {
		if errors.Is(err, fleet.ErrLocked) {
			return nil, withHint(fmt.Errorf("device: %w", err),
				"a running 'lampi-pkg serve' (or 'fleet collect') holds it: manage devices through serve with --server URL --token-file F (a token from 'lampi-pkg token create --scope "+server.ScopeDevices+"'), or stop that process")
		}
		return nil, withHint(fmt.Errorf("device: %w", err), "check --repo/--db: they name the fleet database that 'serve' or 'fleet collect' writes")
	}
	return &deviceBackend{deviceAdmin: s, close: func() { s.Close() }}, nil
}

// client builds the device-API client: the token from --token-file or
// $LAMPI_TOKEN, never the command line; plain http only to loopback.
func (o *deviceOptions) client(env *Env) (*fleet.DevicesClient, error) {
	a := apiAccess{server: o.server, tokenFile: o.tokenFile, ca: o.ca}
	token, hc, err := a.client(env, "device", server.ScopeDevices)
	if err != nil {
		return nil, err
	}
	return &fleet.DevicesClient{Base: o.server, Token: token, HTTP: hc}, nil
}

// deviceError adds a true hint to a refusal of the server's device API.
func deviceError(o *deviceOptions, err error) error {
	var ae *fleet.DevicesAPIError
	if !errors.As(err, &ae) {
		if o.server != "" && !errors.Is(err, fleet.ErrExists) && !errors.Is(err, fleet.ErrNotFound) {
			return withHint(fmt.Errorf("device: %w", err), "is 'lampi-pkg serve' running at "+o.server+"? check --server")
		}
		return err
	}
	return apiRefusal(fmt.Errorf("device: %s: %w", o.server, err), ae.Status, ae.Code, server.ScopeDevices, "device", "upload tokens cannot manage devices")
}

// apiRefusal adds a true hint to err, a refusal (HTTP status, JSON code)
// by one of a running server's token-guarded APIs: api names it ("device",
// "rollout"), scope is the token scope it needs, and forbidden says which
// tokens it refuses.
func apiRefusal(err error, status int, code, scope, api, forbidden string) error {
	switch {
	case status == http.StatusUnauthorized:
		return withHint(err, "the server does not know the token: check --token-file/$"+TokenEnv+", or create one on the server with 'lampi-pkg token create --repo DIR --name ops --scope "+scope+"'")
	case code == "revoked":
		return withHint(err, "the token was revoked: create a new one with 'lampi-pkg token create --scope "+scope+"'")
	case code == "forbidden":
		return withHint(err, forbidden+": use a token created with --scope "+scope)
	case status == http.StatusNotFound && code != "not_found":
		return withHint(err, "the server has no "+api+" API: is it 'lampi-pkg serve' with its fleet side on (not --no-fleet)?")
	}
	return err
}

func newDeviceCmd(env *Env) *cobra.Command {
	o := &deviceOptions{}
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Issue and revoke the devices' MQTT credentials for the embedded broker",
		Long: `Manage the credentials devices (and collectors) log in to the embedded
MQTT broker with. They live in the fleet database, which the broker of
'lampi-pkg serve' reads on every login, so changes apply at once to new
connections.

Where the credentials are:
  --repo DIR     DIR/db/fleet.db, the database 'lampi-pkg serve --repo DIR'
                 uses by default (serve must be stopped: it holds the file)
  --db PATH      another database file (serve --fleet-db PATH)
  --server URL   the running 'lampi-pkg serve' at URL, through its device
                 API; the bearer token (created with 'lampi-pkg token create
                 --scope ` + server.ScopeDevices + `') comes from --token-file F or $` + TokenEnv + `,
                 never from the command line

A device may publish only its own devices/<id>/state and status, with its
id (or lampi-agent-<id>) as MQTT client id, and subscribe to nothing; a
collector credential (--collector) may read every device's topics and
publish nothing, with its id as client id.
Secrets are 256 random bits, stored only as a salted hash: 'device add'
prints each secret once.`,
	}
	o.flags(cmd)
	cmd.AddCommand(newDeviceAddCmd(env, o, nil), newDeviceListCmd(env, o, nil), newDeviceRemoveCmd(env, o, nil))
	return cmd
}

// deviceAddOptions are those of "device add"; where is shared with the
// other device verbs (the group's persistent flags).
type deviceAddOptions struct {
	env       *Env
	where     *deviceOptions
	ids       []string
	collector bool
	json      bool
}

func newDeviceAddCmd(env *Env, where *deviceOptions, runF runFunc[deviceAddOptions]) *cobra.Command {
	o := &deviceAddOptions{env: env, where: where}
	add := &cobra.Command{
		Use:   "add ID...",
		Short: "Issue a credential for each device id and print the secrets (once)",
		Example: `  lampi-pkg device add b827eb74663e --repo /srv/repo
  lampi-pkg device add b827eb74663e --server http://127.0.0.1:8080 --token-file ops.token
  lampi-pkg device add --collector collector1 --db /var/lib/lampi/fleet.db --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ids = args
			return runVerb(cmd, runF, runDeviceAdd, o)
		},
	}
	add.Flags().BoolVar(&o.collector, "collector", false, "issue collector credentials (read all device topics) instead of device ones")
	add.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return add
}

func runDeviceAdd(ctx context.Context, o *deviceAddOptions) error {
	env := o.env
	b, err := o.where.open(env, false)
	if err != nil {
		return err
	}
	defer b.Close()
	role := fleet.RoleDevice
	if o.collector {
		role = fleet.RoleCollector
	}
	issued, err := b.IssueCredentials(ctx, role, o.ids...)
	if err != nil {
		return deviceError(o.where, err)
	}
	if o.json {
		return writeJSON(env.Out, issued)
	}
	tw := newTable(env.Out)
	fmt.Fprintln(tw, "ID\tROLE\tSECRET")
	for _, c := range issued {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Role, c.Secret)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Err, "The secrets are shown only now: give each device its own (username = id).")
	return nil
}

type deviceListOptions struct {
	env   *Env
	where *deviceOptions
	json  bool
}

func newDeviceListCmd(env *Env, where *deviceOptions, runF runFunc[deviceListOptions]) *cobra.Command {
	o := &deviceListOptions{env: env, where: where}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issued credentials (never the secrets)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runDeviceList, o) },
	}
	list.Flags().BoolVar(&o.json, "json", false, "print JSON")
	return list
}

func runDeviceList(ctx context.Context, o *deviceListOptions) error {
	env := o.env
	b, err := o.where.open(env, true)
	if err != nil {
		return err
	}
	defer b.Close()
	creds, err := b.Credentials(ctx)
	if err != nil {
		return deviceError(o.where, err)
	}
	for i := range creds { // a server never sends them; be sure
		creds[i].Salt, creds[i].Hash = nil, nil
	}
	if o.json {
		return writeJSON(env.Out, creds)
	}
	tw := newTable(env.Out)
	fmt.Fprintln(tw, "ID\tROLE\tCREATED")
	for _, c := range creds {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Role, c.Created.Format("2006-01-02 15:04:05Z07:00"))
	}
	return tw.Flush()
}

// deviceIDsOptions are those of the verbs that take only device ids:
// "device remove" and "fleet reset".
type deviceIDsOptions struct {
	env   *Env
	where *deviceOptions
	ids   []string
}

func newDeviceRemoveCmd(env *Env, where *deviceOptions, runF runFunc[deviceIDsOptions]) *cobra.Command {
	o := &deviceIDsOptions{env: env, where: where}
	return &cobra.Command{
		Use:   "remove ID...",
		Short: "Revoke credentials: those devices can no longer log in",
		Long: `Revoke credentials: those devices can no longer log in. A device that is
connected stays connected until it reconnects.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ids = args
			return runVerb(cmd, runF, runDeviceRemove, o)
		},
	}
}

func runDeviceRemove(ctx context.Context, o *deviceIDsOptions) error {
	b, err := o.where.open(o.env, false)
	if err != nil {
		return err
	}
	defer b.Close()
	for _, id := range o.ids {
		if err := b.RemoveCredential(ctx, id); err != nil {
			return deviceError(o.where, err)
		}
		fmt.Fprintf(o.env.Out, "removed %s\n", id)
	}
	return nil
}

// openFleetDB opens the fleet database for the CLI (fleet report,
// fleet collect).
// path is a bbolt file or a postgres:// URL.
func openFleetDB(path string, readOnly bool, env *Env) (fleet.DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.OpenDB(ctx, path, fleet.StoreOptions{ReadOnly: readOnly, Now: env.Now})
	if err != nil {
		if errors.Is(err, fleet.ErrLocked) {
			return nil, withHint(err, "a running 'lampi-pkg serve' or 'fleet collect' holds it: read through its API with 'fleet report --server URL', or stop that process")
		}
		return nil, withHint(err, "check --db: it names the fleet database that 'serve' or 'fleet collect' writes")
	}
	return s, nil
}
