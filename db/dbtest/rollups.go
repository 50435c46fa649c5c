package dbtest

import (
	"context"
	"database/sql"
	"fmt"
)

// rollupDriftQuery lists the rows on which the rollups as kept (copied to kept_daily and
// kept_tta before the rebuild) and as rebuilt differ, both ways, rows with n = 0 included.
const rollupDriftQuery = `
SELECT side || ' ' || tbl || ' ' || r FROM (
  (SELECT 'kept' AS side, 'daily' AS tbl, (day, source, has_note, state, shard, n)::text AS r FROM kept_daily
   EXCEPT SELECT 'kept', 'daily', (day, source, has_note, state, shard, n)::text FROM invitation_stats_daily)
  UNION ALL
  (SELECT 'rebuilt', 'daily', (day, source, has_note, state, shard, n)::text FROM invitation_stats_daily
   EXCEPT SELECT 'rebuilt', 'daily', (day, source, has_note, state, shard, n)::text FROM kept_daily)
  UNION ALL
  (SELECT 'kept', 'tta', (day, bucket, n)::text FROM kept_tta
   EXCEPT SELECT 'kept', 'tta', (day, bucket, n)::text FROM invitation_stats_tta)
  UNION ALL
  (SELECT 'rebuilt', 'tta', (day, bucket, n)::text FROM invitation_stats_tta
   EXCEPT SELECT 'rebuilt', 'tta', (day, bucket, n)::text FROM kept_tta)) d
 ORDER BY tbl, r, side`

// RollupDrift compares every row of the statistics rollups (invitation_stats_daily and
// invitation_stats_tta, kept by the triggers) with what invitation_stats_rebuild()
// computes from invitations, and returns the rows that differ: "kept daily (…)" for a
// row as kept that the rebuild does not produce, "rebuilt daily (…)" for a rebuilt row
// that was not kept (likewise "tta"). A row with n = 0 counts: the rebuild writes none.
// It works in a transaction that it rolls back, so the rollups are left as they were;
// the rebuild locks invitations against writes until then.
func RollupDrift(ctx context.Context, conn interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}) ([]string, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`CREATE TEMP TABLE kept_daily ON COMMIT DROP AS SELECT * FROM invitation_stats_daily`,
		`CREATE TEMP TABLE kept_tta ON COMMIT DROP AS SELECT * FROM invitation_stats_tta`,
		`SELECT invitation_stats_rebuild()`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("rollup drift: %s: %w", q, err)
		}
	}
	rows, err := tx.QueryContext(ctx, rollupDriftQuery)
	if err != nil {
		return nil, fmt.Errorf("rollup drift: %w", err)
	}
	defer rows.Close()
	var diff []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		diff = append(diff, r)
	}
	return diff, rows.Err()
}
