package db_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"invitations/db"
)

func TestWithdraw(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		f.clock.Advance(time.Hour)
		got, err := f.withdraw(ada, inv.ID)
		if err != nil || got.Status != db.StatusWithdrawn || !got.WithdrawnAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("got %+v, %v", got, err)
		}
		// Gone from the recipient's list and invisible to them at once.
		page, err := f.store.ReceivedInvitations(f.ctx, bob, db.Order{}, db.Page{})
		if err != nil || len(page.Invitations) != 0 {
			t.Fatalf("received %v, %v", page, err)
		}
		if seen, _ := f.store.Invitation(f.ctx, bob, inv.ID); seen != nil {
			t.Fatalf("recipient sees a withdrawn invitation: %+v", seen)
		}
		_, err = f.store.AcceptInvitation(f.ctx, bob, inv.ID)
		wantCode(t, err, db.CodeNotFound)
	})
	t.Run("OnlyTheSender", func(t *testing.T) {
		f := newFixture(t)
		ada, bob, eve := f.member("ada"), f.member("bob"), f.member("eve")
		inv := f.mustSend(ada, bob)
		_, err := f.withdraw(bob, inv.ID)
		wantCode(t, err, db.CodeNotFound)
		_, err = f.withdraw(eve, inv.ID)
		wantCode(t, err, db.CodeNotFound)
		_, err = f.withdraw(ada, inv.ID+1000)
		wantCode(t, err, db.CodeNotFound)
	})
	t.Run("OnlyWhilePending", func(t *testing.T) {
		f := newFixture(t)
		ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
		inv := f.mustSend(ada, bob)
		f.store.AcceptInvitation(f.ctx, bob, inv.ID)
		_, err := f.withdraw(ada, inv.ID)
		wantCode(t, err, db.CodeNotPending)
		inv2 := f.mustSend(ada, cy)
		f.withdraw(ada, inv2.ID)
		_, err = f.withdraw(ada, inv2.ID)
		wantCode(t, err, db.CodeNotPending)
	})
	t.Run("IgnoredLooksPendingAndCanBeWithdrawn", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		f.store.IgnoreInvitation(f.ctx, bob, inv.ID)
		got, err := f.withdraw(ada, inv.ID)
		if err != nil || got.Status != db.StatusWithdrawn || got.RespondedAt != nil {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("ExpiredIsNotPending", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		f.clock.Advance(180 * db.Day)
		_, err := f.withdraw(ada, inv.ID)
		wantCode(t, err, db.CodeNotPending)
	})
}

func TestCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob := f.member("ada"), f.member("bob")
	inv := f.mustSend(ada, bob)
	f.clock.Advance(3 * time.Hour)
	withdrawnAt := f.clock.Now()
	f.withdraw(ada, inv.ID)
	for _, after := range []time.Duration{0, 20*db.Day + 23*time.Hour, 21*db.Day - time.Microsecond} {
		f.clock.Set(withdrawnAt.Add(after))
		_, err := f.send(ada, bob)
		e := wantCode(t, err, db.CodeCooldown)
		if !e.AvailableAt.Equal(withdrawnAt.Add(21 * db.Day)) {
			t.Fatalf("availableAt %v", e.AvailableAt)
		}
	}
	// The other direction is not cooled down: bob never withdrew anything.
	f.clock.Set(withdrawnAt.Add(db.Day))
	res, err := f.send(bob, ada)
	if err != nil || res.Connected {
		t.Fatalf("%+v %v", res, err)
	}
	f.withdraw(bob, res.Invitation.ID)
	f.clock.Set(withdrawnAt.Add(21 * db.Day))
	f.mustSend(ada, bob)

	t.Run("Configurable", func(t *testing.T) {
		f := newFixture(t, func(l *db.Limits) { l.Cooldown = 2 * db.Day })
		ada, bob := f.member("ada"), f.member("bob")
		f.withdraw(ada, f.mustSend(ada, bob).ID)
		f.clock.Advance(2 * db.Day)
		f.mustSend(ada, bob)
	})
}

