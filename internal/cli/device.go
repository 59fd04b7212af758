package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

func newDeviceCmd(env *Env) *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Issue and revoke the devices' MQTT credentials for the embedded broker",
		Long: `Manage the credentials devices (and collectors) log in to the embedded
MQTT broker with. They live in the fleet database (--db), which the broker
of 'lampi-pkg serve' reads on every login, so changes apply at once to new
connections.

A device may publish and subscribe only under devices/<its id>/; a collector
credential (--collector) may read every device's topics and publish nothing.
Secrets are 256 random bits, stored only as a salted hash: 'device add'
prints each secret once.`,
	}
	cmd.PersistentFlags().StringVar(&db, "db", "fleet.db", "fleet database `PATH`")

	var collector, asJSON bool
	add := &cobra.Command{
		Use:   "add ID...",
		Short: "Issue a credential for each device id and print the secrets (once)",
		Example: `  lampi-pkg device add b827eb74663e --db /var/lib/lampi/fleet.db
  lampi-pkg device add --collector collector1 --json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openFleetDB(db, false, env)
			if err != nil {
				return err
			}
			defer s.Close()
			role := fleet.RoleDevice
			if collector {
				role = fleet.RoleCollector
			}
			issued, err := s.IssueCredentials(role, args...)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(env.Out, issued)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tSECRET")
			for _, c := range issued {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Role, c.Secret)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(env.Err, "The secrets are shown only now: give each device its own (username = id).")
			return nil
		},
	}
	add.Flags().BoolVar(&collector, "collector", false, "issue collector credentials (read all device topics) instead of device ones")
	add.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the issued credentials (never the secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openFleetDB(db, true, env)
			if err != nil {
				return err
			}
			defer s.Close()
			creds, err := s.Credentials()
			if err != nil {
				return err
			}
			if listJSON {
				return writeJSON(env.Out, creds)
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tCREATED")
			for _, c := range creds {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Role, c.Created.Format("2006-01-02 15:04:05Z07:00"))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")

	remove := &cobra.Command{
		Use:   "remove ID...",
		Short: "Revoke credentials: those devices can no longer log in",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openFleetDB(db, false, env)
			if err != nil {
				return err
			}
			defer s.Close()
			for _, id := range args {
				if err := s.RemoveCredential(id); err != nil {
					return err
				}
				fmt.Fprintf(env.Out, "removed %s\n", id)
			}
			return nil
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

// openFleetDB opens the fleet database for the CLI.
func openFleetDB(path string, readOnly bool, env *Env) (*fleet.Store, error) {
	s, err := fleet.Open(path, fleet.StoreOptions{ReadOnly: readOnly, Now: env.Now})
	if err != nil {
		if errors.Is(err, fleet.ErrLocked) {
			return nil, withHint(err, "query a running server with --server URL, or stop the process that holds the database")
		}
		return nil, withHint(err, "check --db: it names the fleet database that 'serve' or 'fleet collect' writes")
	}
	return s, nil
}
