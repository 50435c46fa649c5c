package db

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
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

// keyset names what a list is paginated over: rows of table ordered by (key, id).
type keyset[T any] struct {
	table string // with its alias, e.g. "invitations i"
	key   string // the timestamp column, e.g. "i.sent_at"; the id column is the alias's id
	cols  string // the selected columns
	// join joins more tables to the page's statement (not to its count), whose columns
	// cols selects after T's; joined appends the destinations of a row's joined columns.
	join   string
	joined func(row *T, dst []any) []any
}

// page is one page of a keyset list.
type page[T any] struct {
	rows             []*T
	hasNext, hasPrev bool
	count            func(context.Context) (int, error)
}

// keysetPage runs a keyset-paginated query over k's rows matching q, in o's order,
// cut by p. Errors: CodeBadUserInput for bad page arguments or cursors.
func keysetPage[T any, P row[T]](ctx context.Context, s *Store, k keyset[T], q *listQuery, o Order, p Page) (*page[T], error) {
	n, backward, err := pageSize(p)
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(p.After, "after")
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(p.Before, "before")
	if err != nil {
		return nil, err
	}
	alias := k.table[strings.LastIndex(k.table, " ")+1:]
	position := "(" + k.key + ", " + alias + ".id)"
	base := q.sql()
	baseArgs := slices.Clone(q.args)
	// "later" is the comparison that selects rows after a position in the list order.
	later, earlier := ">", "<"
	if o.Desc {
		later, earlier = "<", ">"
	}
	if after != nil {
		q.add(position+" "+later+" (?, ?)", after.at, after.id)
	}
	if before != nil {
		q.add(position+" "+earlier+" (?, ?)", before.at, before.id)
	}
	dir := "ASC"
	if o.Desc != backward {
		dir = "DESC"
	}
	countQuery := `SELECT count(*) FROM ` + k.table + ` WHERE ` + base
	cols, args := k.cols, q.args
	if p.Count {
		// An uncorrelated subquery: PostgreSQL counts once and repeats the total in
		// every row of the page.
		cols = k.cols + `, (` + countQuery + `) AS total`
		args = append(slices.Clone(baseArgs), q.args...)
	}
	query := `SELECT ` + cols + ` FROM ` + k.table + k.join + ` WHERE ` + q.sql() +
		` ORDER BY ` + k.key + ` ` + dir + `, ` + alias + `.id ` + dir + ` LIMIT ` + strconv.Itoa(n+1)
	var n0 int
	extra := k.joined
	if p.Count {
		extra = func(row *T, dst []any) []any {
			if k.joined != nil {
				dst = k.joined(row, dst)
			}
			return append(dst, &n0)
		}
	}
	rows, err := queryRows[T, P](ctx, s, extra, rebound(query), args...)
	if err != nil {
		return nil, translate(err)
	}
	var total *int
	if p.Count && len(rows) > 0 {
		total = &n0
	}
	more := len(rows) > n
	if more {
		rows = rows[:n]
	}
	if backward {
		slices.Reverse(rows)
	}
	pg := &page[T]{rows: rows}
	// Beyond the page's own edge, a neighbour exists if some row lies at or past the
	// cursor the client came from.
	exists := func(cur *cursor, cmp string) (bool, error) {
		if cur == nil {
			return false, nil
		}
		var ok bool
		query := fmt.Sprintf(`SELECT EXISTS (SELECT 1 FROM %s WHERE %s AND %s %s= (?, ?))`, k.table, base, position, cmp)
		err := s.db.GetContext(ctx, &ok, rebound(query), append(slices.Clone(baseArgs), cur.at, cur.id)...)
		return ok, translate(err)
	}
	if backward {
		pg.hasPrev = more
		if pg.hasNext, err = exists(before, later); err != nil {
			return nil, err
		}
	} else {
		pg.hasNext = more
		if pg.hasPrev, err = exists(after, earlier); err != nil {
			return nil, err
		}
	}
	// The page's statement counted unless it was not asked to, or it returned no row
	// to carry the total: then the list is empty, unless a cursor cut it.
	counted := p.Count && (total != nil || (after == nil && before == nil))
	pg.count = func(ctx context.Context) (int, error) {
		if counted {
			if total == nil {
				return 0, nil
			}
			return *total, nil
		}
		var n int
		err := s.db.GetContext(ctx, &n, rebound(countQuery), baseArgs...)
		return n, translate(err)
	}
	return pg, nil
}

// reboundCache maps lists' statements, written with ? placeholders, to PostgreSQL's
// $n form. A list's statement is assembled from its filter's conditions for every
// request, but the shapes are few (which filters and cursors are given, the order, the
// page size), and rewriting the placeholders scanned and copied the whole statement each
// time. The cache stops growing at reboundCacheSize shapes; beyond them, statements are
// rewritten each time.
var reboundCache struct {
	sync.RWMutex
	m map[string]string
}

const reboundCacheSize = 4096

// rebound is query with its ? placeholders numbered $1, $2, … in order.
func rebound(query string) string {
	reboundCache.RLock()
	q, ok := reboundCache.m[query]
	reboundCache.RUnlock()
	if ok {
		return q
	}
	q = sqlx.Rebind(sqlx.DOLLAR, query)
	reboundCache.Lock()
	if reboundCache.m == nil {
		reboundCache.m = map[string]string{}
	}
	if len(reboundCache.m) < reboundCacheSize {
		reboundCache.m[query] = q
	}
	reboundCache.Unlock()
	return q
}

// pageSize validates the page arguments and returns the page size and direction.
func pageSize(p Page) (n int, backward bool, err error) {
	if p.First != nil && p.Last != nil {
		return 0, false, badInput("first", "pass either first or last, not both")
	}
	n, name := DefaultPageSize, "first"
	if p.First != nil {
		n = *p.First
	}
	if p.Last != nil {
		n, name, backward = *p.Last, "last", true
	}
	if n < 0 || n > MaxPageSize {
		return 0, false, badInput(name, "%s must be between 0 and %d", name, MaxPageSize)
	}
	return n, backward, nil
}

// The columns of a list's invitations i, and of their senders s and recipients r.
var (
	listColumns      = prefixed("i", invitationColumns)
	senderColumns    = prefixed("s", memberColumns)
	recipientColumns = prefixed("r", memberColumns)
)

func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = alias + "." + c
	}
	return strings.Join(parts, ", ")
}

// cursor is a position in a list ordered by (timestamp, id).
type cursor struct {
	at time.Time
	id int64
}

// encodeCursor returns the opaque cursor of a position. It carries only the position:
// every list query names the viewer, so a cursor can never widen scope.
func encodeCursor(at time.Time, id int64) string {
	var raw [48]byte
	r := strconv.AppendInt(append(strconv.AppendInt(raw[:0], at.UnixMicro(), 10), ':'), id, 10)
	return base64.RawURLEncoding.EncodeToString(r)
}

func decodeCursor(s *string, arg string) (*cursor, error) {
	if s == nil {
		return nil, nil
	}
	bad := badInput(arg, "%s is not a valid cursor", arg)
	raw, err := base64.RawURLEncoding.DecodeString(*s)
	if err != nil {
		return nil, bad
	}
	micros, id, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, bad
	}
	us, err1 := strconv.ParseInt(micros, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	// PostgreSQL timestamps end in the year 294276; keep well inside.
	if err1 != nil || err2 != nil || n <= 0 || us < -62135596800000000 || us > 253402300799999999 {
		return nil, bad
	}
	return &cursor{at: time.UnixMicro(us).UTC(), id: n}, nil
}