// TestCooldownRace is TESTPLAN C6: a withdrawal racing a re-send of the same pair
// never leaves an invitation created inside the cooldown.
func TestCooldownRace(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	r := f.members("r", 100)
	invs := make([]*db.Invitation, len(r))
	for i := range r {
		invs[i] = f.mustSend(ada, r[i])
	}
	f.clock.Advance(8 * db.Day) // out of the weekly window
	errs := parallel(200, func(i int) error {
		if i%2 == 0 {
			_, err := f.withdraw(ada, invs[i/2].ID)
			return err
		}
		_, err := f.send(ada, r[i/2])
		if code := codeOf(t, err); code != db.CodeAlreadyPending && code != db.CodeCooldown {
			t.Errorf("resend %d: %v", i/2, err)
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	violations := f.scalar(`
SELECT count(*) FROM invitations i
 WHERE i.sender_id = $1 AND EXISTS (
       SELECT 1 FROM invitations w WHERE w.sender_id = i.sender_id AND w.recipient_id = i.recipient_id
          AND w.status = 'WITHDRAWN' AND i.sent_at >= w.withdrawn_at AND i.sent_at < w.withdrawn_at + interval '21 days')`, ada)
	if violations != 0 || f.scalar(`SELECT count(*) FROM invitations`) != 100 {
		t.Fatalf("%d invitations created inside a cooldown", violations)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
	toBob := f.mustSend(ada, bob)
	f.clock.Advance(time.Microsecond)
	toCy := f.mustSend(ada, cy)
	f.clock.Set(t0.Add(180 * db.Day)) // toBob is exactly 180 days old, toCy 1µs less

	pending, err := f.store.PendingInvitations(f.ctx, ada, db.PendingFilter{}, db.Order{}, db.Page{})
	if err != nil || len(pending.Invitations) != 1 || pending.Invitations[0].ID != toCy.ID {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if n, _ := pending.TotalCount(f.ctx); n != 1 {
		t.Fatalf("totalCount %d", n)
	}
	seen, _ := f.store.Invitation(f.ctx, ada, toBob.ID)
	if seen == nil || seen.Status != db.StatusExpired {
		t.Fatalf("sender sees %+v", seen)
	}
	if seen, _ := f.store.Invitation(f.ctx, bob, toBob.ID); seen != nil {
		t.Fatalf("recipient sees an expired invitation")
	}
	received, _ := f.store.ReceivedInvitations(f.ctx, bob, db.Order{}, db.Page{})
	if len(received.Invitations) != 0 {
		t.Fatalf("recipient lists an expired invitation")
	}
	_, err = f.store.AcceptInvitation(f.ctx, bob, toBob.ID)
	wantCode(t, err, db.CodeNotFound)
	_, err = f.store.IgnoreInvitation(f.ctx, bob, toBob.ID)
	wantCode(t, err, db.CodeNotFound)
	if q := f.quota(ada); q.PendingCount != 1 {
		t.Fatalf("pending count %d", q.PendingCount)
	}
	// The sender may invite again at once: the send expires the stale row first.
	again := f.mustSend(ada, bob)
	if again.ID == toBob.ID {
		t.Fatal("no new invitation")
	}
	if got := f.scalar(`SELECT count(*) FROM invitations WHERE id = $1 AND status = 'EXPIRED'`, toBob.ID); got != 1 {
		t.Fatal("stale invitation not marked expired")
	}
	// And the recipient's counter-invitation is a new invitation, not an accept.
	f.clock.Advance(time.Microsecond) // toCy expires
	res, err := f.send(cy, ada)
	if err != nil || res.Connected {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestExpiryConfigurable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(l *db.Limits) { l.TTL = 10 * db.Day })
	ada, bob := f.member("ada"), f.member("bob")
	inv := f.mustSend(ada, bob)
	f.clock.Advance(10 * db.Day)
	if seen, _ := f.store.Invitation(f.ctx, ada, inv.ID); seen.Status != db.StatusExpired || !seen.ExpiresAt.Equal(t0.Add(10*db.Day)) {
		t.Fatalf("%+v", seen)
	}
}

func TestIgnore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob := f.member("ada"), f.member("bob")
	inv := f.mustSend(ada, bob)
	f.clock.Advance(time.Hour)
	got, err := f.store.IgnoreInvitation(f.ctx, bob, inv.ID)
	if err != nil || got.Status != db.StatusIgnored || got.RespondedAt == nil {
		t.Fatalf("recipient sees %+v, %v", got, err)
	}
	// Ignoring again changes nothing.
	if again, err := f.store.IgnoreInvitation(f.ctx, bob, inv.ID); err != nil || !again.RespondedAt.Equal(*got.RespondedAt) {
		t.Fatalf("%+v %v", again, err)
	}
	// The sender sees PENDING in every field, list and count.
	seen, _ := f.store.Invitation(f.ctx, ada, inv.ID)
	if seen.Status != db.StatusPending || seen.RespondedAt != nil {
		t.Fatalf("sender sees %+v", seen)
	}
	pending, _ := f.store.PendingInvitations(f.ctx, ada, db.PendingFilter{}, db.Order{}, db.Page{})
	if len(pending.Invitations) != 1 || pending.Invitations[0].Status != db.StatusPending || pending.Invitations[0].RespondedAt != nil {
		t.Fatalf("pending list %+v", pending.Invitations)
	}
	sent, _ := f.store.SentInvitations(f.ctx, ada, db.SentFilter{Statuses: []string{db.StatusPending}}, db.Order{}, db.Page{})
	if len(sent.Invitations) != 1 {
		t.Fatalf("sent PENDING filter: %d", len(sent.Invitations))
	}
	sent, _ = f.store.SentInvitations(f.ctx, ada, db.SentFilter{Statuses: []string{db.StatusIgnored}}, db.Order{}, db.Page{})
	if len(sent.Invitations) != 0 {
		t.Fatal("the IGNORED filter reveals an ignore to the sender")
	}
	if q := f.quota(ada); q.PendingCount != 1 {
		t.Fatalf("pending count %d", q.PendingCount)
	}
	st, _ := f.store.ConnectionStatuses(f.ctx, ada, []int64{bob})
	if st[bob] != db.ConnInvitationSent {
		t.Fatalf("sender's view of the recipient: %s", st[bob])
	}
	st, _ = f.store.ConnectionStatuses(f.ctx, bob, []int64{ada})
	if st[ada] != db.ConnNone {
		t.Fatalf("recipient's view of the sender: %s", st[ada])
	}
	received, _ := f.store.ReceivedInvitations(f.ctx, bob, db.Order{}, db.Page{})
	if len(received.Invitations) != 0 {
		t.Fatal("ignored invitation still in the received list")
	}
	// After expiry the sender sees EXPIRED, still with no trace of the ignore.
	f.clock.Advance(180 * db.Day)
	seen, _ = f.store.Invitation(f.ctx, ada, inv.ID)
	if seen.Status != db.StatusExpired || seen.RespondedAt != nil {
		t.Fatalf("sender sees %+v after expiry", seen)
	}
	t.Run("OnlyTheRecipient", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		_, err := f.store.IgnoreInvitation(f.ctx, ada, inv.ID)
		wantCode(t, err, db.CodeNotFound)
	})
}

func TestAccept(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		got, err := f.store.AcceptInvitation(f.ctx, bob, inv.ID)
		if err != nil || got.Status != db.StatusAccepted || got.RespondedAt == nil {
			t.Fatalf("%+v %v", got, err)
		}
		if f.scalar(`SELECT count(*) FROM members WHERE connection_count = 1`) != 2 {
			t.Fatal("connection counts")
		}
		_, err = f.store.AcceptInvitation(f.ctx, bob, inv.ID)
		wantCode(t, err, db.CodeNotPending)
		_, err = f.store.IgnoreInvitation(f.ctx, bob, inv.ID)
		wantCode(t, err, db.CodeNotPending)
	})
	t.Run("OnlyTheRecipient", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		_, err := f.store.AcceptInvitation(f.ctx, ada, inv.ID)
		wantCode(t, err, db.CodeNotFound)
	})
	t.Run("AfterIgnore", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		f.store.IgnoreInvitation(f.ctx, bob, inv.ID)
		if _, err := f.store.AcceptInvitation(f.ctx, bob, inv.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	setCount := func(f *fixture, id int64, n int) {
		f.conn.MustExec(`UPDATE members SET connection_count = $2 WHERE id = $1`, id, n)
	}
	t.Run("RecipientAtCap", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		setCount(f, bob, 30000)
		_, err := f.send(ada, bob)
		wantCode(t, err, db.CodeRecipientConnLimit)
		setCount(f, bob, 29999)
		f.mustSend(ada, bob)
	})
	t.Run("SenderAtCap", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		setCount(f, ada, 30000)
		_, err := f.send(ada, bob)
		wantCode(t, err, db.CodeSenderConnLimit)
	})
	t.Run("AcceptPastCap", func(t *testing.T) {
		for _, who := range []string{"sender", "recipient"} {
			f := newFixture(t)
			ada, bob := f.member("ada"), f.member("bob")
			inv := f.mustSend(ada, bob)
			target := map[string]int64{"sender": ada, "recipient": bob}[who]
			setCount(f, target, 30000)
			_, err := f.store.AcceptInvitation(f.ctx, bob, inv.ID)
			wantCode(t, err, db.CodeConnectionLimit)
			setCount(f, target, 29999)
			if _, err := f.store.AcceptInvitation(f.ctx, bob, inv.ID); err != nil {
				t.Fatal(err)
			}
			if n := f.scalar(`SELECT connection_count FROM members WHERE id = $1`, target); n != 30000 {
				t.Fatalf("count %d", n)
			}
		}
	})
	// TESTPLAN C5: a member at cap-1 with 50 invitations accepting all at once.
	t.Run("ConcurrentAcceptsAtTheBoundary", func(t *testing.T) {
		f := newFixture(t, func(l *db.Limits) { l.ConnectionMax = 100 })
		bob := f.member("bob")
		senders := f.members("s", 50)
		invs := make([]*db.Invitation, 50)
		for i, s := range senders {
			invs[i] = f.mustSend(s, bob)
		}
		setCount(f, bob, 99)
		got := tally(t, parallel(50, func(i int) error {
			_, err := f.store.AcceptInvitation(f.ctx, bob, invs[i].ID)
			return err
		}))
		if got[""] != 1 || got[db.CodeConnectionLimit] != 49 {
			t.Fatalf("%v", got)
		}
		if n := f.scalar(`SELECT connection_count FROM members WHERE id = $1`, bob); n != 100 {
			t.Fatalf("count %d", n)
		}
	})
}

