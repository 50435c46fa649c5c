package db_test

import (
	"testing"
	"time"

	"invitations/db"
)

func TestNotifications(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob, cy := f.member("ada"), f.member("bob"), f.member("cy")
	kinds := func(member int64) []string {
		t.Helper()
		pg, err := f.store.Notifications(f.ctx, member, false, db.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range pg.Notifications {
			out = append(out, n.Kind)
		}
		return out
	}
	toBob := f.mustSend(ada, bob)
	f.clock.Advance(time.Minute)
	toCy := f.mustSend(ada, cy)
	if got := kinds(bob); len(got) != 1 || got[0] != db.KindInvitationReceived {
		t.Fatalf("bob: %v", got)
	}
	if got := kinds(ada); len(got) != 0 {
		t.Fatalf("ada before any answer: %v", got)
	}
	// Ignore and withdraw create nothing.
	f.clock.Advance(time.Minute)
	f.store.IgnoreInvitation(f.ctx, cy, toCy.ID)
	f.withdraw(ada, toCy.ID)
	if got := kinds(ada); len(got) != 0 {
		t.Fatalf("ada after ignore and withdraw: %v", got)
	}
	// The recipient's notification of a withdrawn invitation is gone with it.
	if got := kinds(cy); len(got) != 0 {
		t.Fatalf("cy still sees a withdrawn invitation's notification: %v", got)
	}
	// Acceptance notifies the sender.
	f.clock.Advance(time.Minute)
	if _, err := f.store.AcceptInvitation(f.ctx, bob, toBob.ID); err != nil {
		t.Fatal(err)
	}
	if got := kinds(ada); len(got) != 1 || got[0] != db.KindInvitationAccepted {
		t.Fatalf("ada after accept: %v", got)
	}
	// A mutual invitation notifies the first sender that it was accepted.
	dan := f.member("dan")
	f.mustSend(dan, cy)
	if res, err := f.send(cy, dan); err != nil || !res.Connected {
		t.Fatalf("%+v %v", res, err)
	}
	if got := kinds(dan); len(got) != 1 || got[0] != db.KindInvitationAccepted {
		t.Fatalf("dan after mutual: %v", got)
	}

	// Read state.
	pg, _ := f.store.Notifications(f.ctx, bob, false, db.Page{})
	if n, _ := pg.UnreadCount(f.ctx); n != 1 || pg.Notifications[0].Read() {
		t.Fatalf("unread %d", n)
	}
	id := pg.Notifications[0].ID
	if n, err := f.store.MarkNotificationsRead(f.ctx, ada, []int64{id}); err != nil || n != 0 {
		t.Fatalf("another member marked bob's notification: %d %v", n, err)
	}
	if n, err := f.store.MarkNotificationsRead(f.ctx, bob, []int64{id, id, 999999}); err != nil || n != 1 {
		t.Fatalf("mark: %d %v", n, err)
	}
	if n, _ := f.store.MarkNotificationsRead(f.ctx, bob, []int64{id}); n != 0 {
		t.Fatal("marked twice")
	}
	unread, _ := f.store.Notifications(f.ctx, bob, true, db.Page{})
	if len(unread.Notifications) != 0 {
		t.Fatal("unreadOnly lists a read notification")
	}
	if n, _ := f.store.MarkNotificationsRead(f.ctx, ada, nil); n != 1 {
		t.Fatalf("mark all: %d", n)
	}
	_, err := f.store.MarkNotificationsRead(f.ctx, ada, make([]int64, 101))
	wantCode(t, err, db.CodeTooManySelected)
	if got, _ := f.store.Notification(f.ctx, ada, id); got != nil {
		t.Fatal("ada can read bob's notification")
	}
	if got, _ := f.store.Notification(f.ctx, bob, id); got == nil || !got.Read() {
		t.Fatal("bob cannot read his notification")
	}
}

func TestNotificationsPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	senders := f.members("s", 12)
	for _, s := range senders {
		f.clock.Advance(time.Second)
		f.mustSend(s, ada)
	}
	var seen int
	var after *string
	for {
		pg, err := f.store.Notifications(f.ctx, ada, false, db.Page{First: ptr(5), After: after})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(pg.Notifications); i++ {
			if pg.Notifications[i].CreatedAt.After(pg.Notifications[i-1].CreatedAt) {
				t.Fatal("not newest first")
			}
		}
		seen += len(pg.Notifications)
		if !pg.HasNextPage {
			break
		}
		after = ptr(pg.Cursor(len(pg.Notifications) - 1))
	}
	if seen != 12 {
		t.Fatalf("saw %d of 12", seen)
	}
}

