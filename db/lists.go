package db

import (
	"context"
	"strings"
	"time"
)

// Page selects a slice of a list, Relay style: First/After walk forwards, Last/Before
// backwards. With neither First nor Last, the first DefaultPageSize items are returned.
type Page struct {
	First  *int
	After  *string
	Last   *int
	Before *string
	// Count also counts the whole list, in the page's statement (one round trip instead
	// of two when the client asks for totalCount).
	Count bool
	// Senders and Recipients also read the page's invitations' senders or recipients,
	// in the page's statement (Connection.Members): for a client that shows them, one
	// round trip instead of two. Lists of notifications ignore them.
	Senders, Recipients bool
}

// Order orders a list by (sent_at, id); Desc is newest first.
type Order struct {
	Desc bool
}

// PendingFilter narrows the pending list. Day counts are exact 24-hour periods.
type PendingFilter struct {
	OlderThanDays *int
	NewerThanDays *int
	SentBefore    *time.Time
	SentAfter     *time.Time
}

// SentFilter narrows the sent history; Statuses are statuses as the sender sees them.
type SentFilter struct {
	Statuses   []string
	SentBefore *time.Time
	SentAfter  *time.Time
}

// MaxDays bounds day-count filters.
const MaxDays = 36500

// Connection is one page of a list.
type Connection struct {
	Invitations []*Invitation
	// Members are the senders and recipients the Page asked for (each once per
	// invitation that names it, in no particular order).
	Members         []*Member
	HasNextPage     bool
	HasPreviousPage bool
	count           func(context.Context) (int, error)
}

// Cursor is the opaque cursor of the page's i-th invitation.
func (c *Connection) Cursor(i int) string { return InvitationCursor(c.Invitations[i]) }

// InvitationCursor is the opaque cursor of an invitation's position in a list (lists
// of invitations are ordered by sent_at, then id). Cursors are made when a client asks
// for them, not for every row of every page.
func InvitationCursor(inv *Invitation) string { return encodeCursor(inv.SentAt, inv.ID) }

// TotalCount counts the whole list (one more statement, run only when asked for).
func (c *Connection) TotalCount(ctx context.Context) (int, error) { return c.count(ctx) }

// listQuery is a list's WHERE clause, built from fragments with ? placeholders.
type listQuery struct {
	where []string
	args  []any
}

