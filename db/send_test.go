package db_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"invitations/db"
)

func TestSendInvitation(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		if inv.Status != db.StatusPending || inv.SenderID != ada || inv.RecipientID != bob || !inv.SentAt.Equal(t0) {
			t.Fatalf("got %+v", inv)
		}
		if !inv.ExpiresAt.Equal(t0.Add(180 * db.Day)) {
			t.Fatalf("expiresAt %v", inv.ExpiresAt)
		}
		q := f.quota(ada)
		if q.Used != 1 || q.Remaining() != 99 || q.PendingCount != 1 || !q.ResetsAt.Equal(t0.Add(7*db.Day)) {
			t.Fatalf("quota %+v", q)
		}
	})
	t.Run("SelfInvitation", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		_, err := f.send(ada, ada)
		wantCode(t, err, db.CodeSelfInvitation)
	})
	t.Run("UnknownRecipient", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		_, err := f.send(ada, ada+1000)
		wantCode(t, err, db.CodeNotFound)
		_, err = f.store.SendInvitation(f.ctx, ada, db.SendInput{RecipientFound: false})
		wantCode(t, err, db.CodeNotFound)
	})
	t.Run("AlreadyPending", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		f.mustSend(ada, bob)
		_, err := f.send(ada, bob)
		wantCode(t, err, db.CodeAlreadyPending)
		if n := f.scalar(`SELECT count(*) FROM invitations`); n != 1 {
			t.Fatalf("%d invitations", n)
		}
	})
	t.Run("AlreadyPendingWhileIgnored", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		if _, err := f.store.IgnoreInvitation(f.ctx, bob, inv.ID); err != nil {
			t.Fatal(err)
		}
		_, err := f.send(ada, bob)
		wantCode(t, err, db.CodeAlreadyPending) // the sender must not learn of the ignore
	})
	t.Run("AlreadyConnected", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		if _, err := f.store.AcceptInvitation(f.ctx, bob, inv.ID); err != nil {
			t.Fatal(err)
		}
		_, err := f.send(ada, bob)
		wantCode(t, err, db.CodeAlreadyConnected)
		_, err = f.send(bob, ada)
		wantCode(t, err, db.CodeAlreadyConnected)
	})
	t.Run("ConnectedAgainAfterRemoval", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv := f.mustSend(ada, bob)
		f.store.AcceptInvitation(f.ctx, bob, inv.ID)
		removed, err := f.store.RemoveConnection(f.ctx, ada, bob)
		if err != nil || !removed {
			t.Fatalf("removed %v, %v", removed, err)
		}
		if n := f.scalar(`SELECT sum(connection_count) FROM members`); n != 0 {
			t.Fatalf("connection counts %d", n)
		}
		f.mustSend(bob, ada)
	})
}

func TestMutualInvitation(t *testing.T) {
	t.Parallel()
	for _, ignored := range []bool{false, true} {
		name := "Pending"
		if ignored {
			name = "Ignored"
		}
		t.Run(name+"ConnectsWithoutNewInvitation", func(t *testing.T) {
			f := newFixture(t)
			ada, bob := f.member("ada"), f.member("bob")
			inv := f.mustSend(bob, ada)
			if ignored {
				if _, err := f.store.IgnoreInvitation(f.ctx, ada, inv.ID); err != nil {
					t.Fatal(err)
				}
			}
			res, err := f.sendNote(ada, bob, "hello")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Connected || res.Invitation.ID != inv.ID || res.Invitation.Status != db.StatusAccepted {
				t.Fatalf("got %+v %+v", res, res.Invitation)
			}
			if n := f.scalar(`SELECT count(*) FROM invitations`); n != 1 {
				t.Fatalf("%d invitations", n)
			}
			if q := f.quota(ada); q.Used != 0 || q.NotesUsed != 0 {
				t.Fatalf("quota used %+v", q)
			}
			if n := f.scalar(`SELECT count(*) FROM connections`); n != 1 {
				t.Fatalf("%d connections", n)
			}
		})
	}
}

