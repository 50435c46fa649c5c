// Package db is the invitations repository: the PostgreSQL schema, its migrations and
// one method per use case. Every rule of the product (weekly and pending caps, cooldown,
// expiry, one live invitation per pair, connection caps, note quota, privacy) is
// enforced here, inside one READ COMMITTED transaction per call that locks what must be
// serialised in one global order: members by ascending id, then invitations by
// ascending id, then the idempotency row.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
)

// Store is the repository. It is safe for concurrent use.
type Store struct {
	db       *sqlx.DB
	limits   Limits
	clock    func() time.Time
	poolWait time.Duration
	// poolTimeouts counts the waits for a pooled connection that poolWait cut short.
	poolTimeouts atomic.Uint64
}

// New returns a Store on an open database. clock is read once per transaction; nil
// means time.Now.
func New(db *sqlx.DB, limits Limits, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: db, limits: limits, clock: clock}
}

// Options are the connection settings Open applies. The zero value leaves the server's
// own settings alone and keeps a pool of 20 connections.
type Options struct {
	// StatementTimeout, LockTimeout and IdleInTransactionTimeout are sent as the
	// run-time parameters statement_timeout, lock_timeout and
	// idle_in_transaction_session_timeout (in whole milliseconds, rounded up) of every
	// connection, unless the DSN already sets that parameter (as a key of its own or in
	// its options / PGOPTIONS), which then wins. Zero sends nothing: the server's
	// setting applies (PostgreSQL's default is no timeout).
	StatementTimeout         time.Duration
	LockTimeout              time.Duration
	IdleInTransactionTimeout time.Duration
	// MaxConns caps the pool's open (and idle) connections; zero means 20. A request
	// that finds the pool exhausted waits for a connection until its context ends.
	MaxConns int
	// Tracer, when set, observes every statement the pool's connections run (tests
	// record them; a deployment could export them as traces).
	Tracer pgx.QueryTracer
}

// DefaultOptions are the server's defaults: statements end after 5 s, lock waits after
// 2 s, sessions idle inside a transaction after 30 s, and at most 20 connections.
func DefaultOptions() Options {
	return Options{StatementTimeout: 5 * time.Second, LockTimeout: 2 * time.Second,
		IdleInTransactionTimeout: 30 * time.Second, MaxConns: 20}
}

