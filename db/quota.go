package db

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// Quota returns member's use of their sending limits now. Errors: CodeNotFound when
// the member does not exist.
func (s *Store) Quota(ctx context.Context, member int64) (*Quota, error) {
	var m Member
	if err := s.db.GetContext(ctx, &m, `SELECT `+memberColumns+` FROM members WHERE id = $1`, member); err != nil {
		return nil, translate(err)
	}
	q, err := s.quota(ctx, s.db, &m, s.Now())
	return q, translate(err)
}

// quota counts, in one statement, the sends in the weekly window (withdrawn ones
// refunded unless configured otherwise), the live pending invitations and this calendar
// month's notes.
func (s *Store) quota(ctx context.Context, q sqlx.QueryerContext, m *Member, now time.Time) (*Quota, error) {
	var row struct {
		Used      int        `db:"used"`
		Oldest    *time.Time `db:"oldest"`
		Pending   int        `db:"pending"`
		NotesUsed int        `db:"notes"`
	}
	y, mo, _ := now.Date()
	monthStart := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	err := sqlx.GetContext(ctx, q, &row, `
SELECT w.used, w.oldest,
       (SELECT count(*) FROM invitations
         WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED') AND sent_at > $4) AS pending,
       (SELECT count(*) FROM invitations
         WHERE sender_id = $1 AND sent_at >= $5 AND message IS NOT NULL) AS notes
  FROM (SELECT count(*) AS used, min(sent_at) AS oldest FROM invitations
         WHERE sender_id = $1 AND sent_at > $2 AND ($3 OR status <> 'WITHDRAWN')) AS w`,
		m.ID, now.Add(-Window), !s.limits.RefundOnWithdraw, now.Add(-s.limits.TTL), monthStart)
	if err != nil {
		return nil, err
	}
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
	return out, nil
}
