package db

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Network statistics.

// rollupDaysQuery sums invitation_stats_daily over the days in [$1, $2) by week
// (Monday, 2001-01-01 being one), source, note and class. Live invitations of days
// before $3, the day in which the lifetime runs out, are expired; of later days and of
// that day pending (rollupDays corrects that day).
const rollupDaysQuery = `
SELECT (week::timestamp AT TIME ZONE 'UTC') AS week, source, has_note AS note, cls, sum(n) AS n
  FROM (SELECT day - ((day - date '2001-01-01') % 7 + 7) % 7 AS week, source, has_note, n,
               CASE state WHEN 'LIVE' THEN CASE WHEN day >= $3::date THEN 'P' ELSE 'E' END
                          WHEN 'ACCEPTED' THEN 'A' WHEN 'WITHDRAWN' THEN 'W' ELSE 'E' END AS cls
          FROM invitation_stats_daily
         WHERE day >= $1::date AND day < $2::date) d
 GROUP BY 1, 2, 3, 4
HAVING sum(n) <> 0`

// segmentQuery counts the invitations sent in [$1, $2), within one day, by source,
// note, class (as memberStatsQuery) and the time-to-accept bucket of accepted ones.
var segmentQuery = `
SELECT source, note, ` + fmt.Sprintf(classify, "$3") + ` AS cls,
       CASE WHEN status = 'ACCEPTED' THEN invitation_tta_bucket(sent_at, responded_at) END AS bucket,
       count(*) AS n
  FROM (` + noteSplit(`sent_at >= $1 AND sent_at < $2`) + `) i
 GROUP BY 1, 2, 3, 4`

// lapsedQuery counts the live invitations sent in [$1, $2]: on the day in which the
// lifetime runs out, the rollup's live invitations sent up to the cut are expired.
var lapsedQuery = `
SELECT source, note, count(*) AS n
  FROM (` + noteSplit(`sent_at >= $1 AND sent_at <= $2`) + `) i
 WHERE status IN ('PENDING', 'IGNORED')
 GROUP BY 1, 2`

// ttaDaysQuery sums invitation_stats_tta over the days in [$1, $2).
const ttaDaysQuery = `
SELECT bucket, sum(n) AS n
  FROM invitation_stats_tta
 WHERE day >= $1::date AND day < $2::date
 GROUP BY 1
HAVING sum(n) <> 0`

// medianQuery reads the $4-th (from 0) time to accept of bucket $1 in [$2, $3) from
// invitations_accepted_tta_idx.
const medianQuery = `
SELECT invitation_tta_seconds(sent_at, responded_at) AS tta
  FROM invitations
 WHERE status = 'ACCEPTED' AND invitation_tta_bucket(sent_at, responded_at) = $1
   AND sent_at >= $2 AND sent_at < $3
 ORDER BY 1
OFFSET $4 LIMIT 1`

// networkStats reads everything in one REPEATABLE READ snapshot, so that the rollups,
// the rows counted directly and the median agree.
func (s *Store) networkStats(ctx context.Context, t *tally, r statsRange, cut time.Time) (*int, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	days, segments := r.split()
	hist := map[int]int{} // accepted invitations by time-to-accept bucket
	if !days.empty() {
		if err := rollupDays(ctx, tx, t, hist, days, cut); err != nil {
			return nil, err
		}
	}
	for _, seg := range segments {
		if err := seg.count(ctx, tx, t, hist, cut); err != nil {
			return nil, err
		}
	}
	median, err := networkMedian(ctx, tx, t, hist, r)
	if err != nil {
		return nil, err
	}
	return median, tx.Commit()
}

// segment is part of one UTC day, counted from invitations and added to (sign 1) or,
// when the rollup counted the whole day, taken from (sign -1) the statistics.
type segment struct {
	from, to time.Time
	sign     int
}

// split cuts the range into whole UTC days, read from the rollups, and segments
// within a day, read from invitations. A range end in the middle of a day costs at
// most half a day of invitations: the shorter side of the end is counted, the longer
// one taken from the rollup (a whole day minus its shorter side).
func (r statsRange) split() (days statsRange, segments []segment) {
	if r.after != nil {
		d := floorDay(*r.after)
		if d.Before(*r.after) {
			d = d.Add(Day)
		}
		days.after = &d
	}
	if r.before != nil {
		d := floorDay(*r.before)
		days.before = &d
	}
	if r.after != nil && r.before != nil && days.after.After(*days.before) { // within one day
		return statsRange{r.after, r.after}, []segment{{*r.after, *r.before, 1}}
	}
	if r.after != nil && r.after.Before(*days.after) {
		if start := days.after.Add(-Day); r.after.Sub(start) < days.after.Sub(*r.after) {
			days.after = &start
			segments = append(segments, segment{start, *r.after, -1})
		} else {
			segments = append(segments, segment{*r.after, *days.after, 1})
		}
	}
	if r.before != nil && days.before.Before(*r.before) {
		if end := days.before.Add(Day); end.Sub(*r.before) < r.before.Sub(*days.before) {
			segments = append(segments, segment{*r.before, end, -1})
			days.before = &end
		} else {
			segments = append(segments, segment{*days.before, *r.before, 1})
		}
	}
	return days, segments
}

