package db

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// Quota returns member's use of their sending limits now. Errors: CodeNotFound when
// the member does not exist.
//
// It reads in a transaction only to force the quota statement's generic plan
// (forceGenericPlans): two more round trips, where PostgreSQL would otherwise plan the
// statement, for much longer than it runs, on every call.
func (s *Store) Quota(ctx context.Context, member int64) (*Quota, error) {
	var q *Quota
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		var m Member
		if err := tx.GetContext(ctx, &m, `SELECT `+memberColumns+` FROM members WHERE id = $1`, member); err != nil {
			return err
		}
		if err := forceGenericPlans(ctx, tx); err != nil {
			return err
		}
		var err error
		q, err = s.quota(ctx, tx, &m, now)
		return err
	})
	return q, err
}

// forceGenericPlans has the rest of tx run generic plans, for the quota statement.
// Its generic plan uses the same indexes as the plans PostgreSQL makes for each call's
// values, but is estimated dearer (it cannot see how short the weekly window is), so on
// a network of real size PostgreSQL plans the statement on every call, and the planning
// costs three times the execution (`go run ./bench -cases c -v`: 1.2 ms against 0.3 ms).
// The generic plans are checked by TestPlansOfHotStatements, the planning by
// TestStatementsArePlannedOnce.
func forceGenericPlans(ctx context.Context, tx *Tx) error {
	_, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
	return err
}

// quotaRow is what quotaSQL selects.
type quotaRow struct {
	Used      int        `db:"used"`
	Oldest    *time.Time `db:"oldest"`
	Pending   int        `db:"pending"`
	NotesUsed int        `db:"notes"`
}

// fields appends r's fields, in quotaSQL's column order, to dst.
func (r *quotaRow) fields(dst []any) []any {
	return append(dst, &r.Used, &r.Oldest, &r.Pending, &r.NotesUsed)
}

// quotaSQL counts, in one statement, member $1's sends in the weekly window (after $2;
// withdrawn ones counted when $3), live pending invitations (sent after $4) and notes
// this calendar month (since $5). The columns of extra, which may use further
// parameters, are selected beside them.
func quotaSQL(extra string) string {
	return `
SELECT w.used, w.oldest,
       (SELECT count(*) FROM invitations
         WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED') AND sent_at > $4) AS pending,
       (SELECT count(*) FROM invitations
         WHERE sender_id = $1 AND sent_at >= $5 AND message IS NOT NULL) AS notes` + extra + `
  FROM (SELECT count(*) AS used, min(sent_at) AS oldest FROM invitations
         WHERE sender_id = $1 AND sent_at > $2 AND ($3 OR status <> 'WITHDRAWN')) AS w`
}

var quotaQuery = quotaSQL("")

// quotaArgs are quotaSQL's parameters $1 to $5 for member at now.
func (s *Store) quotaArgs(member int64, now time.Time) []any {
	y, mo, _ := now.Date()
	monthStart := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	return []any{member, now.Add(-Window), !s.limits.RefundOnWithdraw, now.Add(-s.limits.TTL), monthStart}
}

// quota counts member m's use of their sending limits at now.
func (s *Store) quota(ctx context.Context, q sqlx.QueryerContext, m *Member, now time.Time) (*Quota, error) {
	var row quotaRow
	if err := sqlx.GetContext(ctx, q, &row, quotaQuery, s.quotaArgs(m.ID, now)...); err != nil {
		return nil, err
	}
	return s.quotaOf(m, row), nil
}

// quotaOf is m's quota with the counts of row.
func (s *Store) quotaOf(m *Member, row quotaRow) *Quota {
	out := &Quota{
		Plan:          m.Plan,
		Limit:         s.limits.weeklyLimit(m.Plan),
		Used:          row.Used,
		PendingCount:  row.Pending,
		PendingLimit:  s.limits.PendingMax,
		NotesUsed:     row.NotesUsed,
		NoteMaxLength: s.limits.noteMax(m.Plan),
	}
	if row.Oldest != nil {
		at := row.Oldest.Add(Window).UTC()
		out.ResetsAt = &at
	}
	if n := s.limits.notesPerMonth(m.Plan); n >= 0 {
		out.NotesLimit = &n
	}
	return out
}
