package pgstore

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultRetention is how many months of history a store keeps.
const DefaultRetention = 13

// Options configures Open.
type Options struct {
	// Now is the clock for credential creation times, report ages when
	// ReportOptions.Now is nil, the stale filter of Devices and the
	// history's retention (default time.Now).
	Now func() time.Time
	// Retention is how many months of history are kept, the current one
	// included (default DefaultRetention); older months are dropped
	// whole, as partitions.
	Retention int
	// HistoryLimit is how many events History returns per device, the
	// newest (default fleet.DefaultHistoryLimit), as the bbolt store
	// keeps.
	HistoryLimit int
	// MaxConns bounds the connections to the server (default 8).
	MaxConns int32
}

// Store is the fleet database on PostgreSQL. Several processes may
// write it at once (collectors of one $share group on one or several
// brokers, servers): each keeps its own rows of counters and aggregates,
// and a batch writes a device's row only if nobody changed it since the
// batch read it (reading and applying it again otherwise), so the report
// with the highest seq wins whoever receives it. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	opts   Options
	name   string
	writer string // this process's rows of counters and aggregates

	// beforeWrite, if set (tests only), runs in Commit after the rows
	// were read and before they are written.
	beforeWrite func()

	mu     sync.Mutex
	months map[string]bool // history partitions known to exist
	stats  fleet.Stats     // the last counters read
}

// IsDSN tells whether s names a PostgreSQL database (postgres:// or
// postgresql://) rather than a bbolt file.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns dsn without its password, for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Open connects to the database at dsn (postgres://user@host:port/db?…,
// libpq's syntax; a password may come from ~/.pgpass or PGPASSWORD),
// applies the schema migrations this version knows (under an advisory
// lock, so servers starting together apply each once), makes sure the
// history partitions of this month and the next exist and drops months
// beyond the retention.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = fleet.DefaultHistoryLimit
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	name := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the URL: give only its cause.
		cause := errors.Unwrap(err)
		if cause == nil {
			cause = errors.New("not a PostgreSQL URL (postgres://user@host:port/database?sslmode=…)")
		}
		return nil, fmt.Errorf("fleet database %s: %w: %w", name, fleet.ErrDatabase, cause)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.ConnConfig.Host != "" {
		name = "postgres://" + cfg.ConnConfig.User + "@" + net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))) + "/" + cfg.ConnConfig.Database
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", name, err)
	}
	w := make([]byte, 8)
	rand.Read(w)
	s := &Store{pool: pool, opts: opts, name: name, writer: hex.EncodeToString(w), months: map[string]bool{}}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("fleet database %s: %w", name, err)
	}
	if err := s.compact(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("fleet database %s: %w", name, err)
	}
	now := opts.Now().UTC()
	for _, t := range []time.Time{now, now.AddDate(0, 1, 0)} {
		if err := s.ensureMonth(ctx, t); err != nil {
			pool.Close()
			return nil, fmt.Errorf("fleet database %s: %w", name, err)
		}
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Name is the database's URL without its password (fleet.Sink).
func (s *Store) Name() string { return s.name }

// migrationLock is the advisory lock key under which migrations and
// partition changes run ("lampifle" in ASCII).
const migrationLock = 0x6c616d7069666c65

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction, under an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("lock for migrations: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	newest := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return err
		}
		applied[v] = true
		newest = max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(files)
	known := 0
	for _, f := range files {
		base := path.Base(f)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", base)
		}
		known = max(known, v)
		if applied[v] {
			continue
		}
		sql, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, base)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: migration %s: %w", fleet.ErrDatabase, base, err)
		}
	}
	if newest > known {
		return fmt.Errorf("%w: schema version %d is newer than this lampi-pkg knows (%d): upgrade lampi-pkg", fleet.ErrDatabase, newest, known)
	}
	return nil
}

