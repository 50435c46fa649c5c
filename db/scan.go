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
	fields(dst []any) []any
}

// fields appends m's fields, in memberColumns order, to dst.
func (m *Member) fields(dst []any) []any {
	return append(dst, &m.ID, &m.Handle, &m.Name, &m.Headline, &m.Plan, &m.ConnectionCount, &m.CreatedAt)
}

// fields appends inv's fields, in invitationColumns order, to dst.
func (inv *Invitation) fields(dst []any) []any {
	return append(dst, &inv.ID, &inv.SenderID, &inv.RecipientID, &inv.Message, &inv.Source, &inv.Status, &inv.SentAt, &inv.RespondedAt, &inv.WithdrawnAt)
}

// fields appends n's fields, in notificationColumns order, to dst.
func (n *Notification) fields(dst []any) []any {
	return append(dst, &n.ID, &n.MemberID, &n.Kind, &n.InvitationID, &n.CreatedAt, &n.ReadAt)
}

// selectRows runs query and scans every row into a new T; the query selects T's
// columns, in order, then extra columns, scanned into the destinations extra appends
// for the row (nil: none).
func selectRows[T any, P row[T]](ctx context.Context, q sqlx.QueryerContext, extra func(row *T, dst []any) []any, query string, args ...any) ([]*T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	var dst []any // each row's destinations, in one slice for all rows
	for rows.Next() {
		item := new(T)
		dst = P(item).fields(dst[:0])
		if extra != nil {
			dst = extra(item, dst)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, rows.Err()
}

// getRow runs query and scans its one row into a new T; nil when there is none.
func getRow[T any, P row[T]](ctx context.Context, q sqlx.QueryerContext, query string, args ...any) (*T, error) {
	item := new(T)
	err := q.QueryRowxContext(ctx, query, args...).Scan(P(item).fields(nil)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item, nil
}

// oneOf is the condition that a column is one of ids, given as parameter $1, and that
// parameter. One id (one invitation withdrawn, one object looked up) is "= $1":
// PostgreSQL plans "= ANY($1)" anew for each short list (its generic plan assumes ten
// elements), and for one row the planning costs more than the statement
// (TestStatementsArePlannedOnce).
func oneOf(ids []int64) (string, any) {
	if len(ids) == 1 {
		return "= $1", ids[0]
	}
	return "= ANY($1)", ids
}