// TestOneLivePerPair is TESTPLAN C4.
func TestOneLivePerPair(t *testing.T) {
	t.Parallel()
	t.Run("IdenticalConcurrentSends", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		got := tally(t, parallel(50, func(int) error { _, err := f.send(ada, bob); return err }))
		if got[""] != 1 || got[db.CodeAlreadyPending] != 49 {
			t.Fatalf("%v", got)
		}
	})
	t.Run("CrossingConcurrentSends", func(t *testing.T) {
		for round := 0; round < 5; round++ {
			f := newFixture(t)
			ada, bob := f.member("ada"), f.member("bob")
			got := tally(t, parallel(50, func(i int) error {
				from, to := ada, bob
				if i%2 == 1 {
					from, to = bob, ada
				}
				_, err := f.send(from, to)
				return err
			}))
			if got[""] < 1 || got[""]+got[db.CodeAlreadyPending]+got[db.CodeAlreadyConnected] != 50 {
				t.Fatalf("%v", got)
			}
			if f.scalar(`SELECT count(*) FROM invitations`) != 1 || f.scalar(`SELECT count(*) FROM invitations WHERE status IN ('PENDING','IGNORED')`)+f.scalar(`SELECT count(*) FROM connections`) != 1 {
				t.Fatal("more than one live invitation or connection")
			}
		}
	})
}

