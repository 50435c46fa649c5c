package db

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// PublishInTxForTest runs a transaction of the Store's that records e to publish on
// commit, then returns fail (nil commits, an error rolls back).
func (s *Store) PublishInTxForTest(ctx context.Context, e Event, fail error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx, now time.Time) error {
		s.publishOnCommit(tx, e)
		return fail
	})
}
