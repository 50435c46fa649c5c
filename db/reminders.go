package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
)

// ReminderDelays are when the reminders of a pending invitation fall due, after it
// was sent.
var ReminderDelays = [2]int{7, 14} // days

// reminderDue is when reminder i (0 or 1) of an invitation sent at sentAt falls due.
// The send writes both in its transaction (Store.insertInvitation); the delivery worker
// skips (cancels) the reminders of an invitation that is no longer pending and not
// ignored when they fall due.
func reminderDue(sentAt time.Time, i int) time.Time {
	return sentAt.UTC().AddDate(0, 0, ReminderDelays[i])
}

// Reminder delivery.
// cancelReminders cancels the reminders not yet sent of invitations that stopped
// being pending (withdrawn, accepted, ignored), in the transaction that changed them,
// after their rows were locked (the global lock order: invitations, then their rows).
func cancelReminders(ctx context.Context, tx *Tx, now time.Time, ids ...int64) error {
	in, arg := oneOf(ids)
	_, err := tx.ExecContext(ctx, cancelRemindersSQL(in), arg, now)
	return err
}

// cancelRemindersSQL cancels at $2 the pending reminders of the invitations whose id
// satisfies in, a condition on parameter $1 (oneOf); the withdrawal runs it inside its
// UPDATE's statement.
func cancelRemindersSQL(in string) string {
	return `
UPDATE reminders SET state = 'CANCELLED', done_at = $2
 WHERE invitation_id ` + in + ` AND state = 'PENDING'`
}

const (
	// MaxReminderAttempts is how many failed deliveries cancel a reminder.
	MaxReminderAttempts = 5
	// ReminderBackoff times the number of failed attempts is how long a failed
	// reminder waits before the next attempt.
	ReminderBackoff = time.Minute
	// DefaultMailDomain is the domain of members' addresses and of Message-IDs when
	// the Mailer names none. Members have no email address: theirs is handle@domain.
	DefaultMailDomain = "members.invalid"
	// maxErrorLen bounds the error text kept with a failed reminder.
	maxErrorLen = 200
)

// Reminder is one reminder email about a pending invitation, for its recipient.
type Reminder struct {
	InvitationID int64
	// Seq is 1 for the first reminder (7 days after sending), 2 for the second.
	Seq int
	// To is the recipient's address, handle@domain; ToName their name.
	To, ToName string
	// FromName and FromHandle name the sender.
	FromName, FromHandle string
	// Message is the invitation's personal note, if any.
	Message *string
	SentAt  time.Time
	// At is when the worker delivers it (the store's clock): the email's date.
	At time.Time
	// MessageID is stable for this reminder, <reminder-{invitation}-{seq}@{domain}>,
	// so that a receiver can drop a copy sent again after a crash.
	MessageID string
}

// Mailer delivers reminder emails. SendReminder returns nil once the mail server has
// accepted the message; an error means it was (probably) not delivered and the
// reminder is tried again later. A Mailer that also has a method MailDomain() string
// chooses the domain of addresses and Message-IDs; otherwise it is DefaultMailDomain.
type Mailer interface {
	SendReminder(ctx context.Context, r Reminder) error
}

// mailDomain is m's domain for addresses and Message-IDs.
func mailDomain(m Mailer) string {
	if d, ok := m.(interface{ MailDomain() string }); ok && d.MailDomain() != "" {
		return d.MailDomain()
	}
	return DefaultMailDomain
}

// claimReminder locks the next due reminder, skipping those another worker holds and
// those of the invitations in $2 (locked by someone else earlier in this call).
const claimReminder = `
SELECT invitation_id, seq, attempts FROM reminders
 WHERE state = 'PENDING' AND due_at <= $1 AND invitation_id <> ALL ($2)
 ORDER BY due_at
 LIMIT 1
   FOR UPDATE SKIP LOCKED`

// lockReminderInvitation share-locks a reminder's invitation unless someone is
// changing it: an accept, ignore or withdrawal then waits until the reminder is sent
// and recorded, so no reminder goes out after an answer has committed. The status is
// read after the lock, so it is the newest.
const lockReminderInvitation = `
SELECT i.status, i.message, i.sent_at,
       s.name AS from_name, s.handle AS from_handle, t.name AS to_name, t.handle AS to_handle
  FROM invitations i
  JOIN members s ON s.id = i.sender_id
  JOIN members t ON t.id = i.recipient_id
 WHERE i.id = $1
   FOR SHARE OF i SKIP LOCKED`

