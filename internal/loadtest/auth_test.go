package loadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestRunPerDeviceLogins runs against a Mosquitto configured as the
// docs/fleet.md documents (packaging/mosquitto: one login per device, a device
// publishes only its own state and status, sessions named after the
// login): per-device connections with their own logins get through; one
// shared login is refused for every device's topic.
func TestRunPerDeviceLogins(t *testing.T) {
	logins := map[string]string{"loadtest-0": "s3cret-0", "loadtest-1": "s3cret-1", "loadtest-2": "s3cret-2", "shared": "pw"}
	broker := startMosquitto(t, testutil.FleetMosquittoConf(t, logins)...)

	res, err := Run(context.Background(), Options{Devices: 3, Duration: time.Minute, MaxReports: 12, QoS: 1, Status: true,
		Broker: broker, Now: time.Now, Credentials: func(id string) (string, []byte, bool) {
			pw, ok := logins[id]
			return id, []byte(pw), ok
		}})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MQTT; m.Acked != 12 || m.Failed != 0 || m.StatusAcked != 6 {
		t.Errorf("per-device logins: %+v", m)
	}

	shared := strings.Replace(broker, "mqtt://", "mqtt://shared:pw@", 1)
	res, err = Run(context.Background(), Options{Devices: 3, Connections: 1, Duration: time.Minute, MaxReports: 3, QoS: 1,
		Broker: shared, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	m := res.MQTT
	if m.Acked != 0 || m.Failed != 3 || len(m.Errors) != 1 || !strings.Contains(m.Errors[0], "PUBLISH is not authorized") {
		t.Errorf("shared login: %+v", m)
	}
	if strings.Contains(m.Broker, "pw") {
		t.Errorf("the password shows in the result: %s", m.Broker)
	}

	_, err = Run(context.Background(), Options{Devices: 1, Duration: time.Second, Broker: broker, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("anonymous: %v", err)
	}
}