func TestWeeklyLimit(t *testing.T) {
	t.Parallel()
	t.Run("ExactlyAtTheCap", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		oldest := t0.Add(-6 * db.Day)
		// 99 counted sends in the window, the oldest 6 days ago; 50 more just outside it.
		var times []time.Time
		for i := 0; i < 99; i++ {
			times = append(times, oldest.Add(time.Duration(i)*time.Minute))
		}
		f.history(ada, db.StatusAccepted, times...)
		var outside []time.Time
		for i := 0; i < 50; i++ {
			outside = append(outside, t0.Add(-7*db.Day).Add(-time.Duration(i)*time.Second))
		}
		f.history(ada, db.StatusAccepted, outside...)
		others := f.members("r", 3)
		f.mustSend(ada, others[0])
		_, err := f.send(ada, others[1])
		e := wantCode(t, err, db.CodeWeeklyLimit)
		if !e.AvailableAt.Equal(oldest.Add(7 * db.Day)) {
			t.Fatalf("availableAt %v, want %v", e.AvailableAt, oldest.Add(7*db.Day))
		}
		if q := f.quota(ada); q.Used != 100 || q.Remaining() != 0 || !q.ResetsAt.Equal(*e.AvailableAt) {
			t.Fatalf("quota %+v", q)
		}
		f.clock.Set(e.AvailableAt.Add(-time.Microsecond))
		_, err = f.send(ada, others[1])
		wantCode(t, err, db.CodeWeeklyLimit)
		f.clock.Set(*e.AvailableAt)
		f.mustSend(ada, others[1])
	})
	t.Run("PremiumHasTwoHundred", func(t *testing.T) {
		f := newFixture(t)
		ada := f.memberOn("ada", db.PlanPremium)
		var times []time.Time
		for i := 0; i < 199; i++ {
			times = append(times, t0.Add(-time.Duration(i+1)*time.Minute))
		}
		f.history(ada, db.StatusAccepted, times...)
		r := f.members("r", 2)
		f.mustSend(ada, r[0])
		_, err := f.send(ada, r[1])
		wantCode(t, err, db.CodeWeeklyLimit)
		if q := f.quota(ada); q.Limit != 200 || q.Plan != db.PlanPremium {
			t.Fatalf("quota %+v", q)
		}
	})
	for _, refund := range []bool{true, false} {
		t.Run(map[bool]string{true: "WithdrawRefunds", false: "WithdrawDoesNotRefund"}[refund], func(t *testing.T) {
			f := newFixture(t, func(l *db.Limits) { l.WeeklyStandard = 3; l.RefundOnWithdraw = refund })
			ada := f.member("ada")
			r := f.members("r", 4)
			first := f.mustSend(ada, r[0])
			f.mustSend(ada, r[1])
			f.mustSend(ada, r[2])
			if _, err := f.withdraw(ada, first.ID); err != nil {
				t.Fatal(err)
			}
			_, err := f.send(ada, r[3])
			if refund {
				wantCode(t, err, "")
			} else {
				wantCode(t, err, db.CodeWeeklyLimit)
			}
		})
	}
	t.Run("ConfiguredLimit", func(t *testing.T) {
		f := newFixture(t, func(l *db.Limits) { l.WeeklyStandard = 2 })
		ada := f.member("ada")
		r := f.members("r", 3)
		f.mustSend(ada, r[0])
		f.clock.Advance(time.Hour)
		f.mustSend(ada, r[1])
		_, err := f.send(ada, r[2])
		e := wantCode(t, err, db.CodeWeeklyLimit)
		if !e.AvailableAt.Equal(t0.Add(7 * db.Day)) {
			t.Fatalf("availableAt %v", e.AvailableAt)
		}
	})
}

// TestWeeklyLimitConcurrent is TESTPLAN C1 on the repository: 50 parallel sends at
// 90 of 100 used let exactly 10 through, round after round. It is also C2: rounds run
// with the database's default isolation set to REPEATABLE READ and SERIALIZABLE, which
// the repository must override.
func TestWeeklyLimitConcurrent(t *testing.T) {
	t.Parallel()
	levels := []string{"read committed", "repeatable read", "serializable"}
	for round := 0; round < 6; round++ {
		t.Run(fmt.Sprintf("Round%d", round), func(t *testing.T) {
			f := newFixture(t)
			f.defaultIsolation(levels[round%len(levels)])
			ada := f.member("ada")
			var inWindow, older []time.Time
			for i := 0; i < 90; i++ {
				inWindow = append(inWindow, t0.Add(-time.Duration(i+1)*time.Hour))
			}
			for i := 0; i < 50; i++ {
				older = append(older, t0.Add(-8*db.Day-time.Duration(i)*time.Hour))
			}
			f.history(ada, db.StatusPending, inWindow...)
			f.history(ada, db.StatusPending, older...)
			r := f.members("r", 50)
			got := tally(t, parallel(50, func(i int) error { _, err := f.send(ada, r[i]); return err }))
			if got[""] != 10 || got[db.CodeWeeklyLimit] != 40 {
				t.Fatalf("round %d: %v", round, got)
			}
			if n := f.scalar(`SELECT count(*) FROM invitations WHERE sender_id = $1 AND sent_at > $2`, ada, t0.Add(-7*db.Day)); n != 100 {
				t.Fatalf("round %d: %d in window", round, n)
			}
		})
	}
}

func TestPendingLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	// 1,499 pending, sent 8 to 170 days ago (outside the weekly window).
	var times []time.Time
	for i := 0; i < 1499; i++ {
		times = append(times, t0.Add(-8*db.Day-time.Duration(i)*2*time.Hour))
	}
	f.history(ada, db.StatusPending, times...)
	r := f.members("r", 3)
	f.mustSend(ada, r[0])
	if q := f.quota(ada); q.PendingCount != 1500 || q.PendingLimit != 1500 {
		t.Fatalf("quota %+v", q)
	}
	_, err := f.send(ada, r[1])
	e := wantCode(t, err, db.CodePendingLimit)
	if oldest := times[len(times)-1]; !e.AvailableAt.Equal(oldest.Add(180 * db.Day)) {
		t.Fatalf("availableAt %v", e.AvailableAt)
	}
	// Ignored ones still count: to the sender they are pending.
	if _, err := f.store.IgnoreInvitation(f.ctx, r[0], int64(f.scalar(`SELECT id FROM invitations WHERE recipient_id = $1`, r[0]))); err != nil {
		t.Fatal(err)
	}
	_, err = f.send(ada, r[1])
	wantCode(t, err, db.CodePendingLimit)
	// Withdrawing one frees a slot.
	if _, err := f.withdraw(ada, int64(f.scalar(`SELECT min(id) FROM invitations WHERE sender_id = $1`, ada))); err != nil {
		t.Fatal(err)
	}
	f.mustSend(ada, r[1])
	_, err = f.send(ada, r[2])
	wantCode(t, err, db.CodePendingLimit)
	// So does expiry: the oldest pending one passes 180 days.
	f.clock.Set(e.AvailableAt.Add(time.Second))
	f.mustSend(ada, r[2])
}

func TestPendingLimitConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(l *db.Limits) { l.PendingMax = 20 })
	ada := f.member("ada")
	var times []time.Time
	for i := 0; i < 15; i++ {
		times = append(times, t0.Add(-8*db.Day-time.Duration(i)*time.Hour))
	}
	f.history(ada, db.StatusPending, times...)
	r := f.members("r", 30)
	got := tally(t, parallel(30, func(i int) error { _, err := f.send(ada, r[i]); return err }))
	if got[""] != 5 || got[db.CodePendingLimit] != 25 {
		t.Fatalf("%v", got)
	}
}

func TestNotes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, prem := f.member("ada"), f.memberOn("pat", db.PlanPremium)
	r := f.members("r", 20)
	cases := []struct {
		name   string
		sender int64
		note   string
		want   db.Code
		stored string
	}{
		{"StandardAt200CodePoints", ada, strings.Repeat("é", 200), "", strings.Repeat("é", 200)},
		{"StandardOver200", ada, strings.Repeat("é", 201), db.CodeMessageTooLong, ""},
		{"TrimmedBeforeCounting", ada, "  " + strings.Repeat("a", 200) + "\n ", "", strings.Repeat("a", 200)},
		{"PremiumAt300", prem, strings.Repeat("字", 300), "", strings.Repeat("字", 300)},
		{"PremiumOver300", prem, strings.Repeat("字", 301), db.CodeMessageTooLong, ""},
		{"NewlinesKept", ada, "Hi Bob,\r\nlet's connect.", "", "Hi Bob,\nlet's connect."},
		{"ControlCharacterRefused", ada, "Hi\x07Bob", db.CodeInvalidInput, ""},
		{"TabRefused", ada, "Hi\tBob", db.CodeInvalidInput, ""},
		{"BlankIsNoNote", ada, "   ", "", ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := f.sendNote(c.sender, r[i], c.note)
			wantCode(t, err, c.want)
			if err != nil {
				if n := f.scalar(`SELECT count(*) FROM invitations WHERE recipient_id = $1`, r[i]); n != 0 {
					t.Fatal("refused send stored an invitation")
				}
				return
			}
			got := ""
			if res.Invitation.Message != nil {
				got = *res.Invitation.Message
			}
			if got != c.stored {
				t.Fatalf("stored %q, want %q", got, c.stored)
			}
		})
	}
}

func TestNoteQuota(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	ada, prem := f.member("ada"), f.memberOn("pat", db.PlanPremium)
	r := f.members("r", 12)
	for i := 0; i < 5; i++ {
		if _, err := f.sendNote(ada, r[i], "hello"); err != nil {
			t.Fatal(err)
		}
	}
	q := f.quota(ada)
	if q.NotesUsed != 5 || q.NotesLimit == nil || *q.NotesLimit != 5 {
		t.Fatalf("quota %+v", q)
	}
	_, err := f.sendNote(ada, r[5], "hello")
	e := wantCode(t, err, db.CodeNoteQuota)
	if want := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC); !e.AvailableAt.Equal(want) {
		t.Fatalf("availableAt %v", e.AvailableAt)
	}
	f.mustSend(ada, r[5]) // without a note it goes
	f.clock.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if _, err := f.sendNote(ada, r[6], "hello"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := f.sendNote(prem, r[i], "hello"); err != nil {
			t.Fatalf("premium note %d: %v", i, err)
		}
	}
	if q := f.quota(prem); q.NotesLimit != nil || q.NoteMaxLength != 300 {
		t.Fatalf("premium quota %+v", q)
	}
}

func TestRecipientExists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	if m, err := f.store.MemberByHandle(f.ctx, "ADA"); err != nil || m == nil || m.ID != ada {
		t.Fatalf("case-insensitive lookup: %v %v", m, err)
	}
	if m, err := f.store.MemberByHandle(f.ctx, "nobody"); err != nil || m != nil {
		t.Fatalf("unknown handle: %v %v", m, err)
	}
}