type claimedReminder struct {
	InvitationID int64 `db:"invitation_id"`
	Seq          int   `db:"seq"`
	Attempts     int   `db:"attempts"`
}

type reminderInvitation struct {
	Status     string    `db:"status"`
	Message    *string   `db:"message"`
	SentAt     time.Time `db:"sent_at"`
	FromName   string    `db:"from_name"`
	FromHandle string    `db:"from_handle"`
	ToName     string    `db:"to_name"`
	ToHandle   string    `db:"to_handle"`
}

// DeliverReminders handles at most batch due reminders, oldest first, each in its own
// transaction that locks the reminder (SKIP LOCKED: concurrent workers, on any
// replica, never take the same one) and its invitation. A reminder whose invitation
// is no longer pending (accepted, ignored, withdrawn, or expired, stored or by age) is
// CANCELLED. Otherwise m is called and the outcome recorded before the commit: SENT,
// or after a mailer error one more attempt, retried ReminderBackoff × attempts later
// and CANCELLED after MaxReminderAttempts. A reminder is therefore sent at most once,
// except when the process dies after the mail server accepted it and before the
// commit: it is then sent again, with the same Message-ID. It returns how many it
// sent and cancelled. Errors: a batch below 1, or a database error or ctx ending (the
// reminder in hand is then left as it was, for a later call); mailer errors are
// recorded on the reminder, not returned.
func (s *Store) DeliverReminders(ctx context.Context, m Mailer, batch int) (sent, cancelled int, err error) {
	if batch < 1 {
		return 0, 0, errors.New("reminders: batch must be at least 1")
	}
	domain := mailDomain(m)
	busy := []int64{} // not nil: pq sends nil as NULL, and "<> ALL (NULL)" is never true
	for sent+cancelled < batch {
		if err := ctx.Err(); err != nil {
			return sent, cancelled, err
		}
		outcome, err := s.deliverOne(ctx, m, domain, &busy)
		if err != nil {
			return sent, cancelled, translate(err)
		}
		switch outcome {
		case reminderNone:
			return sent, cancelled, nil
		case reminderSent:
			sent++
		case reminderCancelled:
			cancelled++
		}
	}
	return sent, cancelled, nil
}

type reminderOutcome int

const (
	reminderNone      reminderOutcome = iota // nothing due
	reminderBusy                             // its invitation is locked: try later
	reminderSent                             // delivered
	reminderFailed                           // the mailer failed; retried later
	reminderCancelled                        // no longer wanted, or failed too often
)

