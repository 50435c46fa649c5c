package db_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"invitations/db"
)

// TestSweepExpired is TESTPLAN E1: two sweepers race 200 accepts and withdrawals over
// 10,000 pending invitations, half of them past due.
func TestSweepExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ttl := db.DefaultLimits().TTL
	cut := t0.Add(-ttl)
	senders, recipients := f.members("s", 100), f.members("r", 100)
	// Every pair once; odd rows past due (up to ~7 days before the cut), even rows
	// from 1 µs after the cut on.
	f.conn.MustExec(`
INSERT INTO invitations (sender_id, recipient_id, status, sent_at)
SELECT s, r, 'PENDING', CASE WHEN n % 2 = 1 THEN $3::timestamptz - make_interval(mins => n::int)
                             ELSE $3::timestamptz + interval '1 microsecond' + make_interval(mins => n::int) END
  FROM (SELECT s, r, row_number() OVER () AS n
          FROM unnest($1::bigint[]) s CROSS JOIN unnest($2::bigint[]) r) x`,
		senders, recipients, cut)
	f.conn.MustExec(`
INSERT INTO reminders (invitation_id, seq, due_at)
SELECT id, seq, sent_at + seq * interval '7 days' FROM invitations, generate_series(1, 2) seq`)
	pastDue := f.scalar(`SELECT count(*) FROM invitations WHERE sent_at <= $1`, cut)
	if total := f.scalar(`SELECT count(*) FROM invitations`); total != 10_000 || pastDue != 5_000 {
		t.Fatalf("seeded %d invitations, %d past due", total, pastDue)
	}

	// 200 random invitations: even ones accepted by their recipient, odd ones
	// withdrawn by their sender, all at once with the sweepers.
	var picked []struct {
		ID        int64 `db:"id"`
		Sender    int64 `db:"sender"`
		Recipient int64 `db:"recipient"`
		PastDue   bool  `db:"pastdue"`
	}
	err := f.conn.Select(&picked, `
SELECT id, sender_id AS sender, recipient_id AS recipient, sent_at <= $1 AS pastdue
  FROM invitations ORDER BY id`, cut)
	if err != nil {
		t.Fatal(err)
	}
	rand.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	picked = picked[:200]

	const batch = 250
	var sweepers atomic.Int32
	sweepers.Store(2)
	sweep := func() (int, error) {
		swept := 0
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			n, err := f.store.SweepExpired(f.ctx, batch)
			if err != nil {
				return swept, err
			}
			swept += n
			if n > 0 {
				continue
			}
			var left int // nothing swept: the other sweeper holds the lock, or all is done
			if err := f.conn.Get(&left, `SELECT count(*) FROM invitations WHERE status IN ('PENDING', 'IGNORED') AND sent_at <= $1`, cut); err != nil || left == 0 {
				return swept, err
			}
		}
		t.Error("sweeper gave up after a minute")
		return swept, nil
	}
	start := time.Now()
	var swept [2]int
	var elapsed time.Duration
	errs := parallel(len(picked)+2, func(i int) error {
		switch {
		case i < 2:
			var err error
			swept[i], err = sweep()
			if sweepers.Add(-1) == 0 {
				elapsed = time.Since(start)
			}
			return err
		case i%2 == 0:
			_, err := f.store.AcceptInvitation(f.ctx, picked[i-2].Recipient, picked[i-2].ID)
			return err
		default:
			_, err := f.store.WithdrawInvitation(f.ctx, picked[i-2].Sender, picked[i-2].ID, true)
			return err
		}
	})
	for i := 0; i < 2; i++ {
		if errs[i] != nil {
			t.Fatalf("sweeper %d: %v", i, errs[i])
		}
	}
	// A past-due invitation is never answered; every other one is.
	accepted, withdrawn := 0, 0
	for i, p := range picked {
		err, accept := errs[i+2], i%2 == 0
		switch {
		case !p.PastDue && err != nil:
			t.Errorf("answer %d (accept %t) of a live invitation: %v", p.ID, accept, err)
		case !p.PastDue && accept:
			accepted++
		case !p.PastDue:
			withdrawn++
		case p.PastDue && accept:
			wantCode(t, err, db.CodeNotFound)
		case p.PastDue:
			wantCode(t, err, db.CodeNotPending)
		}
	}
	if got := swept[0] + swept[1]; got != pastDue {
		t.Errorf("sweepers expired %d + %d rows, want %d", swept[0], swept[1], pastDue)
	}
	// Every past-due row expired, and nothing else did.
	counts := map[string]int{}
	rows, err := f.conn.Query(`SELECT status || '/' || (sent_at <= $1)::text, count(*) FROM invitations GROUP BY 1`, cut)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var n int
		rows.Scan(&k, &n)
		counts[k] = n
	}
	rows.Close()
	want := map[string]int{"EXPIRED/true": pastDue, "PENDING/false": 10_000 - pastDue - accepted - withdrawn,
		"ACCEPTED/false": accepted, "WITHDRAWN/false": withdrawn}
	for k, n := range counts {
		if n != want[k] {
			t.Errorf("%s: %d rows, want %d (all: %v)", k, n, want[k], counts)
		}
	}
	// Expiry, like an answer or a withdrawal, cancels the reminders; pending ones keep theirs.
	if n := f.scalar(`SELECT count(*) FROM reminders r JOIN invitations i ON i.id = r.invitation_id
 WHERE (i.status <> 'PENDING') <> (r.state = 'CANCELLED')`); n != 0 {
		t.Errorf("%d reminders cancelled while their invitation is pending, or left pending after it ended", n)
	}
	f.checkRollups() // E4: the sweep's batches kept the rollups equal to a rebuild
	t.Logf("E1: %d rows swept by two sweepers (%d + %d) racing %d answers in %v: %.0f rows/s",
		pastDue, swept[0], swept[1], len(picked), elapsed.Round(time.Millisecond), float64(pastDue)/elapsed.Seconds())
}