func TestWithdrawSelected(t *testing.T) {
	t.Parallel()
	t.Run("SelectionScope", func(t *testing.T) { // TESTPLAN C8
		f := newFixture(t)
		ada, bee := f.member("ada"), f.member("bee")
		r := f.members("r", 8)
		var mine, theirs []int64
		for i := 0; i < 5; i++ {
			mine = append(mine, f.mustSend(ada, r[i]).ID)
		}
		for i := 5; i < 7; i++ {
			theirs = append(theirs, f.mustSend(bee, r[i]).ID)
		}
		before := f.checksum(`SELECT * FROM invitations WHERE sender_id = ` + itoa(bee))
		f.withdraw(ada, mine[4])
		ids := append(append(append([]int64{}, mine...), theirs...), 999999)
		found := make([]bool, len(ids))
		for i := range found {
			found[i] = true
		}
		res, err := f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: ids, Found: found})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"WITHDRAWN", "WITHDRAWN", "WITHDRAWN", "WITHDRAWN", "NOT_PENDING", "NOT_FOUND", "NOT_FOUND", "NOT_FOUND"}
		for i, r := range res {
			if r.Outcome != want[i] || r.Index != i {
				t.Fatalf("result %d: %+v, want %s", i, r, want[i])
			}
			if r.Outcome == "NOT_FOUND" && r.Invitation != nil {
				t.Fatal("a foreign invitation leaked")
			}
		}
		if db.WithdrawnCount(res) != 4 {
			t.Fatal("count")
		}
		if after := f.checksum(`SELECT * FROM invitations WHERE sender_id = ` + itoa(bee)); after != before {
			t.Fatal("another member's invitations changed")
		}
	})
	t.Run("Bounds", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		_, err := f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{})
		wantCode(t, err, db.CodeInvalidInput)
		ids, found := make([]int64, 101), make([]bool, 101)
		_, err = f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: ids, Found: found})
		wantCode(t, err, db.CodeTooManySelected)
		_, err = f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: ids[:100], Found: found[:100]})
		wantCode(t, err, "")
	})
	t.Run("RepeatedIDWithdrawnOnce", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		id := f.mustSend(ada, bob).ID
		res, err := f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: []int64{id, id}, Found: []bool{true, true}})
		if err != nil || res[0].Outcome != "WITHDRAWN" || res[1].Outcome != "WITHDRAWN" || db.WithdrawnCount(res) != 1 {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("OverlappingConcurrentCalls", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		r := f.members("r", 60)
		ids := make([]int64, len(r))
		for i := range r {
			ids[i] = f.mustSend(ada, r[i]).ID
		}
		var counts [8]int
		errs := parallel(8, func(w int) error {
			sel := append([]int64{}, ids...)
			rand.Shuffle(len(sel), func(i, j int) { sel[i], sel[j] = sel[j], sel[i] })
			sel = sel[:40]
			found := make([]bool, len(sel))
			for i := range found {
				found[i] = true
			}
			res, err := f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: sel, Found: found})
			counts[w] = db.WithdrawnCount(res)
			return err
		})
		total := 0
		for w, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			total += counts[w]
		}
		if n := f.scalar(`SELECT count(*) FROM invitations WHERE status = 'WITHDRAWN'`); total != n {
			t.Fatalf("reported %d withdrawals, %d rows withdrawn", total, n)
		}
	})
}

