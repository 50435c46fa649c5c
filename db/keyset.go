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