func TestSweepExpiredBoundary(t *testing.T) {
	t.Parallel()
	t.Run("CancelsRemindersAndSparesRowsNotDue", func(t *testing.T) {
		f := newFixture(t)
		ada, bob, cy, dan, eve := f.member("ada"), f.member("bob"), f.member("cy"), f.member("dan"), f.member("eve")
		old := f.mustSend(ada, bob)
		ignored := f.mustSend(cy, ada)
		if _, err := f.store.IgnoreInvitation(f.ctx, ada, ignored.ID); err != nil {
			t.Fatal(err)
		}
		accepted := f.mustSend(dan, ada)
		if _, err := f.store.AcceptInvitation(f.ctx, ada, accepted.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Microsecond)
		young := f.mustSend(ada, eve)
		f.conn.MustExec(`UPDATE reminders SET state = 'SENT', done_at = due_at WHERE invitation_id = $1 AND seq = 1`, old.ID)

		now := t0.Add(db.DefaultLimits().TTL) // the cut is t0: young was sent 1 µs after it
		f.clock.Set(now)
		if n, err := f.store.SweepExpired(f.ctx, 10); n != 2 || err != nil {
			t.Fatalf("swept %d, %v; want 2", n, err)
		}
		want := map[int64]string{old.ID: "EXPIRED", ignored.ID: "EXPIRED", accepted.ID: "ACCEPTED", young.ID: "PENDING"}
		for id, status := range want {
			if got := f.scalar(`SELECT count(*) FROM invitations WHERE id = $1 AND status = $2`, id, status); got != 1 {
				t.Errorf("invitation %d is not %s", id, status)
			}
		}
		reminders := map[string]string{}
		var rows []struct {
			Key    string `db:"key"`
			State  string `db:"state"`
			DoneAt *time.Time
		}
		if err := f.conn.Select(&rows, `SELECT invitation_id || '/' || seq AS key, state, done_at AS doneat FROM reminders`); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			reminders[r.Key] = r.State
			if r.State == "CANCELLED" && r.Key == itoa(old.ID)+"/2" && !r.DoneAt.Equal(now) {
				t.Errorf("reminder %s cancelled at %v, want %v", r.Key, r.DoneAt, now)
			}
		}
		wantR := map[string]string{
			itoa(old.ID) + "/1": "SENT", itoa(old.ID) + "/2": "CANCELLED",
			itoa(ignored.ID) + "/1": "CANCELLED", itoa(ignored.ID) + "/2": "CANCELLED",
			itoa(accepted.ID) + "/1": "CANCELLED", itoa(accepted.ID) + "/2": "CANCELLED", // by the accept
			itoa(young.ID) + "/1": "PENDING", itoa(young.ID) + "/2": "PENDING",
		}
		for k, s := range wantR {
			if reminders[k] != s {
				t.Errorf("reminder %s is %s, want %s", k, reminders[k], s)
			}
		}
		if n, err := f.store.SweepExpired(f.ctx, 10); n != 0 || err != nil {
			t.Fatalf("second sweep: %d, %v", n, err)
		}
		f.clock.Advance(time.Microsecond)
		if n, err := f.store.SweepExpired(f.ctx, 10); n != 1 || err != nil {
			t.Fatalf("sweep 1 µs later: %d, %v; want young", n, err)
		}
		f.checkRollups()
	})
	t.Run("OneSweeperAtATime", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		f.history(ada, db.StatusPending, t0.Add(-200*db.Day))
		tx := f.conn.MustBegin()
		tx.MustExec(`SELECT pg_advisory_xact_lock($1)`, db.SweepLockKey)
		n, err := f.store.SweepExpired(f.ctx, 10)
		tx.Rollback()
		if n != 0 || err != nil {
			t.Fatalf("swept %d, %v while another sweeper held the lock", n, err)
		}
		if n, err := f.store.SweepExpired(f.ctx, 10); n != 1 || err != nil {
			t.Fatalf("swept %d, %v after the lock was released", n, err)
		}
	})
	t.Run("ErrBatch", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.store.SweepExpired(f.ctx, 0); err == nil {
			t.Fatal("batch 0 accepted")
		}
		if err := f.store.RunExpirySweep(f.ctx, 0, 10, slog.Default()); err == nil {
			t.Fatal("interval 0 accepted")
		}
	})
}

// TestRunExpirySweep: one round sweeps batch after batch until none is left, logs the
// count and stops with its context.
func TestRunExpirySweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	var sentAt []time.Time
	for i := range 7 {
		sentAt = append(sentAt, t0.Add(-200*db.Day-time.Duration(i)*time.Hour))
	}
	f.history(ada, db.StatusPending, sentAt...)
	f.history(ada, db.StatusPending, t0.Add(-time.Hour))
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.store.RunExpirySweep(ctx, time.Hour, 3, slog.New(slog.NewTextHandler(&logs, nil))) }()
	waitFor(t, func() bool { return f.scalar(`SELECT count(*) FROM invitations WHERE status = 'EXPIRED'`) == 7 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "expired=7") {
		t.Errorf("log %q does not say expired=7", logs.String())
	}
	if n := f.scalar(`SELECT count(*) FROM invitations WHERE status = 'PENDING'`); n != 1 {
		t.Errorf("%d pending left, want 1", n)
	}
	f.checkRollups()
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		<-tick.C
	}
}
