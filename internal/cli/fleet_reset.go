package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newFleetResetCmd(env *Env, runF runFunc[deviceIDsOptions]) *cobra.Command {
	o := &deviceIDsOptions{env: env, where: &deviceOptions{}}
	cmd := &cobra.Command{
		Use:   "reset DEVICE...",
		Short: "Forget the stored seq of devices: their next report is stored whatever its seq",
		Long: `The collector keeps each device's report with the highest seq and ignores
older ones. A device whose stored seq is too high (a report "from the
future" stored before lampi-pkg refused them, or a counter that went back)
would stay at that report for ever; reset forgets the stored seq, so the
device's next report wins. Its last report and its history are kept.

The database is one of --repo DIR (DIR/db/fleet.db, serve's default), --db
PATH, or, while serve runs (it holds the file), --server URL with a token
of scope devices (--token-file or $LAMPI_TOKEN).`,
		Example: `  lampi-pkg fleet reset b827eb74663e --db fleet.db
  lampi-pkg fleet reset b827eb74663e b827eb0a1b2c --server http://127.0.0.1:8080 --token-file ops.token`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ids = args
			return runVerb(cmd, runF, runFleetReset, o)
		},
	}
	o.where.flags(cmd)
	return cmd
}

func runFleetReset(ctx context.Context, o *deviceIDsOptions) error {
	b, err := o.where.open(o.env, false)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.ResetSeq(ctx, o.ids...); err != nil {
		return deviceError(o.where, err)
	}
	for _, id := range o.ids {
		fmt.Fprintf(o.env.Out, "reset %s: its next report is stored whatever its seq\n", id)
	}
	return nil
}
