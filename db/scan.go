package db

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jmoiron/sqlx"
)

// A row type lists its fields in the order of its columns constant, so the hot
// statements scan without the reflection sqlx's Get and Select do per statement and
// per row.
type row[T any] interface {
	*T
	fields() []any
}

// fields are m's fields in memberColumns order.
func (m *Member) fields() []any {
	return []any{&m.ID, &m.Handle, &m.Name, &m.Headline, &m.Plan, &m.ConnectionCount, &m.CreatedAt}
}

// fields are inv's fields in invitationColumns order.
func (inv *Invitation) fields() []any {
	return []any{&inv.ID, &inv.SenderID, &inv.RecipientID, &inv.Message, &inv.Source, &inv.Status, &inv.SentAt, &inv.RespondedAt, &inv.WithdrawnAt}
}

// fields are n's fields in notificationColumns order.
func (n *Notification) fields() []any {
	return []any{&n.ID, &n.MemberID, &n.Kind, &n.InvitationID, &n.CreatedAt, &n.ReadAt}
}

// selectRows runs query and scans every row into a new T; the query selects T's
// columns, in order, then the extra columns, which are scanned into extra (the
// last row's values stay there).
func selectRows[T any, P row[T]](ctx context.Context, q sqlx.QueryerContext, extra []any, query string, args ...any) ([]*T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		item := new(T)
		if err := rows.Scan(append(P(item).fields(), extra...)...); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, rows.Err()
}

// getRow runs query and scans its one row into a new T; nil when there is none.
func getRow[T any, P row[T]](ctx context.Context, q sqlx.QueryerContext, query string, args ...any) (*T, error) {
	item := new(T)
	err := q.QueryRowxContext(ctx, query, args...).Scan(P(item).fields()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item, nil
}