func TestWithdrawOlderThan(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bee := f.member("ada"), f.member("bee")
	r := f.members("r", 8)
	// Ages 30, 20, 15, 14 (exactly), 13 days, and one today; one of bee's, 40 days old.
	var ids []int64
	for i, age := range []int{30, 20, 15, 14, 13, 0} {
		f.clock.Set(t0.Add(-time.Duration(age) * db.Day))
		ids = append(ids, f.mustSend(ada, r[i]).ID)
	}
	f.clock.Set(t0.Add(-40 * db.Day))
	f.mustSend(bee, r[7])
	f.clock.Set(t0)
	f.store.IgnoreInvitation(f.ctx, r[1], ids[1]) // ignored looks pending to ada: included

	before := f.checksum(`SELECT * FROM invitations`)
	dry, err := f.store.WithdrawOlderThan(f.ctx, ada, 14, true, ptr(3))
	if err != nil {
		t.Fatal(err)
	}
	if f.checksum(`SELECT * FROM invitations`) != before {
		t.Fatal("a dry run changed something")
	}
	real, err := f.store.WithdrawOlderThan(f.ctx, ada, 14, false, ptr(3))
	if err != nil {
		t.Fatal(err)
	}
	want := ids[:3] // oldest first, at most 3
	for i := range want {
		if dry[i].ID != want[i] || real[i].ID != want[i] || real[i].Outcome != db.OutcomeWithdrawn || dry[i].Invitation.Status != db.StatusPending {
			t.Fatalf("%d: dry %+v real %+v want %d", i, dry[i], real[i], want[i])
		}
	}
	if len(dry) != 3 || len(real) != 3 {
		t.Fatalf("dry %d real %d", len(dry), len(real))
	}
	// The next call takes the one exactly 14 days old, and nothing younger.
	rest, _ := f.store.WithdrawOlderThan(f.ctx, ada, 14, false, nil)
	if len(rest) != 1 || rest[0].ID != ids[3] {
		t.Fatalf("rest %+v", rest)
	}
	if none, _ := f.store.WithdrawOlderThan(f.ctx, ada, 14, true, nil); len(none) != 0 {
		t.Fatalf("nothing left, got %+v", none)
	}
	if n := f.scalar(`SELECT count(*) FROM invitations WHERE sender_id = $1 AND status = 'PENDING'`, bee); n != 1 {
		t.Fatal("another member's invitation was withdrawn")
	}
	for name, c := range map[string]struct {
		days  int
		limit *int
		code  db.Code
	}{
		"NegativeDays": {-1, nil, db.CodeInvalidInput},
		"ZeroLimit":    {1, ptr(0), db.CodeInvalidInput},
		"LimitOver100": {1, ptr(101), db.CodeTooManySelected},
	} {
		_, err := f.store.WithdrawOlderThan(f.ctx, ada, c.days, false, c.limit)
		if codeOf(t, err) != c.code {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestNotificationsHiddenMeansHidden is TESTPLAN S11: once the invitation behind a
// notification is withdrawn or has expired (swept or not), nothing counts or
// acknowledges that notification: marking all read counts only the visible ones, and a
// hidden notification's id is answered as an unknown id is.
func TestNotificationsHiddenMeansHidden(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob := f.member("bob")
	s := f.members("s", 4)
	old := f.mustSend(s[0], bob)
	f.clock.Advance(10 * 24 * time.Hour)
	f.mustSend(s[1], bob)
	f.mustSend(s[2], bob)
	gone := f.mustSend(s[3], bob)
	byInvitation := map[int64]int64{}
	pg, err := f.store.Notifications(f.ctx, bob, false, db.Page{})
	if err != nil || len(pg.Notifications) != 4 {
		t.Fatalf("%v %v", pg, err)
	}
	for _, n := range pg.Notifications {
		byInvitation[n.InvitationID] = n.ID
	}
	if _, err := f.withdraw(s[3], gone.ID); err != nil {
		t.Fatal(err)
	}
	// The first invitation reaches the lifetime; the others are 170 days old.
	f.clock.Advance(db.DefaultLimits().TTL - 10*24*time.Hour)

	unknown := int64(1 << 40)
	for name, ids := range map[string][]int64{
		"Withdrawn": {byInvitation[gone.ID]},
		"Expired":   {byInvitation[old.ID]},
		"Unknown":   {unknown},
	} {
		if n, err := f.store.MarkNotificationsRead(f.ctx, bob, ids); err != nil || n != 0 {
			t.Errorf("%s notification's id: marked %d (%v), as an unknown id: 0", name, n, err)
		}
		if got, err := f.store.Notification(f.ctx, bob, ids[0]); err != nil || got != nil {
			t.Errorf("%s notification readable: %+v %v", name, got, err)
		}
	}
	pg, _ = f.store.Notifications(f.ctx, bob, false, db.Page{})
	unread, _ := pg.UnreadCount(f.ctx)
	if unread != 2 || len(pg.Notifications) != 2 {
		t.Fatalf("%d listed, %d unread; want the 2 still pending", len(pg.Notifications), unread)
	}
	if n, err := f.store.MarkNotificationsRead(f.ctx, bob, nil); err != nil || n != unread {
		t.Fatalf("mark all: %d, with %d visible unread (%v)", n, unread, err)
	}
	// The sweep changes nothing of it.
	if _, err := f.store.SweepExpired(f.ctx, 100); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.store.MarkNotificationsRead(f.ctx, bob, []int64{byInvitation[old.ID]}); n != 0 {
		t.Fatalf("a swept invitation's notification was marked: %d", n)
	}
}
