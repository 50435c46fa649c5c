package db_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"invitations/db"
)

// TestSlidingWindowProperty is TESTPLAN C3: random sends (and withdrawals, which do
// not refund here) for 5 senders over 60 days of a moving clock; no 7-day window of any
// sender ever holds more than the cap, checked in SQL with a window function.
func TestSlidingWindowProperty(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(l *db.Limits) { l.WeeklyStandard = 20; l.RefundOnWithdraw = false; l.Cooldown = db.Day })
	senders := f.members("s", 5)
	recipients := f.members("r", 200)
	rng := rand.New(rand.NewPCG(3, 7))
	sent, refused := 0, 0
	for i := 0; i < 2000; i++ {
		f.clock.Advance(time.Duration(rng.Int64N(int64(60 * db.Day / 2000 * 2))))
		from := senders[rng.IntN(len(senders))]
		res, err := f.send(from, recipients[rng.IntN(len(recipients))])
		switch codeOf(t, err) {
		case "":
			sent++
			if rng.IntN(4) == 0 {
				f.withdraw(from, res.Invitation.ID)
			}
		case db.CodeWeeklyLimit:
			refused++
		}
	}
	most := f.scalar(`
SELECT coalesce(max(n), 0) FROM (
  SELECT count(*) OVER (PARTITION BY sender_id ORDER BY sent_at
         RANGE BETWEEN interval '7 days' - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS n
    FROM invitations) w`)
	if most > 20 {
		t.Fatalf("a 7-day window holds %d sends, the cap is 20", most)
	}
	if refused == 0 || most != 20 {
		t.Fatalf("the property was not exercised: max window %d, %d refused", most, refused)
	}
	t.Logf("C3: %d sends, %d refused at the cap; max window count %d (cap 20)", sent, refused, most)
}

// TestMixedChaos is TESTPLAN C7, shortened: 16 workers for a few seconds of random
// sends, withdrawals (single and overlapping selections), accepts and ignores among 40
// members while a sweeper runs and the clock jumps forward; then every invariant holds.
func TestMixedChaos(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(l *db.Limits) {
		l.WeeklyStandard = 30
		l.PendingMax = 25
		l.TTL = 20 * db.Day
		l.ConnectionMax = 15
	})
	members := f.members("m", 40)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	var ops, busy, unexpected atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the sweeper, every 200 ms of real time
		defer wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.store.SweepExpired(context.Background(), 50)
			}
		}
	}()
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for ctx.Err() == nil {
				a, b := members[rng.IntN(40)], members[rng.IntN(40)]
				f.clock.Advance(time.Duration(rng.Int64N(int64(time.Hour))))
				var err error
				switch rng.IntN(6) {
				case 0, 1:
					_, err = f.send(a, b)
				case 2:
					_, err = f.store.WithdrawOlderThan(context.Background(), a, 0, false, ptr(1+rng.IntN(5)))
				case 3:
					var ids []int64
					f.conn.Select(&ids, `SELECT id FROM invitations WHERE sender_id = $1 ORDER BY random() LIMIT 8`, a)
					found := make([]bool, len(ids))
					for i := range found {
						found[i] = true
					}
					if len(ids) > 0 {
						_, err = f.store.WithdrawSelected(context.Background(), a, db.WithdrawInput{IDs: ids, Found: found})
					}
				case 4, 5:
					var id int64
					f.conn.Get(&id, `SELECT coalesce(max(id), 0) FROM invitations WHERE recipient_id = $1 AND status = 'PENDING'`, a)
					if rng.IntN(2) == 0 {
						_, err = f.store.AcceptInvitation(context.Background(), a, id)
					} else {
						_, err = f.store.IgnoreInvitation(context.Background(), a, id)
					}
				}
				ops.Add(1)
				if e, ok := db.AsError(err); ok && e.Code == db.CodeServiceBusy {
					busy.Add(1)
				} else if err != nil && !ok {
					unexpected.Add(1)
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	checks := map[string]string{
		"connection counters": `SELECT count(*) FROM members m WHERE connection_count <>
			(SELECT count(*) FROM connections c WHERE c.member_a = m.id OR c.member_b = m.id)`,
		"connection cap": `SELECT count(*) FROM members WHERE connection_count > 15`,
		"live pair and connection": `SELECT count(*) FROM invitations i JOIN connections c
			ON c.member_a = LEAST(i.sender_id, i.recipient_id) AND c.member_b = GREATEST(i.sender_id, i.recipient_id)
			WHERE i.status IN ('PENDING', 'IGNORED') AND c.since < i.sent_at`,
		"weekly window": `SELECT count(*) FROM (SELECT count(*) FILTER (WHERE status <> 'WITHDRAWN') OVER (PARTITION BY sender_id ORDER BY sent_at
			RANGE BETWEEN interval '7 days' - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS n FROM invitations) w WHERE n > 30`,
		"reminders of finished invitations": `SELECT count(*) FROM reminders r JOIN invitations i ON i.id = r.invitation_id
			WHERE r.state = 'PENDING' AND i.status NOT IN ('PENDING')`,
	}
	for name, q := range checks {
		if n := f.scalar(q); n != 0 {
			t.Errorf("%s: %d violations", name, n)
		}
	}
	if busy.Load() > 0 {
		t.Errorf("%d operations answered busy (deadlock or timeout)", busy.Load())
	}
	f.checkRollups() // E4: the rollups equal a rebuild, row for row
	t.Logf("C7: %d operations by 16 workers in 4s (%.0f ops/s), %d busy, %d unexpected errors",
		ops.Load(), float64(ops.Load())/4, busy.Load(), unexpected.Load())
}