func (r statsRange) empty() bool {
	return r.after != nil && r.before != nil && !r.after.Before(*r.before)
}

func (r statsRange) contains(t time.Time) bool {
	return (r.after == nil || !t.Before(*r.after)) && (r.before == nil || t.Before(*r.before))
}

// dayParam is a whole-day bound as a date parameter.
func dayParam(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.DateOnly)
}

func floorDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// weekOf is Monday 00:00 UTC of the week of t.
func weekOf(t time.Time) time.Time {
	day := floorDay(t)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

// rollupDays adds the rollups' whole days, then, if the day in which the lifetime runs
// out is among them, moves its live invitations sent up to cut to expired.
func rollupDays(ctx context.Context, tx *sqlx.Tx, t *tally, hist map[int]int, days statsRange, cut time.Time) error {
	from, to, cutDay := dayParam(days.after, "-infinity"), dayParam(days.before, "infinity"), floorDay(cut)
	var rows []struct {
		Week   time.Time `db:"week"`
		Source string    `db:"source"`
		Note   bool      `db:"note"`
		Class  string    `db:"cls"`
		N      int       `db:"n"`
	}
	if err := tx.SelectContext(ctx, &rows, rollupDaysQuery, from, to, cutDay.Format(time.DateOnly)); err != nil {
		return err
	}
	for _, row := range rows {
		t.add(row.Week, row.Source, row.Note, row.Class, row.N)
	}
	var buckets []struct {
		Bucket int `db:"bucket"`
		N      int `db:"n"`
	}
	if err := tx.SelectContext(ctx, &buckets, ttaDaysQuery, from, to); err != nil {
		return err
	}
	for _, b := range buckets {
		hist[b.Bucket] += b.N
	}
	if !days.contains(cutDay) {
		return nil
	}
	var lapsed []struct {
		Source string `db:"source"`
		Note   bool   `db:"note"`
		N      int    `db:"n"`
	}
	if err := tx.SelectContext(ctx, &lapsed, lapsedQuery, cutDay, cut); err != nil {
		return err
	}
	for _, l := range lapsed {
		t.add(weekOf(cutDay), l.Source, l.Note, clsPending, -l.N)
		t.add(weekOf(cutDay), l.Source, l.Note, clsExpired, l.N)
	}
	return nil
}

// count adds (or takes) the segment's invitations.
func (seg segment) count(ctx context.Context, tx *sqlx.Tx, t *tally, hist map[int]int, cut time.Time) error {
	var rows []struct {
		Source string `db:"source"`
		Note   bool   `db:"note"`
		Class  string `db:"cls"`
		Bucket *int   `db:"bucket"`
		N      int    `db:"n"`
	}
	if err := tx.SelectContext(ctx, &rows, segmentQuery, seg.from, seg.to, cut); err != nil {
		return err
	}
	week := weekOf(seg.from)
	for _, row := range rows {
		t.add(week, row.Source, row.Note, row.Class, seg.sign*row.N)
		if row.Bucket != nil {
			hist[*row.Bucket] += seg.sign * row.N
		}
	}
	return nil
}

// networkMedian finds the bucket holding the median's rank, (accepted − 1) ÷ 2, then
// the value at its rank within the bucket.
func networkMedian(ctx context.Context, tx *sqlx.Tx, t *tally, hist map[int]int, r statsRange) (*int, error) {
	accepted, inHist := t.notes[0].Accepted+t.notes[1].Accepted, 0
	buckets := make([]int, 0, len(hist))
	for b, n := range hist {
		buckets = append(buckets, b)
		inHist += n
	}
	if inHist != accepted {
		return nil, fmt.Errorf("stats: the time-to-accept rollup holds %d invitations, the counts %d accepted", inHist, accepted)
	}
	if accepted == 0 {
		return nil, nil
	}
	slices.Sort(buckets)
	rank := (accepted - 1) / 2
	for _, b := range buckets {
		if rank >= hist[b] {
			rank -= hist[b]
			continue
		}
		var tta int64
		if err := tx.GetContext(ctx, &tta, medianQuery, b, lower(r.after), upper(r.before), rank); err != nil {
			return nil, fmt.Errorf("stats: median in bucket %d: %w", b, err)
		}
		m := int(tta)
		return &m, nil
	}
	return nil, fmt.Errorf("stats: rank %d not in the time-to-accept rollup", rank)
}
