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
