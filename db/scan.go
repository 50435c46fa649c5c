package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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

// rows are a statement's result rows, as pgx.Rows and database/sql's (sqlRows) give them.
type rows interface {
	Next() bool
	Scan(dst ...any) error
	Err() error
	Close()
}

// querier runs statements for selectRows and getRow: a pooled connection through
// pgx's own interface (Store.read), or a transaction (txQuerier).
type querier interface {
	query(ctx context.Context, query string, args ...any) (rows, error)
}

// pgxQuerier runs statements through pgx's own interface: binary results scanned
// straight into the row's fields, without database/sql's conversions through
// driver.Value and the interface each of them is boxed in.
type pgxQuerier struct{ conn *pgx.Conn }

func (q pgxQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	return q.conn.Query(ctx, query, args...)
}

// txQuerier runs statements in a database/sql transaction.
type txQuerier struct{ tx *sqlx.Tx }

func (q txQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := q.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// read runs fn on a pooled connection (waiting at most poolWait for one), with
// pgx's own interface: the reads of every request (the viewer, lists, loaders) run
// there.
func (s *Store) read(ctx context.Context, fn func(q querier) error) error {
	conn, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the pool's driver connection is a %T, not pgx's", dc)
		}
		return fn(pgxQuerier{c.Conn()})
	})
}

// selectRows runs query and scans every row into a new T; the query selects T's
// columns, in order, then extra columns, scanned into the destinations extra appends
// for the row (nil: none).
func selectRows[T any, P row[T]](ctx context.Context, q querier, extra func(row *T, dst []any) []any, query string, args ...any) ([]*T, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*T
	var dst []any // each row's destinations, in one slice for all rows
	var scan binaryScan
	var items slab[T]
	for rows.Next() {
		item := items.next()
		dst = P(item).fields(dst[:0])
		if extra != nil {
			dst = extra(item, dst)
		}
		if _, err := scan.scan(rows, dst); err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, rows.Err()
}

// slab hands out new Ts allocated a few at a time, in chunks of growing size, instead
// of one allocation each (a page of 20 rows: three instead of 21). Its zero value is
// ready; a T it handed out stays valid, as chunks are never reused or moved.
type slab[T any] struct{ chunk []T }

func (s *slab[T]) next() *T {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, min(max(2*cap(s.chunk), 4), 64))
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

// readRows is selectRows on a pooled connection (Store.read).
func readRows[T any, P row[T]](ctx context.Context, s *Store, extra func(row *T, dst []any) []any, query string, args ...any) ([]*T, error) {
	var out []*T
	err := s.read(ctx, func(q querier) (err error) {
		out, err = selectRows[T, P](ctx, q, extra, query, args...)
		return err
	})
	return out, err
}

// getRow runs query and scans its first row into a new T; nil when there is none.
func getRow[T any, P row[T]](ctx context.Context, q querier, query string, args ...any) (*T, error) {
	rows, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	item := new(T)
	var scan binaryScan
	if _, err := scan.scan(rows, P(item).fields(nil)); err != nil {
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
