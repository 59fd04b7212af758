// Command lampi-agent keeps a device's packages up to date from a signed
// apt repository and reports what it runs over MQTT.
package main

import (
	"os"

	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
)

func main() {
	os.Exit(agentcli.Main(os.Args[1:], agentcli.StdIO()))
}