// deliverOne claims, sends and records one reminder in one transaction. It is not
// retried on a serialization failure, which could send the email twice. The
// transaction outlives a cancelled ctx so that a mail accepted during shutdown is
// still recorded SENT. An invitation that is locked is added to busy.
func (s *Store) deliverOne(ctx context.Context, m Mailer, domain string, busy *[]int64) (reminderOutcome, error) {
	txCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	tx, err := s.db.BeginTxx(txCtx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return reminderNone, err
	}
	defer tx.Rollback()
	now := s.Now()
	var c claimedReminder
	err = tx.GetContext(txCtx, &c, claimReminder, now, *busy)
	if errors.Is(err, sql.ErrNoRows) {
		return reminderNone, nil
	}
	if err != nil {
		return reminderNone, err
	}
	var inv reminderInvitation
	err = tx.GetContext(txCtx, &inv, lockReminderInvitation, c.InvitationID)
	if errors.Is(err, sql.ErrNoRows) {
		*busy = append(*busy, c.InvitationID)
		return reminderBusy, nil
	}
	if err != nil {
		return reminderNone, err
	}
	if inv.Status != StatusPending || !inv.SentAt.After(now.Add(-s.limits.TTL)) {
		_, err = tx.ExecContext(txCtx, `
UPDATE reminders SET state = 'CANCELLED', done_at = $3 WHERE invitation_id = $1 AND seq = $2`, c.InvitationID, c.Seq, now)
		if err != nil {
			return reminderNone, err
		}
		return reminderCancelled, tx.Commit()
	}
	r := Reminder{
		InvitationID: c.InvitationID, Seq: c.Seq,
		To: inv.ToHandle + "@" + domain, ToName: inv.ToName,
		FromName: inv.FromName, FromHandle: inv.FromHandle,
		Message: inv.Message, SentAt: inv.SentAt, At: now,
		MessageID: fmt.Sprintf("<reminder-%d-%d@%s>", c.InvitationID, c.Seq, domain),
	}
	outcome := reminderSent
	if sendErr := m.SendReminder(ctx, r); sendErr != nil {
		if ctx.Err() != nil { // shutting down: leave the reminder for the next start
			return reminderNone, ctx.Err()
		}
		outcome = reminderFailed
		if c.Attempts+1 >= MaxReminderAttempts {
			outcome = reminderCancelled
		}
		_, err = tx.ExecContext(txCtx, `
UPDATE reminders
   SET attempts = attempts + 1, last_error = $3,
       state = CASE WHEN attempts + 1 >= $4 THEN 'CANCELLED' ELSE 'PENDING' END,
       done_at = CASE WHEN attempts + 1 >= $4 THEN $5::timestamptz END,
       due_at = CASE WHEN attempts + 1 >= $4 THEN due_at ELSE $5::timestamptz + (attempts + 1) * make_interval(secs => $6) END
 WHERE invitation_id = $1 AND seq = $2`,
			c.InvitationID, c.Seq, shortError(sendErr), MaxReminderAttempts, now, ReminderBackoff.Seconds())
	} else {
		_, err = tx.ExecContext(txCtx, `
UPDATE reminders SET state = 'SENT', done_at = $3, attempts = attempts + 1
 WHERE invitation_id = $1 AND seq = $2`, c.InvitationID, c.Seq, now)
	}
	if err != nil {
		return reminderNone, err
	}
	return outcome, tx.Commit()
}

// shortError is err's text on one line, at most maxErrorLen characters. Mailer errors
// carry the mail server's reply, never credentials.
func shortError(err error) string {
	msg := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, err.Error())
	if r := []rune(msg); len(r) > maxErrorLen {
		msg = string(r[:maxErrorLen-1]) + "…"
	}
	return msg
}

// RunReminderWorker delivers reminders until ctx ends: at once, then every interval,
// it runs DeliverReminders batches until one comes back short, and logs how many it
// sent and cancelled; each mailer error is logged as a warning. Any number of workers
// may run at once, in one process or on several replicas. A failed batch is logged
// and retried at the next round. It returns nil when ctx ends, and an error only for
// an interval or batch below 1.
func (s *Store) RunReminderWorker(ctx context.Context, m Mailer, every time.Duration, batch int, log *slog.Logger) error {
	if every <= 0 || batch < 1 {
		return errors.New("reminder worker: interval and batch must be positive")
	}
	m = loggingMailer{m, log}
	return runEvery(ctx, every, func() {
		start, sent, cancelled := time.Now(), 0, 0
		for ctx.Err() == nil {
			n, c, err := s.DeliverReminders(ctx, m, batch)
			sent, cancelled = sent+n, cancelled+c
			if err != nil {
				if ctx.Err() == nil {
					log.Error("reminder delivery failed", "err", err, "sent", sent, "cancelled", cancelled)
				}
				break
			}
			if n+c < batch {
				break
			}
		}
		if sent+cancelled > 0 {
			log.Info("reminders", "sent", sent, "cancelled", cancelled, "took", time.Since(start).Round(time.Millisecond))
		}
	})
}

// loggingMailer logs the errors of the Mailer it wraps.
type loggingMailer struct {
	Mailer
	log *slog.Logger
}

func (l loggingMailer) SendReminder(ctx context.Context, r Reminder) error {
	err := l.Mailer.SendReminder(ctx, r)
	if err != nil && ctx.Err() == nil {
		l.log.Warn("reminder not delivered", "invitation", r.InvitationID, "seq", r.Seq, "err", err)
	}
	return err
}

func (l loggingMailer) MailDomain() string { return mailDomain(l.Mailer) }
