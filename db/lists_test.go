package db_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"invitations/db"
)

func ptr[T any](v T) *T { return &v }

func ids(c *db.Connection) []int64 {
	out := make([]int64, len(c.Invitations))
	for i, inv := range c.Invitations {
		out[i] = inv.ID
	}
	return out
}

func TestAgeFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	r := f.members("r", 6)
	// Sent exactly 14 days ago, 1µs less, 1µs more, 7 days ago, 30 days ago, now.
	ages := []time.Duration{14 * db.Day, 14*db.Day - time.Microsecond, 14*db.Day + time.Microsecond, 7 * db.Day, 30 * db.Day, 0}
	byAge := map[time.Duration]int64{}
	for i, age := range ages {
		f.clock.Set(t0.Add(-age))
		byAge[age] = f.mustSend(ada, r[i]).ID
	}
	f.clock.Set(t0)
	list := func(pf db.PendingFilter) map[int64]bool {
		c, err := f.store.PendingInvitations(f.ctx, ada, pf, db.Order{}, db.Page{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]bool{}
		for _, id := range ids(c) {
			out[id] = true
		}
		return out
	}
	older := list(db.PendingFilter{OlderThanDays: ptr(14)})
	if !older[byAge[14*db.Day]] || !older[byAge[14*db.Day+time.Microsecond]] || older[byAge[14*db.Day-time.Microsecond]] || len(older) != 3 {
		t.Fatalf("olderThanDays 14: %v", older)
	}
	newer := list(db.PendingFilter{NewerThanDays: ptr(14)})
	if newer[byAge[14*db.Day]] || !newer[byAge[14*db.Day-time.Microsecond]] || len(newer) != 3 {
		t.Fatalf("newerThanDays 14: %v", newer)
	}
	band := list(db.PendingFilter{OlderThanDays: ptr(7), NewerThanDays: ptr(30)})
	if len(band) != 4 || band[byAge[30*db.Day]] || !band[byAge[7*db.Day]] {
		t.Fatalf("between 7 and 30 days: %v", band)
	}
	if all := list(db.PendingFilter{OlderThanDays: ptr(0)}); len(all) != 6 {
		t.Fatalf("olderThanDays 0: %d", len(all))
	}
	if got := list(db.PendingFilter{SentAfter: ptr(t0.Add(-14 * db.Day)), SentBefore: ptr(t0)}); len(got) != 2 || !got[byAge[7*db.Day]] || !got[byAge[14*db.Day-time.Microsecond]] {
		t.Fatalf("sentAfter/sentBefore: %v", got)
	}
	for name, bad := range map[string]db.PendingFilter{
		"NegativeOlder":  {OlderThanDays: ptr(-1)},
		"NegativeNewer":  {NewerThanDays: ptr(-1)},
		"HugeDays":       {OlderThanDays: ptr(db.MaxDays + 1)},
		"EmptyBand":      {OlderThanDays: ptr(30), NewerThanDays: ptr(7)},
		"EqualBand":      {OlderThanDays: ptr(7), NewerThanDays: ptr(7)},
		"EmptyTimeRange": {SentAfter: ptr(t0), SentBefore: ptr(t0.Add(-time.Hour))},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.store.PendingInvitations(f.ctx, ada, bad, db.Order{}, db.Page{})
			wantCode(t, err, db.CodeBadUserInput)
		})
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	r := f.members("r", 30)
	var all []int64 // oldest first
	for i := 0; i < 25; i++ {
		f.clock.Set(t0.Add(time.Duration(i) * time.Minute))
		if i == 10 { // two invitations at the same instant: ties break by id
			all = append(all, f.mustSend(ada, r[29]).ID)
		}
		all = append(all, f.mustSend(ada, r[i]).ID)
	}
	f.clock.Set(t0.Add(time.Hour))
	pending := func(o db.Order, p db.Page) *db.Connection {
		t.Helper()
		c, err := f.store.PendingInvitations(f.ctx, ada, db.PendingFilter{}, o, p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("ForwardsAscendingWhileRowsChange", func(t *testing.T) {
		var seen []int64
		var after *string
		for page := 0; ; page++ {
			c := pending(db.Order{}, db.Page{First: ptr(7), After: after})
			seen = append(seen, ids(c)...)
			if page == 0 {
				// Withdraw an already-seen row and one not yet seen; add a new one.
				f.withdraw(ada, all[0])
				f.withdraw(ada, all[20])
				f.mustSend(ada, r[25])
				if !c.HasNextPage || c.HasPreviousPage {
					t.Fatalf("first page info %v %v", c.HasNextPage, c.HasPreviousPage)
				}
			}
			if page > 0 && !c.HasPreviousPage {
				t.Fatalf("page %d: hasPreviousPage false", page)
			}
			if !c.HasNextPage {
				break
			}
			after = ptr(c.Cursor(len(c.Invitations) - 1))
		}
		want := append(append(append([]int64{}, all[:20]...), all[21:]...), 0)
		want[len(want)-1] = f.newest(ada)
		if !equal(seen, want) {
			t.Fatalf("seen %v\nwant %v", seen, want)
		}
	})
	t.Run("BackwardsDescending", func(t *testing.T) {
		c := pending(db.Order{Desc: true}, db.Page{Last: ptr(5)})
		live := f.liveIDs(ada) // oldest first
		if !equal(ids(c), reversed(live)[len(live)-5:]) || !c.HasPreviousPage || c.HasNextPage {
			t.Fatalf("last 5 newest-first: %v (live %v) prev=%v next=%v", ids(c), live, c.HasPreviousPage, c.HasNextPage)
		}
		var seen []int64
		before := ptr(c.Cursor(0))
		seen = append(ids(c), seen...)
		for c.HasPreviousPage {
			c = pending(db.Order{Desc: true}, db.Page{Last: ptr(5), Before: before})
			if !c.HasNextPage {
				t.Fatal("hasNextPage false walking backwards")
			}
			seen = append(ids(c), seen...)
			before = ptr(c.Cursor(0))
		}
		if !equal(seen, reversed(live)) {
			t.Fatalf("backwards %v\nwant %v", seen, reversed(live))
		}
	})
	t.Run("TotalCountAndEmptyPage", func(t *testing.T) {
		c := pending(db.Order{}, db.Page{First: ptr(0)})
		n, err := c.TotalCount(f.ctx)
		if err != nil || n != len(f.liveIDs(ada)) || len(c.Invitations) != 0 {
			t.Fatalf("total %d %v", n, err)
		}
	})
	t.Run("CountInThePageStatement", func(t *testing.T) {
		// Page.Count counts in the page's statement; the total must equal the separate
		// count in every shape of page, including pages with no row to carry it.
		live := len(f.liveIDs(ada))
		first := pending(db.Order{}, db.Page{First: ptr(3)})
		last := pending(db.Order{}, db.Page{Last: ptr(1)})
		end := ptr(last.Cursor(0)) // nothing after the last row
		for name, p := range map[string]db.Page{
			"First":          {First: ptr(3)},
			"FirstZero":      {First: ptr(0)},
			"After":          {First: ptr(2), After: ptr(first.Cursor(2))},
			"AfterTheEnd":    {First: ptr(5), After: end},
			"Last":           {Last: ptr(4)},
			"BeforeTheStart": {Last: ptr(4), Before: ptr(first.Cursor(0))},
		} {
			for _, desc := range []bool{false, true} {
				separate := pending(db.Order{Desc: desc}, p)
				p.Count = true
				together := pending(db.Order{Desc: desc}, p)
				p.Count = false
				n1, err1 := separate.TotalCount(f.ctx)
				n2, err2 := together.TotalCount(f.ctx)
				if err1 != nil || err2 != nil || n1 != live || n2 != live || !equal(ids(separate), ids(together)) {
					t.Fatalf("%s desc=%v: totals %d %d (want %d), errors %v %v, rows %v %v",
						name, desc, n1, n2, live, err1, err2, ids(separate), ids(together))
				}
			}
		}
		nobody := f.member("nobody")
		c, err := f.store.PendingInvitations(f.ctx, nobody, db.PendingFilter{}, db.Order{}, db.Page{Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := c.TotalCount(f.ctx); err != nil || n != 0 {
			t.Fatalf("empty list: total %d, %v", n, err)
		}
		old := 30
		c, err = f.store.PendingInvitations(f.ctx, ada, db.PendingFilter{OlderThanDays: &old}, db.Order{}, db.Page{Count: true})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := c.TotalCount(f.ctx); err != nil || n != 0 || len(c.Invitations) != 0 {
			t.Fatalf("filtered to nothing: total %d, %v", n, err)
		}
	})
	t.Run("MembersInThePageStatement", func(t *testing.T) {
		// Page.Senders and Page.Recipients read each invitation's members in the page's
		// statement: exactly the page's rows' members (not the row read past the page),
		// as stored, and the same rows, cursors and total as without them.
		first := pending(db.Order{}, db.Page{First: ptr(3)})
		for name, p := range map[string]db.Page{
			"First":     {First: ptr(3)},
			"FirstZero": {First: ptr(0)},
			"After":     {First: ptr(2), After: ptr(first.Cursor(2))},
			"Last":      {Last: ptr(4)},
			"Everyone":  {First: ptr(100)},
		} {
			for _, desc := range []bool{false, true} {
				plain := pending(db.Order{Desc: desc}, p)
				p.Senders, p.Recipients, p.Count = true, true, true
				joined := pending(db.Order{Desc: desc}, p)
				p.Senders, p.Recipients, p.Count = false, false, false
				n, err := joined.TotalCount(f.ctx)
				if err != nil || n != len(f.liveIDs(ada)) || !equal(ids(plain), ids(joined)) ||
					!slices.Equal(cursors(plain), cursors(joined)) || len(plain.Members) != 0 {
					t.Fatalf("%s desc=%v: total %d %v, rows %v and %v", name, desc, n, err, ids(plain), ids(joined))
				}
				var got, want []string
				for _, m := range joined.Members {
					got = append(got, fmt.Sprint(m.ID, m.Handle, m.Name, m.Plan))
				}
				for _, inv := range joined.Invitations {
					for _, id := range []int64{inv.SenderID, inv.RecipientID} {
						var m db.Member
						if err := f.conn.Get(&m, `SELECT id, handle, name, plan FROM members WHERE id = $1`, id); err != nil {
							t.Fatal(err)
						}
						want = append(want, fmt.Sprint(m.ID, m.Handle, m.Name, m.Plan))
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s desc=%v: members %v\nwant %v", name, desc, got, want)
				}
			}
		}
		// One side only: the recipients.
		c := pending(db.Order{}, db.Page{First: ptr(5), Recipients: true})
		for i, m := range c.Members {
			if m.ID != c.Invitations[i].RecipientID {
				t.Fatalf("member %d is %d, want the recipient %d", i, m.ID, c.Invitations[i].RecipientID)
			}
		}
		if len(c.Members) != 5 {
			t.Fatalf("%d recipients for a page of 5", len(c.Members))
		}
	})
	t.Run("BadPages", func(t *testing.T) {
		bad := "not-a-cursor"
		for name, p := range map[string]db.Page{
			"FirstTooLarge": {First: ptr(101)},
			"LastTooLarge":  {Last: ptr(101)},
			"Negative":      {First: ptr(-1)},
			"FirstAndLast":  {First: ptr(1), Last: ptr(1)},
			"BadCursor":     {After: &bad},
			"BadBefore":     {Before: &bad},
		} {
			_, err := f.store.PendingInvitations(f.ctx, ada, db.PendingFilter{}, db.Order{}, p)
			if codeOf(t, err) != db.CodeBadUserInput {
				t.Fatalf("%s: %v", name, err)
			}
		}
		c := pending(db.Order{}, db.Page{First: ptr(100)})
		if len(c.Invitations) != len(f.liveIDs(ada)) {
			t.Fatal("first: 100")
		}
	})
	t.Run("CursorCannotWidenScope", func(t *testing.T) {
		bee := f.member("bee")
		f.mustSend(bee, r[0])
		c := pending(db.Order{}, db.Page{First: ptr(3)})
		other, err := f.store.PendingInvitations(f.ctx, bee, db.PendingFilter{}, db.Order{}, db.Page{After: ptr(c.Cursor(0))})
		if err != nil {
			t.Fatal(err)
		}
		for _, inv := range other.Invitations {
			if inv.SenderID != bee {
				t.Fatal("a cursor from another list leaked rows")
			}
		}
	})
}

func TestSentAndReceivedLists(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob := f.member("ada"), f.member("bob")
	r := f.members("r", 4)
	accepted := f.mustSend(ada, r[0])
	f.store.AcceptInvitation(f.ctx, r[0], accepted.ID)
	withdrawn := f.mustSend(ada, r[1])
	f.withdraw(ada, withdrawn.ID)
	pending := f.mustSend(ada, r[2])
	toAda := f.mustSend(bob, ada)
	sent := func(statuses ...string) []int64 {
		c, err := f.store.SentInvitations(f.ctx, ada, db.SentFilter{Statuses: statuses}, db.Order{}, db.Page{})
		if err != nil {
			t.Fatal(err)
		}
		return ids(c)
	}
	if got := sent(); len(got) != 3 {
		t.Fatalf("all sent %v", got)
	}
	if got := sent(db.StatusAccepted, db.StatusWithdrawn); !equal(got, []int64{accepted.ID, withdrawn.ID}) {
		t.Fatalf("accepted+withdrawn %v", got)
	}
	if got := sent(db.StatusPending); !equal(got, []int64{pending.ID}) {
		t.Fatalf("pending %v", got)
	}
	f.clock.Advance(180 * db.Day)
	if got := sent(db.StatusExpired); !equal(got, []int64{pending.ID}) {
		t.Fatalf("expired %v", got)
	}
	f.clock.Set(t0)
	c, err := f.store.ReceivedInvitations(f.ctx, ada, db.Order{}, db.Page{})
	if err != nil || !equal(ids(c), []int64{toAda.ID}) {
		t.Fatalf("received %v %v", ids(c), err)
	}
}

func (f *fixture) liveIDs(sender int64) []int64 {
	f.t.Helper()
	var out []int64
	if err := f.conn.Select(&out, `SELECT id FROM invitations WHERE sender_id = $1 AND status = 'PENDING' ORDER BY sent_at, id`, sender); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) newest(sender int64) int64 {
	return int64(f.scalar(`SELECT max(id) FROM invitations WHERE sender_id = $1`, sender))
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func reversed(a []int64) []int64 {
	out := make([]int64, len(a))
	for i, v := range a {
		out[len(a)-1-i] = v
	}
	return out
}

// cursors are the cursors of c's invitations, in order.
func cursors(c *db.Connection) []string {
	out := make([]string, len(c.Invitations))
	for i := range out {
		out[i] = c.Cursor(i)
	}
	return out
}
