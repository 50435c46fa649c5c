package db

import (
	"context"
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

// withConn runs fn on a pooled connection (waiting at most poolWait for one), with
// pgx's own interface: the reads of every request (the viewer, lists, loaders) run
// there.
func (s *Store) withConn(ctx context.Context, fn func(c *pgx.Conn) error) error {
	conn, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return rawConn(conn, fn)
}

// rawConn runs fn with the pgx connection under conn: binary results scanned straight
// into the row's fields (binaryScan), without database/sql's conversions through
// driver.Value and the interface each of them is boxed in. conn may have a transaction
// open (Tx.withConn); the statements fn runs are then part of it.
func rawConn(conn *sqlx.Conn, fn func(c *pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the pool's driver connection is a %T, not pgx's", dc)
		}
		return fn(c.Conn())
	})
}

// selectRows runs query and scans every row into a new T; the query selects T's
// columns, in order, then extra columns, scanned into the destinations extra appends
// for the row (nil: none).
func selectRows[T any, P row[T]](ctx context.Context, c *pgx.Conn, extra func(row *T, dst []any) []any, query string, args ...any) ([]*T, error) {
	rows, err := c.Query(ctx, query, args...)
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

// connection is where queryRows and queryRow run their statement: a pooled
// connection (Store) or a transaction's (Tx), through pgx's own interface.
type connection interface {
	withConn(ctx context.Context, fn func(c *pgx.Conn) error) error
}

// queryRows is selectRows on conn.
func queryRows[T any, P row[T]](ctx context.Context, conn connection, extra func(row *T, dst []any) []any, query string, args ...any) ([]*T, error) {
	var out []*T
	err := conn.withConn(ctx, func(c *pgx.Conn) (err error) {
		out, err = selectRows[T, P](ctx, c, extra, query, args...)
		return err
	})
	return out, err
}

// queryRow is getRow on conn.
func queryRow[T any, P row[T]](ctx context.Context, conn connection, query string, args ...any) (*T, error) {
	var out *T
	err := conn.withConn(ctx, func(c *pgx.Conn) (err error) {
		out, err = getRow[T, P](ctx, c, query, args...)
		return err
	})
	return out, err
}

// getRow runs query and scans its first row into a new T; nil when there is none.
func getRow[T any, P row[T]](ctx context.Context, c *pgx.Conn, query string, args ...any) (*T, error) {
	rows, err := c.Query(ctx, query, args...)
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
	// The statement may still fail after its first row: a data-modifying WITH or an
	// AFTER trigger (the rollups') runs once the rows are out.
	rows.Close()
	if err := rows.Err(); err != nil {
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
