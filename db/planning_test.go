package db_test

import (
	"context"
	"strings"
	"testing"

	"invitations/db"
	"invitations/db/dbtest"
)

// TestStatementsArePlannedOnce runs each mutation, the quota read and the loaders'
// lookups of one object ten times on a pool of one connection, as the server runs them
// (db.Open prepares each statement once per connection), and then reads the session's
// prepared statements.
//
// PostgreSQL plans a prepared statement for its parameter values (a custom plan) on its
// first five executions; after that it reuses one generic plan, unless the custom plans
// were estimated cheaper, in which case it plans every execution again. For the quota
// statement the planning took three times as long as the execution (about 1 ms against
// 0.3 ms in `go run ./bench -cases c -v`); for the members' locks and a withdrawal's
// statements, "id = ANY($1)" with one or two ids, it took longer than the statement. No
// statement here may be planned more than those first five times. (A withdrawal of
// several invitations is planned for its list, rightly: for "id = ANY($1) AND sender_id
// = $2" the generic plan scans the sender's index, thousands of rows for a heavy sender,
// as TestPlansOfHotStatements logs.)
func TestStatementsArePlannedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, dbtest.DSN(t), db.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	clock := dbtest.NewClock(t0)
	store := db.New(pool, db.DefaultLimits(), clock.Now)
	f := &fixture{t: t, ctx: ctx, conn: pool, store: store, clock: clock}
	// The planner's estimates, and so its choice, come from the tables' statistics: a
	// seeded network (analyzed by Seed), as in TestPlansOfHotStatements, and members of
	// the test's own beside it.
	if err := store.Seed(ctx, db.SeedOptions{Members: 3000, Invitations: 60000}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.ExecContext(ctx, `DEALLOCATE ALL`); err != nil {
		t.Fatal(err)
	}

	const n = 10
	senders, recipients := f.members("s", n), f.members("r", 4*n)
	invs := make([][]int64, n) // each sender's invitations, to recipients 4i..4i+3
	for i, s := range senders {
		for j := range 4 {
			res, err := store.SendInvitation(ctx, s, db.SendInput{RecipientID: recipients[4*i+j], RecipientFound: true})
			if err != nil {
				t.Fatal(err)
			}
			invs[i] = append(invs[i], res.Invitation.ID)
		}
	}
	for i, s := range senders {
		if _, err := store.Quota(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := store.AcceptInvitation(ctx, recipients[4*i], invs[i][0]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.IgnoreInvitation(ctx, recipients[4*i+1], invs[i][1]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.WithdrawInvitation(ctx, s, invs[i][2], true); err != nil {
			t.Fatal(err)
		}
		if _, err := store.WithdrawSelected(ctx, s, db.WithdrawInput{IDs: invs[i][1:2], Found: []bool{true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.RemoveConnection(ctx, s, recipients[4*i]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.WithdrawOlderThan(ctx, s, 0, false, nil); err != nil { // the last one left
			t.Fatal(err)
		}
		if _, err := store.MarkNotificationsRead(ctx, recipients[4*i+3], nil); err != nil {
			t.Fatal(err)
		}
		// The loaders' lookups of one object (invitation(id:), a sender, a recipient).
		if _, err := store.InvitationsByID(ctx, s, invs[i][:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.MembersByID(ctx, recipients[4*i:4*i+1]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.ConnectionStatuses(ctx, s, recipients[4*i:4*i+1]); err != nil {
			t.Fatal(err)
		}
		if _, err := store.NotificationsByID(ctx, recipients[4*i], []int64{int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}

	var stmts []struct {
		Statement string `db:"statement"`
		Generic   int64  `db:"generic_plans"`
		Custom    int64  `db:"custom_plans"`
	}
	if err := pool.SelectContext(ctx, &stmts, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`); err != nil {
		t.Fatal(err)
	}
	if len(stmts) < 10 {
		t.Fatalf("only %d prepared statements: is the pool not db.Open's?", len(stmts))
	}
	quotas := 0
	for _, s := range stmts {
		q := oneLine(s.Statement)
		t.Logf("%3d generic, %3d custom: %.100s", s.Generic, s.Custom, q)
		switch {
		case strings.HasPrefix(q, "SELECT w.used, w.oldest"):
			// The quota statements, the send's and the quota read's, whose generic plan
			// is forced: the estimates of this small network do not show what makes
			// PostgreSQL plan them on every call on a large one, so the test checks
			// that they are never planned for their values.
			quotas++
			if s.Custom != 0 {
				t.Errorf("a quota statement was planned %d times for its parameters: %s", s.Custom, q)
			}
		case s.Custom > 5:
			t.Errorf("planned %d times for its parameters: %s", s.Custom, q)
		}
	}
	if quotas != 2 {
		t.Errorf("%d quota statements among the prepared statements, want the send's and the quota read's", quotas)
	}
}
