package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Counts are invitations by status as their sender sees them.
type Counts struct {
	Sent      int
	Pending   int
	Accepted  int
	Withdrawn int
	Expired   int
}

// AcceptanceRate is Accepted ÷ (Sent − Withdrawn), nil when that is 0.
func (c Counts) AcceptanceRate() *float64 {
	d := c.Sent - c.Withdrawn
	if d <= 0 {
		return nil
	}
	r := float64(c.Accepted) / float64(d)
	return &r
}

// Stats are acceptance analytics over a set of invitations.
type Stats struct {
	Counts
	// MedianTimeToAccept is in seconds; nil when nothing was accepted.
	MedianTimeToAccept *int
	ByWeek             []*WeekStats
	ByNote             []*NoteStats
	BySource           []*SourceStats
}

// WeekStats are the counts of one send week (WeekStart is Monday 00:00 UTC).
type WeekStats struct {
	WeekStart time.Time
	Counts
}

// NoteStats are the counts of invitations with or without a personal note.
type NoteStats struct {
	WithNote bool
	Counts
}

// SourceStats are the counts of one source.
type SourceStats struct {
	Source string
	Counts
}

// InvitationStats returns the analytics of sender's invitations (all members' when
// sender is nil) sent in [after, before), either bound optional, with statuses as the
// sender sees them now: an ignored invitation is pending, and a pending or ignored one
// past the lifetime is expired whether or not the sweep has marked it. The median time
// to accept is percentile_disc(0.5) of the whole seconds from sending to accepting (the
// lower middle value for an even count). Errors: CodeBadUserInput when after is not
// before before.
//
// A member's statistics are one aggregate over the covering indexes of migration 0003
// (index-only). The network's come from that migration's rollups for the whole UTC
// days of the range and from invitations for the rest (the shorter side of a range end
// in mid-day, and the live invitations of the day in which the lifetime runs out); the
// median from the time-to-accept rollup, which names the bucket holding it, and one
// sorted read of that bucket.
func (s *Store) InvitationStats(ctx context.Context, sender *int64, after, before *time.Time, opts ...StatsOption) (*Stats, error) {
	weeks := true
	for _, o := range opts {
		if o == WithoutWeeks {
			weeks = false
		}
	}
	if after != nil && before != nil && !after.Before(*before) {
		return nil, badInput("sentAfter", "sentAfter must be before sentBefore")
	}
	r := statsRange{after: ceilMicro(after), before: ceilMicro(before)}
	now := s.Now()
	cut := now.Add(-s.limits.TTL) // live invitations sent at or before cut are expired
	t := newTally()
	var median *int
	var err error
	if sender != nil {
		median, err = memberStats(ctx, s.db, t, *sender, r, cut, weeks)
	} else {
		median, err = s.networkStats(ctx, t, r, cut)
	}
	if err != nil {
		return nil, translate(err)
	}
	st := t.stats()
	st.MedianTimeToAccept = median
	return st, nil
}

// A StatsOption narrows what InvitationStats computes.
type StatsOption int

// WithoutWeeks leaves ByWeek empty for a member's statistics (for callers that do not
// show it; the network's statistics ignore it).
const WithoutWeeks StatsOption = 1

// statsRange is [after, before), either bound nil for none, in whole microseconds
// (PostgreSQL's precision).
type statsRange struct{ after, before *time.Time }

// ceilMicro rounds up to a whole microsecond: with sent_at in microseconds,
// sent_at >= t (or < t) holds exactly when it holds for ceilMicro(t).
func ceilMicro(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := t.UTC().Truncate(time.Microsecond)
	if c.Before(*t) {
		c = c.Add(time.Microsecond)
	}
	return &c
}

// lower and upper are a bound as a query parameter, ±infinity for none.
func lower(t *time.Time) any {
	if t == nil {
		return "-infinity"
	}
	return *t
}

func upper(t *time.Time) any {
	if t == nil {
		return "infinity"
	}
	return *t
}

// Status classes as the sender sees them.
const (
	clsPending   = "P"
	clsAccepted  = "A"
	clsWithdrawn = "W"
	clsExpired   = "E"
)

// classify is the SQL form of a row's class; $cut is now − lifetime.
const classify = `CASE WHEN status IN ('PENDING', 'IGNORED') THEN CASE WHEN sent_at > %s THEN 'P' ELSE 'E' END
            WHEN status = 'EXPIRED' THEN 'E' WHEN status = 'ACCEPTED' THEN 'A' ELSE 'W' END`

// noteSplit reads the columns of the invitations matching cond (with $ parameters)
// and a note flag from the covering index pairs of migration 0003, one index-only scan
// for invitations without a note, one for those with one.
func noteSplit(cond string) string {
	const cols = `sent_at, status, source, responded_at FROM invitations WHERE `
	return `SELECT false AS note, ` + cols + `message IS NULL AND ` + cond + `
  UNION ALL
  SELECT true, ` + cols + `message IS NOT NULL AND ` + cond
}

// memberStatsQuery counts one sender's invitations by class and week, source or note
// (grouping sets over a first aggregation: g is GROUPING(week, source, note), week the
// number of weeks since Monday 1969-12-29), then adds a row (g = 7) with the median
// time to accept. memberStatsNoWeeksQuery leaves the weeks out (a third of the rows
// or less) for callers that do not show them.
var (
	memberStatsQuery        = memberStatsSQL(true)
	memberStatsNoWeeksQuery = memberStatsSQL(false)
)

