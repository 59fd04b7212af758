package pgstore

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/fleet/fleettest"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// BenchmarkStoreSize is fleet's BenchmarkStoreSize on PostgreSQL: a
// private cluster with fsync on, filled with one report and an "online"
// status from each of FLEET_BENCH_STORE_DEVICES devices (default
// 1,000,000; one in a thousand offline, one in a hundred failed, hi 0.1 on
// one in four), in the collector's batches of 4096; then the time of a
// full report, and of one with the newest versions given (250,000 devices
// behind listed).
func BenchmarkStoreSize(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("FLEET_BENCH_STORE_DEVICES")); err == nil && v > 0 {
		n = v
	}
	p := testutil.StartPostgres(b, "fsync=on", "synchronous_commit=on", "full_page_writes=on", "shared_buffers=256MB")
	s, err := Open(b.Context(), p.CreateDB(b, "bench"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batchSize = 4096
	b.ResetTimer()
	start := time.Now()
	msgs := make([]fleet.Message, 0, batchSize)
	for i := range n {
		id := fmt.Sprintf("b827eb%06x", i)
		pl, _ := state.Encode(fleettest.TestState(id, i, 1))
		msgs = append(msgs, fleet.Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: pl, Received: start})
		if i%1000 != 0 {
			msgs = append(msgs, fleet.Message{Topic: state.StatusTopic(state.DefaultPrefix, id), Payload: []byte(state.Online), Received: start})
		}
		if len(msgs) >= batchSize || i == n-1 {
			if _, err := s.Apply(state.DefaultPrefix, msgs); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	took := time.Since(start)
	b.StopTimer()
	var size int64
	if err := s.pool.QueryRow(b.Context(), `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(b.Context(), `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	report := func(o fleet.ReportOptions) (*fleet.Report, time.Duration) {
		best := time.Duration(1 << 62)
		var rep *fleet.Report
		for range 3 {
			t0 := time.Now()
			r, err := s.Report(b.Context(), o)
			if err != nil || r.Devices != n {
				b.Fatalf("report: %v", err)
			}
			best, rep = min(best, time.Since(t0)), r
		}
		return rep, best
	}
	at := func() time.Time { return start }
	rep, full := report(fleet.ReportOptions{Now: at})
	repNewest, withNewest := report(fleet.ReportOptions{Now: at, Newest: map[string]string{"hi": "0.2"}})
	b.ReportMetric(float64(n)/took.Seconds(), "stored/s")
	b.ReportMetric(float64(size)/(1<<20), "db-MiB")
	b.ReportMetric(full.Seconds(), "report-s")
	b.ReportMetric(withNewest.Seconds(), "report-newest-s")
	b.Logf("%d devices stored in %v (%.0f/s); database %d MiB; full report %v (%d offline, %d failed listed); with --newest hi=0.2 %v (%d behind listed)",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), size>>20, full.Round(time.Millisecond),
		len(rep.OfflineDevices), len(rep.FailedDevices), withNewest.Round(time.Millisecond), len(repNewest.Packages[0].Behind))
}

// BenchmarkCommitSteady measures the store alone in a fleet's steady
// state, PostgreSQL (fsync on) against bbolt (fsync on) in the same run:
// FLEET_BENCH_DEVICES devices (default 4000) send periodic reports (seq
// and time change, versions do not) in the collector's batches of 4096;
// PostgreSQL through two writers at once (two collectors of a group, each
// batch holding reports of every device; FLEET_BENCH_PG_WRITERS=1: one),
// bbolt through its one. FLEET_BENCH_PG_STATEMENTS=FILE logs where the
// server's time went (pg_stat_statements) and writes the server's log,
// with the plans of statements slower than 300 ms (auto_explain), to FILE.
func BenchmarkCommitSteady(b *testing.B) {
	nDev := 4000
	if v, err := strconv.Atoi(os.Getenv("FLEET_BENCH_DEVICES")); err == nil && v > 0 {
		nDev = v
	}
	const rounds, batchSize = 40, 4096
	total := nDev * rounds
	// batches[w] are writer w's batches: writer 0 the even seqs, 1 the odd.
	mk := func(writers int) [][][]fleet.Message {
		out := make([][][]fleet.Message, writers)
		start := time.Now()
		var cur = make([][]fleet.Message, writers)
		for r := range rounds {
			w := r % writers
			for i := range nDev {
				id := fmt.Sprintf("b827eb%06x", i)
				st := fleettest.TestState(id, i, uint64(r+1))
				st.Packages["lampi-service"] = "1.0"
				pl, _ := state.Encode(st)
				cur[w] = append(cur[w], fleet.Message{Topic: state.StateTopic(state.DefaultPrefix, id), Payload: pl, Received: start})
				if len(cur[w]) == batchSize {
					out[w], cur[w] = append(out[w], cur[w]), nil
				}
			}
		}
		for w := range cur {
			if len(cur[w]) > 0 {
				out[w] = append(out[w], cur[w])
			}
		}
		return out
	}
	type applier interface {
		Apply(prefix string, msgs []fleet.Message) ([]fleet.Outcome, error)
	}
	run := func(stores []applier) float64 {
		batches := mk(len(stores))
		t0 := time.Now()
		errc := make(chan error, len(stores))
		for w, s := range stores {
			go func() {
				for _, m := range batches[w] {
					if _, err := s.Apply(state.DefaultPrefix, m); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
		}
		for range stores {
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		}
		return float64(total) / time.Since(t0).Seconds()
	}
	bolt, err := fleet.Open(b.TempDir()+"/fleet.db", fleet.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	settings := []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on", "shared_buffers=256MB"}
	// FLEET_BENCH_PG_SETTINGS: more server settings, for example
	// "synchronous_commit=off commit_delay=1000", to compare.
	settings = append(settings, strings.Fields(os.Getenv("FLEET_BENCH_PG_SETTINGS"))...)
	profile := os.Getenv("FLEET_BENCH_PG_STATEMENTS") != ""
	if profile {
		settings = append(settings, "shared_preload_libraries=pg_stat_statements,auto_explain", "track_io_timing=on",
			"auto_explain.log_min_duration=300ms", "auto_explain.log_analyze=on", "auto_explain.log_buffers=on", "auto_explain.log_wal=on")
	}
	p := testutil.StartPostgres(b, settings...)
	dsn := p.CreateDB(b, "bench")
	pg1, err := Open(b.Context(), dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer pg1.Close()
	pg2, err := Open(b.Context(), dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer pg2.Close()
	b.ResetTimer()
	boltRate := run([]applier{bolt})
	pgs := []applier{pg1, pg2}
	if os.Getenv("FLEET_BENCH_PG_WRITERS") == "1" {
		pgs = pgs[:1]
	}
	if profile {
		if _, err := pg1.pool.Exec(b.Context(), `CREATE EXTENSION pg_stat_statements`); err != nil {
			b.Fatal(err)
		}
		if _, err := pg1.pool.Exec(b.Context(), `SELECT pg_stat_statements_reset()`); err != nil {
			b.Fatal(err)
		}
	}
	pgRate := run(pgs)
	b.StopTimer()
	if profile {
		logStatements(b, pg1)
		if err := os.WriteFile(os.Getenv("FLEET_BENCH_PG_STATEMENTS"), []byte(p.Log()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	st := pg1.Stats()
	if st.Received != uint64(total) || st.Devices != nDev {
		b.Fatalf("postgres stats %+v", st)
	}
	b.ReportMetric(boltRate, "bbolt-reports/s")
	b.ReportMetric(pgRate, "postgres-reports/s")
	b.ReportMetric(pgRate/boltRate, "postgres/bbolt")
	b.Logf("%d devices × %d reports: bbolt %.0f/s, PostgreSQL (%d writers) %.0f/s, ratio %.2f (PostgreSQL: %d stored, %d stale)",
		nDev, rounds, boltRate, len(pgs), pgRate, pgRate/boltRate, st.Stored, st.Stale)
}

// logStatements logs where the server's time went, statement by
// statement (pg_stat_statements, FLEET_BENCH_PG_STATEMENTS=1).
func logStatements(b *testing.B, s *Store) {
	rows, err := s.pool.Query(b.Context(), `SELECT calls, round(total_exec_time)::bigint, rows, shared_blks_dirtied, wal_records, wal_bytes::bigint,
		left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var calls, ms, n, dirtied, walRecs, walBytes int64
		var q string
		if err := rows.Scan(&calls, &ms, &n, &dirtied, &walRecs, &walBytes, &q); err != nil {
			b.Fatal(err)
		}
		b.Logf("%6d calls %7d ms %8d rows %7d dirtied %8d WAL records %10d WAL bytes  %s", calls, ms, n, dirtied, walRecs, walBytes, q)
	}
}
