package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PublishInTxForTest runs a transaction of the Store's that records e to publish on
// commit, then returns fail (nil commits, an error rolls back).
func (s *Store) PublishInTxForTest(ctx context.Context, e Event, fail error) error {
	return s.inTx(ctx, func(tx *Tx, now time.Time) error {
		tx.publishOnCommit(e)
		return fail
	})
}

// ScanUTCForTest is what db.Open runs on each new connection.
var ScanUTCForTest = scanUTC

// MemberRowForTest runs query, which selects memberColumns, on conn as the reads
// and transactions of the Store run a statement of one row.
func MemberRowForTest(ctx context.Context, conn *pgx.Conn, query string) (*Member, error) {
	return getRow[Member](ctx, conn, query)
}

// ScanRowForTest runs query, which returns one row, on conn and scans the row into dst
// as a request's reads do; binary reports whether it was scanned from the binary
// values, without pgx's Scan.
func ScanRowForTest(ctx context.Context, conn *pgx.Conn, query string, dst []any) (binary bool, err error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, fmt.Errorf("no row: %v", rows.Err())
	}
	var scan binaryScan
	return scan.scan(rows, dst)
}
