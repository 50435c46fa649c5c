package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"invitations/db"
)

// rollupRowsQuery lists the daily rollup rows with their counts.
const rollupRowsQuery = `SELECT (day, source, has_note, state, shard, n)::text FROM invitation_stats_daily`

// TestRollupsDropEmptiedRows: a withdrawal, an accept, the sweep and a delete that move a
// key's last invitation out of it delete its rollup row (daily and time-to-accept), as
// a rebuild would not write it; the figures stay as they were.
func TestRollupsDropEmptiedRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob, cy, dan := f.member("ada"), f.member("bob"), f.member("cy"), f.member("dan")
	withdrawn := f.mustSend(ada, bob)
	if _, err := f.withdraw(ada, withdrawn.ID); err != nil {
		t.Fatal(err)
	}
	accepted := f.mustSend(cy, ada)
	if _, err := f.store.AcceptInvitation(f.ctx, ada, accepted.ID); err != nil {
		t.Fatal(err)
	}
	f.history(dan, db.StatusPending, t0.Add(-200*db.Day))
	if n, err := f.store.SweepExpired(f.ctx, 10); n != 1 || err != nil {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	gone := f.history(dan, db.StatusAccepted, t0.Add(-3*db.Day))
	if n := f.scalar(`SELECT count(*) FROM invitation_stats_tta`); n != 2 {
		t.Fatalf("%d time-to-accept rows before the delete, want 2", n)
	}
	f.conn.MustExec(`DELETE FROM invitations WHERE id = $1`, gone[0])
	if n := f.scalar(`SELECT count(*) FROM invitation_stats_daily WHERE n = 0`) +
		f.scalar(`SELECT count(*) FROM invitation_stats_tta WHERE n = 0`); n != 0 {
		t.Errorf("%d rollup rows at n = 0", n)
	}
	if n := f.scalar(`SELECT count(*) FROM invitation_stats_tta`); n != 1 {
		t.Errorf("%d time-to-accept rows after the delete, want 1 (the accept's)", n)
	}
	// Left: ada's withdrawal, cy's accept, dan's expired one.
	if got := f.scalar(`SELECT count(*) FROM invitation_stats_daily`); got != 3 {
		t.Errorf("%d daily rows, want 3", got)
	}
	f.checkRollups()
}

// TestRollupsEmptiedRowRace: an insert into a rollup key whose row a concurrent
// withdrawal has just brought to 0 and deleted waits for that transaction, then writes
// the row again (after a commit) or adds to the row restored (after a rollback); it
// never fails or loses a count.
func TestRollupsEmptiedRowRace(t *testing.T) {
	t.Parallel()
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "Commit", false: "Rollback"}[commit]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
			first := f.mustSend(ada, bob)
			key := `SELECT coalesce(sum(n), -1) FROM invitation_stats_daily WHERE state = 'LIVE'`
			tx := f.conn.MustBegin()
			defer tx.Rollback()
			tx.MustExec(`UPDATE invitations SET status = 'WITHDRAWN', withdrawn_at = sent_at WHERE id = $1`, first.ID)
			var inTx int
			if err := tx.Get(&inTx, key); err != nil || inTx != -1 {
				t.Fatalf("live row in the withdrawing transaction: %d, %v; want it deleted", inTx, err)
			}
			sent := make(chan error, 1)
			go func() { _, err := f.send(ada, cy); sent <- err }() // the same day, source, note and shard
			deadline := time.Now().Add(10 * time.Second)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for f.scalar(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
				select {
				case err := <-sent:
					t.Fatalf("the send did not wait for the withdrawal: %v", err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the send is not waiting on the withdrawal's row lock within 10s")
				}
				<-tick.C
			}
			want := 1
			if commit {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			} else {
				tx.Rollback()
				want = 2
			}
			if err := <-sent; err != nil {
				t.Fatalf("send after the %s: %v", name, err)
			}
			if got := f.scalar(key); got != want {
				t.Errorf("live invitations in the rollup: %d, want %d", got, want)
			}
			f.checkRollups()
		})
	}
}

// TestRollupsMigrationDropsZeroRows: on a database at version 6 whose rollups hold rows
// at n = 0, migration 7 deletes those and changes no other row.
func TestRollupsMigrationDropsZeroRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.migrator()
	if err := m.Steps(-1); err != nil {
		t.Fatal(err)
	}
	ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
	withdrawn := f.mustSend(ada, bob)
	if _, err := f.withdraw(ada, withdrawn.ID); err != nil {
		t.Fatal(err)
	}
	f.mustSend(cy, bob)
	f.history(cy, db.StatusPending, t0.Add(-200*db.Day), t0.Add(-199*db.Day))
	if n, err := f.store.SweepExpired(f.ctx, 10); n != 2 || err != nil {
		t.Fatalf("swept %d, %v; want 2", n, err)
	}
	zeros := f.scalar(`SELECT count(*) FROM invitation_stats_daily WHERE n = 0`)
	if zeros != 3 { // ada's live row, cy's two old days' live rows
		t.Fatalf("%d rows at n = 0 at version 6, want 3", zeros)
	}
	before := f.checksum(rollupRowsQuery + ` WHERE n <> 0`)
	rows := f.scalar(`SELECT count(*) FROM invitation_stats_daily`)
	if err := m.Steps(1); err != nil {
		t.Fatal(err)
	}
	if got := f.checksum(rollupRowsQuery); got != before {
		t.Errorf("the rows at n <> 0 changed in migration 7")
	}
	if got := f.scalar(`SELECT count(*) FROM invitation_stats_daily`); got != rows-zeros {
		t.Errorf("%d rows after migration 7, want %d", got, rows-zeros)
	}
	f.checkRollups()
}

// migrator returns a golang-migrate instance on the fixture's database, closed when
// the test ends.
func (f *fixture) migrator() *migrate.Migrate {
	f.t.Helper()
	src, err := iofs.New(db.MigrationsFS(), "migrations")
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.conn.Conn(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	driver, err := postgres.WithConnection(context.Background(), c, &postgres.Config{})
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { m.Close() })
	return m
}
