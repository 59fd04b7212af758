package loadtest

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPublishMosquitto measures the load generator's own cost per
// acknowledged report through a real Mosquitto (QoS 1, shared
// connections, no rate limit).
func BenchmarkPublishMosquitto(b *testing.B) {
	broker := startMosquitto(b, "allow_anonymous true")
	b.ResetTimer()
	res, err := Run(context.Background(), Options{Devices: 1000, Connections: 8, Duration: time.Hour,
		MaxReports: int64(b.N), QoS: 1, Broker: broker, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	if res.MQTT.Acked != uint64(b.N) {
		b.Fatalf("acked %d of %d", res.MQTT.Acked, b.N)
	}
	b.ReportMetric(res.MQTT.PerSecond, "msgs/s")
	b.ReportMetric(float64(res.MQTT.Latency.P99)/1e6, "p99-ms")
}

// BenchmarkPublishDevices is the per-device case of the fleet benchmark:
// 4,000 devices, each on its own connection (its id as client id, a
// Will), QoS 1, no rate limit; the CPU per acknowledged report is the
// load generator's share of the 2-core budget.
func BenchmarkPublishDevices(b *testing.B) {
	broker := startMosquitto(b, "allow_anonymous true")
	b.ResetTimer()
	res, err := Run(context.Background(), Options{Devices: 4000, Duration: time.Hour,
		MaxReports: int64(b.N), QoS: 1, Broker: broker, Status: true, Now: time.Now})
	if err != nil {
		b.Fatal(err)
	}
	if res.MQTT.Acked != uint64(b.N) {
		b.Fatalf("acked %d of %d", res.MQTT.Acked, b.N)
	}
	b.ReportMetric(res.MQTT.PerSecond, "msgs/s")
	b.ReportMetric(float64(res.MQTT.Latency.P99)/1e6, "p99-ms")
}