func (q *listQuery) add(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

func (q *listQuery) sql() string { return strings.Join(q.where, " AND ") }

// PendingInvitations lists viewer's live sent invitations (ignored ones included: to
// the sender they are pending). Errors: CodeBadUserInput for a bad filter, page or cursor.
func (s *Store) PendingInvitations(ctx context.Context, viewer int64, f PendingFilter, o Order, p Page) (*Connection, error) {
	now := s.Now()
	q, err := pendingRange(f, now)
	if err != nil {
		return nil, err
	}
	q.add("i.sender_id = ?", viewer)
	q.add("i.status IN ('PENDING', 'IGNORED')")
	q.add("i.sent_at > ?", now.Add(-s.limits.TTL))
	return s.list(ctx, q, viewer, o, p, now)
}

// pendingRange turns the age and time filters into bound conditions on i.sent_at.
// Errors: CodeBadUserInput for a negative or huge day count, or a range that can hold
// nothing.
func pendingRange(f PendingFilter, now time.Time) (*listQuery, error) {
	q := &listQuery{}
	lower, upper := time.Time{}, time.Time{} // exclusive lower, inclusive-ish upper bounds, for the band check
	for _, d := range []struct {
		name  string
		days  *int
		older bool
	}{{"olderThanDays", f.OlderThanDays, true}, {"newerThanDays", f.NewerThanDays, false}} {
		if d.days == nil {
			continue
		}
		if *d.days < 0 || *d.days > MaxDays {
			return nil, badInput("filter."+d.name, "%s must be between 0 and %d", d.name, MaxDays)
		}
		at := now.Add(-time.Duration(*d.days) * Day)
		if d.older {
			q.add("i.sent_at <= ?", at)
			upper = earliest(upper, at)
		} else {
			q.add("i.sent_at > ?", at)
			lower = latest(lower, at)
		}
	}
	if f.SentBefore != nil {
		q.add("i.sent_at < ?", *f.SentBefore)
		upper = earliest(upper, *f.SentBefore)
	}
	if f.SentAfter != nil {
		q.add("i.sent_at > ?", *f.SentAfter)
		lower = latest(lower, *f.SentAfter)
	}
	if !lower.IsZero() && !upper.IsZero() && !lower.Before(upper) {
		return nil, badInput("filter", "the filter selects an empty range: nothing can be both that old and that new")
	}
	return q, nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

// ReceivedInvitations lists the invitations waiting for viewer's answer (not ignored,
// withdrawn, expired or answered). Errors: CodeBadUserInput for a bad page or cursor.
func (s *Store) ReceivedInvitations(ctx context.Context, viewer int64, o Order, p Page) (*Connection, error) {
	now := s.Now()
	q := &listQuery{}
	q.add("i.recipient_id = ?", viewer)
	q.add("i.status = 'PENDING'")
	q.add("i.sent_at > ?", now.Add(-s.limits.TTL))
	return s.list(ctx, q, viewer, o, p, now)
}

// SentInvitations lists viewer's sent history with statuses as the sender sees them.
// Errors: CodeBadUserInput for a bad filter, page or cursor.
func (s *Store) SentInvitations(ctx context.Context, viewer int64, f SentFilter, o Order, p Page) (*Connection, error) {
	now := s.Now()
	cut := now.Add(-s.limits.TTL)
	q := &listQuery{}
	q.add("i.sender_id = ?", viewer)
	if f.Statuses != nil {
		var alts []string
		var args []any
		for _, st := range f.Statuses {
			switch st {
			case StatusPending:
				alts = append(alts, "(i.status IN ('PENDING', 'IGNORED') AND i.sent_at > ?)")
				args = append(args, cut)
			case StatusExpired:
				alts = append(alts, "(i.status = 'EXPIRED' OR (i.status IN ('PENDING', 'IGNORED') AND i.sent_at <= ?))")
				args = append(args, cut)
			case StatusAccepted, StatusWithdrawn:
				alts = append(alts, "i.status = ?")
				args = append(args, st)
			}
		}
		if len(alts) == 0 {
			alts = []string{"FALSE"} // only IGNORED, which a sender never sees, or none
		}
		q.add("("+strings.Join(alts, " OR ")+")", args...)
	}
	if f.SentBefore != nil {
		q.add("i.sent_at < ?", *f.SentBefore)
	}
	if f.SentAfter != nil {
		q.add("i.sent_at > ?", *f.SentAfter)
	}
	if f.SentBefore != nil && f.SentAfter != nil && !f.SentAfter.Before(*f.SentBefore) {
		return nil, badInput("filter", "sentAfter must be before sentBefore")
	}
	return s.list(ctx, q, viewer, o, p, now)
}

// list runs a keyset-paginated list over invitations i matching q.
func (s *Store) list(ctx context.Context, q *listQuery, viewer int64, o Order, p Page, now time.Time) (*Connection, error) {
	k := keyset[Invitation]{table: "invitations i", key: "i.sent_at", cols: listColumns}
	// The members the page asked for, joined on their primary key (the foreign keys
	// guarantee one row each) and scanned into Members.
	var members []*Member
	joins := 0
	if p.Senders {
		k.join += " JOIN members s ON s.id = i.sender_id"
		k.cols += ", " + senderColumns
		joins++
	}
	if p.Recipients {
		k.join += " JOIN members r ON r.id = i.recipient_id"
		k.cols += ", " + recipientColumns
		joins++
	}
	if joins > 0 {
		var ms slab[Member]
		k.joined = func(_ *Invitation, dst []any) []any {
			for range joins {
				m := ms.next()
				members = append(members, m)
				dst = m.fields(dst)
			}
			return dst
		}
	}
	pg, err := keysetPage[Invitation](ctx, s, k, q, o, p)
	if err != nil {
		return nil, err
	}
	// The statement reads one row past the page, the last one scanned; not its members.
	members = members[:min(len(members), joins*len(pg.rows))]
	for _, inv := range pg.rows {
		s.limits.view(inv, viewer, now)
	}
	return &Connection{Invitations: pg.rows, Members: members, HasNextPage: pg.hasNext, HasPreviousPage: pg.hasPrev, count: pg.count}, nil
}