func TestIdempotency(t *testing.T) { // TESTPLAN I1, I2
	key := "k-1"
	t.Run("ReplayReturnsFirstResult", func(t *testing.T) {
		f := newFixture(t)
		ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
		in := db.SendInput{RecipientID: bob, RecipientFound: true, IdempotencyKey: &key}
		first, err := f.store.SendInvitation(f.ctx, ada, in)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			f.clock.Advance(time.Hour)
			again, err := f.store.SendInvitation(f.ctx, ada, in)
			if err != nil || again.Invitation.ID != first.Invitation.ID {
				t.Fatalf("replay %d: %+v %v", i, again, err)
			}
		}
		if q := f.quota(ada); q.Used != 1 {
			t.Fatalf("quota used %d", q.Used)
		}
		_, err = f.store.SendInvitation(f.ctx, ada, db.SendInput{RecipientID: cy, RecipientFound: true, IdempotencyKey: &key})
		wantCode(t, err, db.CodeInvalidInput)
		// Keys are per viewer.
		if _, err := f.store.SendInvitation(f.ctx, cy, db.SendInput{RecipientID: bob, RecipientFound: true, IdempotencyKey: &key}); err != nil {
			t.Fatal(err)
		}
		// After 24 hours the key is new again.
		f.clock.Set(t0.Add(24*time.Hour + time.Second))
		_, err = f.store.SendInvitation(f.ctx, ada, in)
		wantCode(t, err, db.CodeAlreadyPending)
	})
	t.Run("ConcurrentReplays", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		ids := make([]int64, 20)
		errs := parallel(20, func(i int) error {
			res, err := f.store.SendInvitation(f.ctx, ada, db.SendInput{RecipientID: bob, RecipientFound: true, IdempotencyKey: &key})
			if err == nil {
				ids[i] = res.Invitation.ID
			}
			return err
		})
		for i, err := range errs {
			if err != nil || ids[i] != ids[0] {
				t.Fatalf("call %d: %v (id %d vs %d)", i, err, ids[i], ids[0])
			}
		}
		if n := f.scalar(`SELECT count(*) FROM invitations`); n != 1 {
			t.Fatalf("%d invitations", n)
		}
	})
	t.Run("WithdrawSelectedReplay", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		id := f.mustSend(ada, bob).ID
		in := db.WithdrawInput{IDs: []int64{id}, Found: []bool{true}, IdempotencyKey: &key}
		for i := 0; i < 3; i++ {
			res, err := f.store.WithdrawSelected(f.ctx, ada, in)
			if err != nil || res[0].Outcome != "WITHDRAWN" || res[0].Invitation.Status != db.StatusWithdrawn {
				t.Fatalf("call %d: %+v %v", i, res, err)
			}
		}
		_, err := f.store.WithdrawSelected(f.ctx, ada, db.WithdrawInput{IDs: []int64{id, id}, Found: []bool{true, true}, IdempotencyKey: &key})
		wantCode(t, err, db.CodeInvalidInput)
	})
	t.Run("KeyLength", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		long := string(make([]byte, 256))
		_, err := f.store.SendInvitation(f.ctx, ada, db.SendInput{RecipientID: bob, RecipientFound: true, IdempotencyKey: &long})
		wantCode(t, err, db.CodeInvalidInput)
	})
}