// Open connects to the database at dsn (a libpq URL or key=value string) and checks
// that it answers. It fails when the server cannot be reached within ctx. With no
// opts, Open behaves as Options{} (no timeouts of its own, 20 connections); with
// several, the first is used.
//
// The pool's connections are pgx's, behind database/sql: each prepares a statement
// text the first time it runs it and reuses the prepared statement afterwards (one
// round trip, and PostgreSQL's plan cache, as pgbench -M prepared), and reads results
// in binary. A statement whose context ends is cancelled on the server, as libpq
// does; the connection is dropped only if the server does not answer the
// cancellation within a second.
func Open(ctx context.Context, dsn string, opts ...Options) (*sqlx.DB, error) {
	var opt Options
	if len(opts) > 0 {
		opt = opts[0]
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{
		{"statement_timeout", opt.StatementTimeout},
		{"lock_timeout", opt.LockTimeout},
		{"idle_in_transaction_session_timeout", opt.IdleInTransactionTimeout},
	} {
		if p.d <= 0 || dsnSets(cfg.RuntimeParams, p.name) {
			continue
		}
		ms := (p.d + time.Millisecond - 1) / time.Millisecond
		cfg.RuntimeParams[p.name] = strconv.FormatInt(int64(ms), 10)
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	cfg.Tracer = opt.Tracer
	db := sqlx.NewDb(stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(scanUTC)), "pgx")
	maxConns := opt.MaxConns
	if maxConns <= 0 {
		maxConns = 20
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// scanUTC makes conn read timestamptz values as UTC times (pgx's default is
// time.Local), as the store writes them and its clock reads.
func scanUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
	return nil
}

// dsnSets reports whether the parsed DSN (or PGOPTIONS) already sets the run-time
// parameter name, as a key of its own or as "-c name=..." in options.
func dsnSets(params map[string]string, name string) bool {
	for k := range params {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	opts := strings.ToLower(params["options"])
	return strings.Contains(opts, name+"=") || strings.Contains(opts, strings.ReplaceAll(name, "_", "-")+"=")
}

// DB returns the underlying connection pool.
func (s *Store) DB() *sqlx.DB { return s.db }

// Limits returns the limits the store enforces.
func (s *Store) Limits() Limits { return s.limits }

// Now reads the store's clock, truncated to PostgreSQL's microsecond precision.
func (s *Store) Now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// maxAttempts bounds how often a transaction is retried after a deadlock or a
// serialization failure; neither should happen with the lock order above.
const maxAttempts = 3

// inTx runs fn in one READ COMMITTED transaction with one reading of the clock. The
// isolation level is set explicitly: the locking scheme relies on each statement
// seeing rows committed while it waited for a lock, which REPEATABLE READ and
// SERIALIZABLE do not give. fn's error rolls the transaction back and is returned;
// driver errors are translated by translate.
func (s *Store) inTx(ctx context.Context, fn func(tx *Tx, now time.Time) error) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = s.tryTx(ctx, fn)
		if !retryable(err) {
			break
		}
	}
	return translate(err)
}

// errPoolWait is the error of a transaction that got no connection within poolWait.
var errPoolWait = errors.New("no database connection free")

// SetPoolWait bounds how long a transaction, and a request's reads (the viewer lookup
// that starts every request, lists, loaders), wait for a free pooled connection: past
// it they fail with CodeServiceBusy (retryable) instead of holding the request until
// the client gives up. Zero (the default) waits as long as the request's context
// allows. Call it before use.
func (s *Store) SetPoolWait(d time.Duration) { s.poolWait = d }

// conn takes a connection from the pool, waiting at most poolWait; the caller closes it.
func (s *Store) conn(ctx context.Context) (*sqlx.Conn, error) {
	if s.poolWait <= 0 {
		return s.db.Connx(ctx)
	}
	waitCtx, cancel := context.WithTimeout(ctx, s.poolWait)
	defer cancel()
	conn, err := s.db.Connx(waitCtx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		s.poolTimeouts.Add(1)
		return nil, errPoolWait
	}
	return conn, err
}

// PoolWaitTimeouts is how many times a request found no free pooled connection within
// the wait SetPoolWait allows, and was answered CodeServiceBusy: a pool too small for
// the load, or connections held too long.
func (s *Store) PoolWaitTimeouts() uint64 { return s.poolTimeouts.Load() }

func (s *Store) tryTx(ctx context.Context, fn func(tx *Tx, now time.Time) error) error {
	conn, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	sqlTx, err := conn.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	tx := &Tx{Tx: sqlTx, conn: conn}
	defer tx.Rollback()
	if err := fn(tx, s.Now()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if len(tx.events) > 0 {
		publish(ctx, conn, tx.events)
	}
	return nil
}

// Tx is a transaction of tryTx: database/sql's, for sqlx's Get, Select and Exec, on
// the pooled connection whose pgx interface its hot statements use (queryRows,
// queryRow), with the events to publish once it commits.
type Tx struct {
	*sqlx.Tx
	conn   *sqlx.Conn
	events []Event // only the transaction's goroutine appends
}

// withConn runs fn with the pgx connection the transaction is open on; fn's statements
// are part of it.
func (tx *Tx) withConn(ctx context.Context, fn func(c *pgx.Conn) error) error {
	return rawConn(tx.conn, fn)
}

// retryable reports a deadlock or serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// inString reports whether s is one of list.
func inString(s string, list ...string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}
