package db

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// SweepLockKey is the key of the transaction-scoped advisory lock that lets one
// sweeper at a time work, across every replica on the database.
const SweepLockKey int64 = 0x696e765f7377 // "inv_sw"

// sweepExpired marks one batch of the oldest live invitations past their lifetime
// EXPIRED and cancels their reminders that were not sent, in one statement. The rows
// are locked with SKIP LOCKED: a row that an accept or a withdrawal holds is left to a
// later batch, and the outer UPDATE re-checks the status it locked.
const sweepExpired = `
WITH due AS (
    SELECT array_agg(id) AS ids
      FROM (SELECT id FROM invitations
             WHERE status IN ('PENDING', 'IGNORED') AND sent_at <= $1
             ORDER BY sent_at
             LIMIT $2
               FOR UPDATE SKIP LOCKED) d
), expired AS (
    UPDATE invitations SET status = 'EXPIRED'
     WHERE id = ANY ((SELECT ids FROM due)::bigint[]) AND status IN ('PENDING', 'IGNORED')
    RETURNING id
), cancelled AS (
    UPDATE reminders SET state = 'CANCELLED', done_at = $3
     WHERE invitation_id = ANY ((SELECT array_agg(id) FROM expired)::bigint[]) AND state = 'PENDING'
)
SELECT count(*) FROM expired`

// SweepExpired marks at most batch live (pending or ignored) invitations whose
// lifetime (Limits.TTL) has run out EXPIRED, oldest first, and cancels their reminders
// not yet sent, in one transaction. Only one sweeper works at a time across all
// replicas: when another holds the sweep's advisory lock, it does nothing and returns
// 0. Rows locked by a concurrent accept or withdrawal are skipped (the next batch
// takes them if they are still live). It returns how many invitations it expired.
// Correctness never depends on it: reads apply the lifetime themselves. Errors: a
// batch below 1, or a database error (nothing is then changed).
func (s *Store) SweepExpired(ctx context.Context, batch int) (int, error) {
	if batch < 1 {
		return 0, errors.New("sweep: batch must be at least 1")
	}
	var n int
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		n = 0
		var locked bool
		if err := tx.GetContext(ctx, &locked, `SELECT pg_try_advisory_xact_lock($1)`, SweepLockKey); err != nil || !locked {
			return err
		}
		return tx.GetContext(ctx, &n, sweepExpired, now.Add(-s.limits.TTL), batch, now)
	})
	return n, err
}

// RunExpirySweep sweeps until ctx ends: at once, then every interval, it runs
// SweepExpired batches until one comes back short (nothing left, or another replica
// holds the sweep), and logs how many invitations expired. A failed batch is logged
// and retried at the next round. It returns nil when ctx ends, and an error only for
// an interval or batch below 1.
func (s *Store) RunExpirySweep(ctx context.Context, every time.Duration, batch int, log *slog.Logger) error {
	if every <= 0 || batch < 1 {
		return errors.New("expiry sweep: interval and batch must be positive")
	}
	return runEvery(ctx, every, func() {
		start, total := time.Now(), 0
		for ctx.Err() == nil {
			n, err := s.SweepExpired(ctx, batch)
			total += n
			if err != nil {
				if ctx.Err() == nil {
					log.Error("expiry sweep failed", "err", err, "expired", total)
				}
				return
			}
			if n < batch {
				break
			}
		}
		if total > 0 {
			log.Info("expiry sweep", "expired", total, "took", time.Since(start).Round(time.Millisecond))
		}
	})
}

// runEvery calls round at once and then every interval until ctx ends. Rounds never
// overlap: a long round delays the next one.
func runEvery(ctx context.Context, every time.Duration, round func()) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		round()
		timer.Reset(every)
	}
}