// compact folds the aggregate and counter rows of every writer into
// one row ("") each: sums are unchanged, and rows do not pile up over
// restarts. A writer still running just starts a new row.
func (s *Store) compact(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`WITH moved AS (DELETE FROM version_counts WHERE writer <> '' RETURNING package, version, devices)
			 INSERT INTO version_counts (writer, package, version, devices)
			 SELECT '', package, version, sum(devices) FROM moved GROUP BY package, version
			 ON CONFLICT (writer, package, version) DO UPDATE SET devices = version_counts.devices + excluded.devices`,
			`DELETE FROM version_counts WHERE writer = '' AND devices = 0`,
			`WITH moved AS (DELETE FROM device_counts WHERE writer <> '' RETURNING devices, online)
			 INSERT INTO device_counts (writer, devices, online) SELECT '', coalesce(sum(devices), 0), coalesce(sum(online), 0) FROM moved
			 ON CONFLICT (writer) DO UPDATE SET devices = device_counts.devices + excluded.devices, online = device_counts.online + excluded.online`,
			`WITH moved AS (DELETE FROM collector_stats WHERE writer <> '' RETURNING *)
			 INSERT INTO collector_stats SELECT '', coalesce(sum(received), 0), coalesce(sum(stored), 0), coalesce(sum(stale), 0),
			   coalesce(sum(invalid), 0), coalesce(sum(spoofed), 0), coalesce(sum(rejected), 0), coalesce(sum(status), 0) FROM moved
			 ON CONFLICT (writer) DO UPDATE SET received = collector_stats.received + excluded.received,
			   stored = collector_stats.stored + excluded.stored, stale = collector_stats.stale + excluded.stale,
			   invalid = collector_stats.invalid + excluded.invalid, spoofed = collector_stats.spoofed + excluded.spoofed,
			   rejected = collector_stats.rejected + excluded.rejected, status = collector_stats.status + excluded.status`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("fold counters: %w", err)
			}
		}
		return nil
	})
}

// monthName is the history partition of t's month.
func monthName(t time.Time) string {
	return fmt.Sprintf("history_y%04dm%02d", t.Year(), int(t.Month()))
}

// ensureMonth creates the history partition of t's month (UTC) if it
// does not exist; a new month also drops the months beyond the
// retention.
func (s *Store) ensureMonth(ctx context.Context, t time.Time) error {
	t = t.UTC()
	name := monthName(t)
	s.mu.Lock()
	known := s.months[name]
	s.mu.Unlock()
	if known {
		return nil
	}
	from := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF history FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{name}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339)))
		return err
	})
	if err != nil {
		return fmt.Errorf("history partition %s: %w", name, err)
	}
	s.mu.Lock()
	s.months[name] = true
	s.mu.Unlock()
	return s.dropOldMonths(ctx)
}

// dropOldMonths drops the history partitions of months older than the
// retention.
func (s *Store) dropOldMonths(ctx context.Context) error {
	now := s.opts.Now().UTC()
	oldest := monthName(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1-s.opts.Retention, 0))
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'history'::regclass`)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			// Names sort as their months: history_yYYYYmMM.
			if strings.HasPrefix(n, "history_y") && len(n) == len(oldest) && n < oldest {
				if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{n}.Sanitize()); err != nil {
					return fmt.Errorf("drop history partition %s: %w", n, err)
				}
				s.mu.Lock()
				delete(s.months, n)
				s.mu.Unlock()
			}
		}
		return nil
	})
}

// retryable tells whether a transaction failed only because it met
// another one (deadlock, serialization): it may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// Stats returns the counters of every writer summed, and the number of
// devices; if the database cannot be read, the last counters read.
func (s *Store) Stats() fleet.Stats {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var st fleet.Stats
	var devices int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(received), 0)::bigint, coalesce(sum(stored), 0)::bigint, coalesce(sum(stale), 0)::bigint,
		coalesce(sum(invalid), 0)::bigint, coalesce(sum(spoofed), 0)::bigint, coalesce(sum(rejected), 0)::bigint, coalesce(sum(status), 0)::bigint,
		(SELECT coalesce(sum(devices), 0)::bigint FROM device_counts) FROM collector_stats`).Scan(
		&st.Received, &st.Stored, &st.Stale, &st.Invalid, &st.Spoofed, &st.Rejected, &st.Status, &devices)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return s.stats
	}
	st.Devices = int(devices)
	s.stats = st
	return st
}

// OpenDB opens the fleet database where names: a PostgreSQL database
// for a postgres:// or postgresql:// URL (Open, with opts' clock and
// history limit), otherwise the bbolt file at that path (fleet.Open).
func OpenDB(ctx context.Context, where string, opts fleet.StoreOptions) (fleet.DB, error) {
	if !IsDSN(where) {
		return fleet.Open(where, opts)
	}
	return Open(ctx, where, Options{Now: opts.Now, HistoryLimit: opts.HistoryLimit})
}