func memberStatsSQL(weeks bool) string {
	// With weeks: g = GROUPING(week, source, note) is 3, 5 or 6 by grouping set; without,
	// GROUPING(source, note) + 4 gives the same 5 and 6.
	g, outerWeek, innerWeek, groupBy, sets := `GROUPING(week, source, note)`, `week`,
		`floor((date_part('epoch', sent_at) + 259200) / 604800)::int AS week,
               `, `1, 2, 3, 4`, `(week, cls), (source, cls), (note, cls)`
	if !weeks {
		g, outerWeek, innerWeek, groupBy, sets = `GROUPING(source, note) + 4`, `NULL::int`, ``, `1, 2, 3`, `(source, cls), (note, cls)`
	}
	return `
SELECT ` + g + ` AS g, ` + outerWeek + ` AS week, source, note, cls, sum(n) AS n, NULL::bigint AS median
  FROM (SELECT ` + innerWeek + `source COLLATE "C" AS source, note, (` + fmt.Sprintf(classify, "$4") + `)::"char" AS cls,
               count(*) AS n
          FROM (` + noteSplit(`sender_id = $1 AND sent_at >= $2 AND sent_at < $3`) + `) i
         GROUP BY ` + groupBy + `) r
 GROUP BY GROUPING SETS (` + sets + `)
UNION ALL
SELECT 7, NULL, NULL, NULL, NULL, 0, percentile_disc(0.5) WITHIN GROUP (ORDER BY invitation_tta_seconds(sent_at, responded_at))
  FROM (` + noteSplit(`sender_id = $1 AND sent_at >= $2 AND sent_at < $3 AND status = 'ACCEPTED'`) + `) a`
}

// epochWeek is week 0 of memberStatsQuery.
var epochWeek = time.Date(1969, 12, 29, 0, 0, 0, 0, time.UTC)

func memberStats(ctx context.Context, q sqlx.QueryerContext, t *tally, sender int64, r statsRange, cut time.Time, weeks bool) (*int, error) {
	query := memberStatsQuery
	if !weeks {
		query = memberStatsNoWeeksQuery
	}
	rows, err := q.QueryContext(ctx, query, sender, lower(r.after), upper(r.before), cut)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var median *int
	// Scanned by hand into reused variables: a member's statistics are about a hundred
	// short rows.
	var (
		grouping, n   int
		week, med     sql.NullInt64
		source, class sql.NullString
		note          sql.NullBool
	)
	for rows.Next() {
		if err := rows.Scan(&grouping, &week, &source, &note, &class, &n, &med); err != nil {
			return nil, err
		}
		switch grouping {
		case 3:
			t.week(epochWeek.Add(time.Duration(week.Int64)*7*Day)).add(class.String, n)
		case 5:
			t.source(source.String).add(class.String, n)
		case 6:
			t.note(note.Bool).add(class.String, n)
		case 7:
			if med.Valid {
				m := int(med.Int64)
				median = &m
			}
		}
	}
	return median, rows.Err()
}

// tally accumulates counts by week (Unix seconds of Monday 00:00 UTC), by source and
// by note.
type tally struct {
	weeks   map[int64]*Counts
	sources map[string]*Counts
	notes   [2]Counts
}

func newTally() *tally {
	return &tally{weeks: map[int64]*Counts{}, sources: map[string]*Counts{}}
}

func (t *tally) week(w time.Time) *Counts {
	c := t.weeks[w.Unix()]
	if c == nil {
		c = &Counts{}
		t.weeks[w.Unix()] = c
	}
	return c
}

func (t *tally) source(s string) *Counts {
	c := t.sources[s]
	if c == nil {
		c = &Counts{}
		t.sources[s] = c
	}
	return c
}

func (t *tally) note(withNote bool) *Counts {
	if withNote {
		return &t.notes[1]
	}
	return &t.notes[0]
}

// add counts n invitations of one week, source, note and class.
func (t *tally) add(week time.Time, source string, note bool, class string, n int) {
	t.week(week).add(class, n)
	t.source(source).add(class, n)
	t.note(note).add(class, n)
}

func (c *Counts) add(class string, n int) {
	switch class {
	case clsPending:
		c.Pending += n
	case clsAccepted:
		c.Accepted += n
	case clsWithdrawn:
		c.Withdrawn += n
	case clsExpired:
		c.Expired += n
	default:
		panic("stats: unknown class " + class)
	}
	c.Sent += n
}

func (c *Counts) plus(o *Counts) {
	c.Sent += o.Sent
	c.Pending += o.Pending
	c.Accepted += o.Accepted
	c.Withdrawn += o.Withdrawn
	c.Expired += o.Expired
}

// stats folds the tally into totals and breakdowns: weeks oldest first, both note
// rows, sources in the order of Sources; weeks and sources with no invitation are
// left out.
func (t *tally) stats() *Stats {
	st := &Stats{
		ByWeek:   []*WeekStats{},
		ByNote:   []*NoteStats{{WithNote: false, Counts: t.notes[0]}, {WithNote: true, Counts: t.notes[1]}},
		BySource: []*SourceStats{},
	}
	st.Counts.plus(&t.notes[0])
	st.Counts.plus(&t.notes[1])
	for w, c := range t.weeks {
		if c.Sent != 0 {
			st.ByWeek = append(st.ByWeek, &WeekStats{WeekStart: time.Unix(w, 0).UTC(), Counts: *c})
		}
	}
	slices.SortFunc(st.ByWeek, func(a, b *WeekStats) int { return a.WeekStart.Compare(b.WeekStart) })
	for _, name := range Sources {
		if c := t.sources[name]; c != nil && c.Sent != 0 {
			st.BySource = append(st.BySource, &SourceStats{Source: name, Counts: *c})
		}
	}
	return st
}
