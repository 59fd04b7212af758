package loadtest

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

func TestRunMQTTS(t *testing.T) {
	ca := testutil.NewCA(t, "loadtest CA")
	srv := ca.Server(t, "127.0.0.1")
	caFile, certFile, keyFile, pool := ca.File, srv.CertFile, srv.KeyFile, ca.Pool()
	// As root, mosquitto reads certificates after dropping to its own user,
	// which cannot enter the test's private temporary directory.
	broker := startMosquitto(t, "cafile "+caFile, "certfile "+certFile, "keyfile "+keyFile, "allow_anonymous true")
	broker = "mqtts://" + strings.TrimPrefix(broker, "mqtt://")
	res, err := Run(context.Background(), Options{Devices: 4, Duration: time.Minute, MaxReports: 20, QoS: 1, Status: true,
		Broker: broker, TLS: &tls.Config{RootCAs: pool}, Subscribe: true, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MQTT; m.Acked != 20 || m.Failed != 0 || m.StatusAcked != 8 {
		t.Errorf("mqtt %+v", m)
	}
	if s := res.Subscriber; s.Received != 20 {
		t.Errorf("subscriber %+v", s)
	}
	// Without the CA the broker's certificate is refused.
	_, err = Run(context.Background(), Options{Devices: 1, Duration: time.Second, Broker: broker, Now: time.Now})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("unknown CA: %v", err)
	}
}
