package loadtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestRunPerDeviceLogins runs against a Mosquitto with passwords and the
// ACL the fleet uses (a device publishes only under devices/<its id>/):
// per-device connections with their own logins get through; one shared
// login is refused for every device's topic.
func TestRunPerDeviceLogins(t *testing.T) {
	passwd := testutil.RequireTool(t, "mosquitto_passwd")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwords")
	logins := map[string]string{"loadtest-0": "s3cret-0", "loadtest-1": "s3cret-1", "loadtest-2": "s3cret-2", "shared": "pw"}
	for user, pw := range logins {
		args := []string{"-b", pwFile, user, pw}
		if _, err := os.Stat(pwFile); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("pattern readwrite devices/%u/#\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// As root, mosquitto reads these files after dropping to its own user,
	// which cannot enter the test's private temporary directory. Mosquitto
	// 2.0.11 with "max_queued_messages 0" resets a connection after it
	// denied a QoS 1 publish: keep the default queue here.
	broker := startMosquitto(t, "max_queued_messages 1000", "allow_anonymous false", "password_file "+pwFile, "acl_file "+acl)

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
