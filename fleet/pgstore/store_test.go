package pgstore

import (
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet/fleettest"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// cluster is one private PostgreSQL for the tests of this package, each
// test in a database of its own.
var (
	clusterOnce sync.Mutex
	cluster     *testutil.Postgres
	dbSeq       atomic.Int64
)

// newDB returns the DSN of a fresh database. The cluster is started by
// the first test that needs one and stopped when that test ends, so the
// tests needing it run inside TestPostgres as subtests.
func newDB(t *testing.T) string {
	t.Helper()
	clusterOnce.Lock()
	defer clusterOnce.Unlock()
	if cluster == nil {
		t.Fatal("newDB outside TestPostgres")
	}
	return cluster.CreateDB(t, fmt.Sprintf("fleet%d", dbSeq.Add(1)))
}

func openTest(t *testing.T, dsn string, o Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPostgres starts one cluster and runs every test of the store on it.
func TestPostgres(t *testing.T) {
	p := testutil.StartPostgres(t)
	clusterOnce.Lock()
	cluster = p
	clusterOnce.Unlock()
	t.Cleanup(func() {
		clusterOnce.Lock()
		cluster = nil
		clusterOnce.Unlock()
	})
	t.Run("Suite", func(t *testing.T) {
		fleettest.Run(t, func(t *testing.T, o fleettest.Options) (fleettest.Store, func() fleettest.Store) {
			dsn := newDB(t)
			opts := Options{Now: o.Now, HistoryLimit: o.HistoryLimit}
			s := openTest(t, dsn, opts)
			return s, func() fleettest.Store { return openTest(t, dsn, opts) }
		})
	})
	for _, tc := range pgTests {
		t.Run(tc.name, tc.fn)
	}
}

// pgTests are the tests of what only this store does.
var pgTests = []struct {
	name string
	fn   func(*testing.T)
}{
	{"MigrationsOnceUnderLock", testMigrationsOnce},
	{"Retention", testRetention},
	{"TwoBrokersFourCollectorsOneDatabase", testTwoBrokers},
	{"WriterGotThereFirst", testWriterGotThereFirst},
}

// testMigrationsOnce: eight servers opening one empty database at once
// apply the schema once (no "already exists" error), and record it.
func testMigrationsOnce(t *testing.T) {
	dsn := newDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(t.Context(), dsn, Options{})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := openTest(t, dsn, Options{})
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(files) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(files))
	}
	// A schema newer than this program is refused, not damaged.
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), dsn, Options{}); err == nil {
		t.Error("a database with a newer schema was opened")
	}
}

// testRetention: history partitions exist for this month and the next,
// and months older than the retention are dropped when the clock moves
// into a new month.
func testRetention(t *testing.T) {
	dsn := newDB(t)
	now := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	s := openTest(t, dsn, Options{Now: func() time.Time { return now }, Retention: 2})
	parts := func() []string {
		rows, err := s.pool.Query(t.Context(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'history'::regclass ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			out = append(out, n)
		}
		return out
	}
	if got := fmt.Sprint(parts()); got != "[history_y2026m01 history_y2026m02]" {
		t.Fatalf("partitions %s", got)
	}
	// Three months later: January and February are beyond 2 months.
	now = time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)
	if err := s.ensureMonth(t.Context(), now); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(parts()); got != "[history_y2026m04]" {
		t.Errorf("partitions after April began: %s", got)
	}
}

// TestOpenNeverShowsThePassword: a URL that pgx cannot parse, and one
// whose server is not there, fail without the password in the error.
func TestOpenNeverShowsThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://lampi:hunter2-secret@127.0.0.1:1/fleet?sslmode=disable&connect_timeout=5",
		"postgres://lampi:hunter2-secret@127.0.0.1:notaport/fleet",
		"postgres://lampi@127.0.0.1:1/fleet?password=hunter2-secret&sslmode=bogus",
	} {
		_, err := Open(t.Context(), dsn, Options{})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%s): %v", Redact(dsn), err)
		}
		t.Log(err)
		if strings.Contains(Redact(dsn), "hunter2") {
			t.Errorf("Redact(%s) shows the password", Redact(dsn))
		}
	}
}
