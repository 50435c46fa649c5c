package db_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// t0 is the fixtures' "now" at the start of every test.
var t0 = time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

// fixture is a store on a fresh database with a clock the test moves.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	conn  *sqlx.DB
	store *db.Store
	clock *dbtest.Clock
	seq   int
}

func newFixture(t testing.TB, adjust ...func(*db.Limits)) *fixture {
	t.Helper()
	limits := db.DefaultLimits()
	for _, f := range adjust {
		f(&limits)
	}
	conn := dbtest.Open(t)
	clock := dbtest.NewClock(t0)
	return &fixture{t: t, ctx: context.Background(), conn: conn, store: db.New(conn, limits, clock.Now), clock: clock}
}

// member creates a member and returns its id.
func (f *fixture) member(handle string) int64 { return f.memberOn(handle, db.PlanStandard) }

func (f *fixture) memberOn(handle, plan string) int64 {
	f.t.Helper()
	var id int64
	err := f.conn.Get(&id, `INSERT INTO members (handle, name, plan) VALUES ($1, $2, $3) RETURNING id`, handle, "Member "+handle, plan)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// members creates n members named prefix0..prefixN-1.
func (f *fixture) members(prefix string, n int) []int64 {
	f.t.Helper()
	var ids []int64
	err := f.conn.Select(&ids, `INSERT INTO members (handle, name) SELECT $1 || g, 'Member ' || g FROM generate_series(0, $2 - 1) g RETURNING id`, prefix, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

// history inserts past invitations from sender to fresh recipients, bypassing the rules.
func (f *fixture) history(sender int64, status string, sentAt ...time.Time) []int64 {
	f.t.Helper()
	f.seq++
	recipients := f.members(fmt.Sprintf("h%d_%d_", sender, f.seq), len(sentAt))
	withdrawn := status == db.StatusWithdrawn
	responded := status == db.StatusAccepted || status == db.StatusIgnored
	var ids []int64
	err := f.conn.Select(&ids, `
INSERT INTO invitations (sender_id, recipient_id, status, sent_at, withdrawn_at, responded_at)
SELECT $1, r, $3, s, CASE WHEN $5 THEN s END, CASE WHEN $6 THEN s END
  FROM unnest($2::bigint[], $4::timestamptz[]) WITH ORDINALITY AS x(r, s, n)
 ORDER BY n
RETURNING id`, sender, recipients, status, sentAt, withdrawn, responded)
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

// scalar runs a query returning one integer.
func (f *fixture) scalar(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.conn.Get(&n, query, args...); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) send(from, to int64) (*db.SendResult, error) {
	return f.store.SendInvitation(f.ctx, from, db.SendInput{RecipientID: to, RecipientFound: true})
}

func (f *fixture) sendNote(from, to int64, note string) (*db.SendResult, error) {
	return f.store.SendInvitation(f.ctx, from, db.SendInput{RecipientID: to, RecipientFound: true, Message: &note})
}

// mustSend sends and fails the test on any error.
func (f *fixture) mustSend(from, to int64) *db.Invitation {
	f.t.Helper()
	res, err := f.send(from, to)
	if err != nil {
		f.t.Fatalf("send %d→%d: %v", from, to, err)
	}
	return res.Invitation
}

func (f *fixture) withdraw(viewer, id int64) (*db.Invitation, error) {
	return f.store.WithdrawInvitation(f.ctx, viewer, id, true)
}

func (f *fixture) quota(member int64) *db.Quota {
	f.t.Helper()
	q, err := f.store.Quota(f.ctx, member)
	if err != nil {
		f.t.Fatal(err)
	}
	return q
}

// codeOf returns the refusal code of err ("" for nil); any other error fails the test.
func codeOf(t testing.TB, err error) db.Code {
	t.Helper()
	if err == nil {
		return ""
	}
	e, ok := db.AsError(err)
	if !ok {
		t.Fatalf("unexpected error: %v", err)
	}
	return e.Code
}

// wantCode fails unless err is a refusal with code.
func wantCode(t testing.TB, err error, code db.Code) *db.Error {
	t.Helper()
	if got := codeOf(t, err); got != code {
		t.Fatalf("got %q (%v), want %q", got, err, code)
	}
	e, _ := db.AsError(err)
	return e
}

// parallel runs fn n times at once, released together, and returns the errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// tally counts errors by refusal code; "" counts successes.
func tally(t testing.TB, errs []error) map[db.Code]int {
	t.Helper()
	out := map[db.Code]int{}
	for _, err := range errs {
		out[codeOf(t, err)]++
	}
	return out
}

// checksum digests every row a query returns, to prove rows did not change.
func (f *fixture) checksum(query string) string {
	f.t.Helper()
	var sum string
	if err := f.conn.Get(&sum, `SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM (`+query+`) t`); err != nil {
		f.t.Fatal(err)
	}
	return sum
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// defaultIsolation makes level the default isolation of every new connection, as a
// misconfigured server would.
func (f *fixture) defaultIsolation(level string) {
	f.t.Helper()
	var name string
	if err := f.conn.Get(&name, `SELECT current_database()`); err != nil {
		f.t.Fatal(err)
	}
	f.conn.MustExec(`ALTER DATABASE ` + name + ` SET default_transaction_isolation = '` + level + `'`)
	f.conn.SetMaxIdleConns(0) // drop pooled connections: new ones get the new default
	f.conn.SetMaxIdleConns(40)
	var got string
	if err := f.conn.Get(&got, `SHOW default_transaction_isolation`); err != nil || got != level {
		f.t.Fatalf("default isolation %q, %v", got, err)
	}
}
