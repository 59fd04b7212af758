// Command lampi-pkg builds, signs and publishes Debian packages for device fleets.
package main

import (
	"os"

	"github.com/lampi-pkg/lampi-pkg/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.StdIO()))
}
