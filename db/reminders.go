package db

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// ReminderDelays are when the reminders of a pending invitation fall due, after it
// was sent.
var ReminderDelays = [2]int{7, 14} // days

// scheduleReminders writes the reminder outbox rows of a new invitation, in the
// transaction that sends it. The delivery worker skips (cancels) the reminders of an
// invitation that is no longer pending and not ignored when they fall due.
func scheduleReminders(ctx context.Context, tx *sqlx.Tx, inv *Invitation) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO reminders (invitation_id, seq, due_at)
VALUES ($1, 1, $2), ($1, 2, $3)`, inv.ID, inv.SentAt.AddDate(0, 0, ReminderDelays[0]), inv.SentAt.AddDate(0, 0, ReminderDelays[1]))
	return err
}
