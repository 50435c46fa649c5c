package db_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// timeoutOpen opens dsn with opt and closes the pool when the test ends.
func timeoutOpen(t *testing.T, dsn string, opt ...db.Options) *sqlx.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Open(ctx, dsn, opt...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// timeoutShow returns SHOW name on one connection of conn.
func timeoutShow(t *testing.T, conn *sqlx.DB, name string) string {
	t.Helper()
	var v string
	if err := conn.Get(&v, `SHOW `+name); err != nil {
		t.Fatal(err)
	}
	return v
}

// timeoutPoll waits until cond holds, polling every 10 ms, and fails the test after d.
func timeoutPoll(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestTimeoutParamsFromOptions(t *testing.T) {
	t.Parallel()
	url := dbtest.DSN(t)
	kv, err := keyValueDSN(url)
	if err != nil {
		t.Fatal(err)
	}
	opt := db.Options{StatementTimeout: 1500 * time.Millisecond, LockTimeout: 250 * time.Millisecond,
		IdleInTransactionTimeout: 3 * time.Second, MaxConns: 3}
	want := map[string]string{"statement_timeout": "1500ms", "lock_timeout": "250ms", "idle_in_transaction_session_timeout": "3s"}
	// Both DSN forms carry the parameters (pgx sends unknown keys at startup).
	for form, dsn := range map[string]string{"URL": url, "KeyValue": kv} {
		conn := timeoutOpen(t, dsn, opt)
		for name, v := range want {
			if got := timeoutShow(t, conn, name); got != v {
				t.Errorf("%s: %s = %q, want %q", form, name, got, v)
			}
		}
		if n := conn.Stats().MaxOpenConnections; n != 3 {
			t.Errorf("%s: MaxOpenConnections = %d, want 3", form, n)
		}
	}
	// Without options nothing is sent: the server's defaults (no timeouts), 20 connections.
	conn := timeoutOpen(t, url)
	for name := range want {
		if got := timeoutShow(t, conn, name); got != "0" {
			t.Errorf("no options: %s = %q, want 0", name, got)
		}
	}
	if n := conn.Stats().MaxOpenConnections; n != 20 {
		t.Errorf("no options: MaxOpenConnections = %d, want 20", n)
	}
	// Sub-millisecond remainders round up (on a timeout long enough for the SHOW itself
	// on a loaded machine: 2ms was not); the defaults are 5s, 2s, 30s.
	conn = timeoutOpen(t, url, db.Options{StatementTimeout: time.Second + 500*time.Microsecond})
	if got := timeoutShow(t, conn, "statement_timeout"); got != "1001ms" {
		t.Errorf("rounding: statement_timeout = %q, want 1001ms", got)
	}
	conn = timeoutOpen(t, url, db.DefaultOptions())
	for name, v := range map[string]string{"statement_timeout": "5s", "lock_timeout": "2s", "idle_in_transaction_session_timeout": "30s"} {
		if got := timeoutShow(t, conn, name); got != v {
			t.Errorf("defaults: %s = %q, want %q", name, got, v)
		}
	}
}

func TestTimeoutDSNValueWins(t *testing.T) {
	t.Parallel()
	url := dbtest.DSN(t)
	kv, err := keyValueDSN(url)
	if err != nil {
		t.Fatal(err)
	}
	opt := db.DefaultOptions()
	cases := map[string]struct {
		dsn  string
		want map[string]string
	}{
		"URLKey": {url + "&statement_timeout=777&lock_timeout=3s",
			map[string]string{"statement_timeout": "777ms", "lock_timeout": "3s", "idle_in_transaction_session_timeout": "30s"}},
		"KeyValueKey": {kv + " idle_in_transaction_session_timeout=4444",
			map[string]string{"statement_timeout": "5s", "lock_timeout": "2s", "idle_in_transaction_session_timeout": "4444ms"}},
		"Options": {kv + ` options='-c statement_timeout=1234 -c lock_timeout=99'`,
			map[string]string{"statement_timeout": "1234ms", "lock_timeout": "99ms", "idle_in_transaction_session_timeout": "30s"}},
	}
	for name, c := range cases {
		conn := timeoutOpen(t, c.dsn, opt)
		for p, v := range c.want {
			if got := timeoutShow(t, conn, p); got != v {
				t.Errorf("%s: %s = %q, want %q", name, p, got, v)
			}
		}
	}
}

func TestTimeoutStatement(t *testing.T) {
	t.Parallel()
	conn := timeoutOpen(t, dbtest.DSN(t), db.Options{StatementTimeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := conn.Exec(`SELECT pg_sleep(1)`)
	took := time.Since(start)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("pg_sleep(1) under a 100ms statement_timeout: %v, want 57014", err)
	}
	if took > 800*time.Millisecond {
		t.Errorf("statement_timeout took %v", took)
	}
	t.Logf("statement_timeout 100ms: canceled after %v (SQLSTATE %s)", took.Round(time.Millisecond), pgErr.Code)
	// The connection stays usable.
	if got := timeoutShow(t, conn, "statement_timeout"); got != "100ms" {
		t.Errorf("after the timeout: statement_timeout = %q", got)
	}
}

// TestTimeoutLock: a send whose sender row is locked by someone else fails with the
// retryable SERVICE_BUSY in about lock_timeout, while another sender is unaffected.
func TestTimeoutLock(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t)
	conn := timeoutOpen(t, dsn, db.Options{LockTimeout: 200 * time.Millisecond, StatementTimeout: 5 * time.Second})
	store := db.New(conn, db.DefaultLimits(), nil)
	var ids []int64
	if err := conn.Select(&ids, `INSERT INTO members (handle, name) SELECT 'm' || g, 'M' FROM generate_series(1, 4) g RETURNING id`); err != nil {
		t.Fatal(err)
	}
	locker := timeoutOpen(t, dsn)
	tx, err := locker.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT 1 FROM members WHERE id = $1 FOR UPDATE`, ids[0]); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	_, err = store.SendInvitation(ctx, ids[0], db.SendInput{RecipientID: ids[1], RecipientFound: true})
	took := time.Since(start)
	if e, ok := db.AsError(err); !ok || e.Code != db.CodeServiceBusy || strings.Contains(e.Message, "pq:") {
		t.Fatalf("send with the sender locked: %v, want SERVICE_BUSY", err)
	}
	if took < 150*time.Millisecond || took > time.Second {
		t.Errorf("lock_timeout 200ms answered after %v", took)
	}
	start = time.Now()
	if _, err := store.SendInvitation(ctx, ids[2], db.SendInput{RecipientID: ids[3], RecipientFound: true}); err != nil {
		t.Fatalf("another sender while the first is locked: %v", err)
	}
	other := time.Since(start)
	t.Logf("lock_timeout 200ms: locked sender refused after %v; other sender served in %v",
		took.Round(time.Millisecond), other.Round(time.Millisecond))
	tx.Rollback()
	if _, err := store.SendInvitation(ctx, ids[0], db.SendInput{RecipientID: ids[1], RecipientFound: true}); err != nil {
		t.Fatalf("after release: %v", err)
	}
	var n int
	conn.Get(&n, `SELECT count(*) FROM invitations`)
	if n != 2 {
		t.Errorf("%d invitations, want 2", n)
	}
}

func TestTimeoutIdleInTransaction(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t)
	conn := timeoutOpen(t, dsn, db.Options{IdleInTransactionTimeout: 200 * time.Millisecond})
	observer := timeoutOpen(t, dsn)
	tx, err := conn.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var pid int
	if err := tx.Get(&pid, `SELECT pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	took := timeoutPoll(t, 5*time.Second, "idle-in-transaction session ended", func() bool {
		var n int
		observer.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid)
		return n == 0
	})
	if _, err := tx.Exec(`SELECT 1`); err == nil {
		t.Fatal("the transaction outlived idle_in_transaction_session_timeout")
	}
	// The pool replaces the dead connection.
	if got := timeoutShow(t, conn, "idle_in_transaction_session_timeout"); got != "200ms" {
		t.Errorf("new connection: %q", got)
	}
	t.Logf("idle_in_transaction_session_timeout 200ms: session ended within %v", took.Round(time.Millisecond))
}

// TestTimeoutPoolExhausted: with every connection held, a query waits for the pool only
// until its context ends, and the driver cancels a running query server-side when the
// context ends.
func TestTimeoutPoolExhausted(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t)
	conn := timeoutOpen(t, dsn, db.Options{MaxConns: 2})
	ctx := context.Background()
	var held []*sqlx.Conn
	for range 2 {
		c, err := conn.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, err := conn.ExecContext(qctx, `SELECT 1`)
	waited := time.Since(start)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || waited > time.Second {
		t.Fatalf("query on an exhausted pool: %v after %v, want the context's deadline", err, waited)
	}
	for _, c := range held {
		c.Close()
	}
	start = time.Now()
	if _, err := conn.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	t.Logf("exhausted pool of 2: refused at the 300ms deadline after %v; next query after release in %v",
		waited.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// A running statement is canceled server-side when its context ends.
	observer := timeoutOpen(t, dsn)
	qctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = conn.ExecContext(qctx, `SELECT pg_sleep(5) /* timeout-cancel */`)
	back := time.Since(start)
	if err == nil || back > time.Second {
		t.Fatalf("pg_sleep(5) with a 200ms context: %v after %v", err, back)
	}
	gone := timeoutPoll(t, time.Second, "canceled backend query gone", func() bool {
		var n int
		observer.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%timeout-cancel%' AND pid <> pg_backend_pid()`)
		return n == 0
	})
	t.Logf("context cancel: back in %v, backend query gone %v later", back.Round(time.Millisecond), gone.Round(time.Millisecond))
}

// keyValueDSN spells a postgres:// URL as libpq's key=value string.
func keyValueDSN(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)+"'")
		}
	}
	add("host", u.Hostname())
	add("port", u.Port())
	add("user", u.User.Username())
	if pw, ok := u.User.Password(); ok {
		add("password", pw)
	}
	add("dbname", strings.TrimPrefix(u.Path, "/"))
	for k, vs := range u.Query() {
		add(k, vs[len(vs)-1])
	}
	return strings.Join(kv, " "), nil
}
